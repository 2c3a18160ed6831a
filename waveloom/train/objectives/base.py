"""What every training objective provides, and the parts most of them share.

The trainer (:mod:`waveloom.train.trainer`) owns the run: data order, checkpoints, resume, logging,
validation. An :class:`Objective` owns what one training step means for a family: its
optimisers and learning-rate schedules, its weight average (EMA), the data set its steps read
(single windows or sequences of consecutive windows), the forward methods that must go through
Fabric's wrapper (so DDP synchronises their gradients), and the update itself. The registry
(:mod:`waveloom.models.registry`) names a family's objective by string; ``build_objective``
turns it into one of these.

Life cycle, as the trainer calls it::

    objective = build_objective(name)
    model = objective.configure(model, cfg, fabric)   # optimisers, schedules, EMA; fabric.setup
    objective.load_state_dict(state)                  # when resuming
    for step, batch in ...:
        metrics = objective.step(model, batch, step)   # {'loss': detached scalar, ...}
    objective.state_dict()                            # into resume.pt
    objective.export_weights(model)                   # into model.safetensors

Optimisers are kept in a dict whose keys are their resume.pt keys (``"optimizer"``,
``"optimizer_d"``); each one's schedule is saved under the same key with ``scheduler`` in
place of ``optimizer``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from waveloom.config import RunConfig, parse_instrument_weights
from waveloom.train.ema import EMA

Batch = dict[str, Any]


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside Fabric's wrapper (``.module`` is the original, DDP or not)."""
    return getattr(model, "module", model)


def lr_lambda(cfg: RunConfig) -> Callable[[int], float]:
    """The learning-rate factor of step ``s``: linear warm-up, then constant or cosine."""
    t = cfg.train

    def factor(step: int) -> float:
        if t.warmup_steps and step < t.warmup_steps:
            return (step + 1) / t.warmup_steps
        if t.lr_decay == "cosine":
            progress = (step - t.warmup_steps) / max(1, t.max_steps - t.warmup_steps)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return 1.0

    return factor


def detached(losses: dict[str, Tensor]) -> dict[str, Tensor]:
    """Metrics to hand back to the trainer: detached, still on the device (no sync)."""
    return {k: v.detach() for k, v in losses.items()}


class Objective:
    """Base of every objective (see the module docstring for the protocol).

    Subclasses set :attr:`forward_methods`, override :meth:`build_optimizers` when they have
    more than one, and implement :meth:`step`. ``dataset_kind`` says what the trainer's data
    set serves (``"windows"`` or ``"sequences"``); :meth:`make_dataset` builds it.
    """

    #: Methods the step calls through Fabric's wrapper (so DDP syncs their gradients).
    forward_methods: ClassVar[tuple[str, ...]] = ("loss",)
    dataset_kind: ClassVar[str] = "windows"
    #: The state the EMA averages (state-dict names starting with this).
    ema_prefix: ClassVar[str] = ""

    def __init__(self) -> None:
        self.cfg: RunConfig | None = None
        self.fabric: Any = None
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self.ema: EMA | None = None

    # -- set-up
    def build_optimizers(self, model: nn.Module, cfg: RunConfig
                         ) -> dict[str, torch.optim.Optimizer]:
        """One AdamW over every parameter (``train.lr``, ``train.betas``, weight decay)."""
        t = cfg.train
        return {"optimizer": torch.optim.AdamW(model.parameters(), lr=t.lr,
                                               betas=tuple(t.betas),
                                               weight_decay=t.weight_decay)}

    def configure(self, model: nn.Module, cfg: RunConfig, fabric: Any) -> nn.Module:
        """Build optimisers, schedules and EMA on ``model`` (already holding its initial or
        resumed weights), set both up with Fabric and return the wrapped model."""
        self.cfg, self.fabric = cfg, fabric
        optimizers = self.build_optimizers(model, cfg)
        self.schedulers = {
            name.replace("optimizer", "scheduler"):
                torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
            for name, opt in optimizers.items()
        }
        if cfg.train.ema_decay > 0:
            self.ema = EMA(model, cfg.train.ema_decay, self.ema_prefix)
        wrapped, *opts = fabric.setup(model, *optimizers.values())
        self.optimizers = dict(zip(optimizers, opts))
        for name in self.forward_methods:
            wrapped.mark_forward_method(name)
        if self.ema is not None:
            self.ema.to(fabric.device)
        if cfg.train.compile:
            from waveloom.train.compile import compile_loss

            compile_loss(unwrap(wrapped), cfg.train.compile_backend, fabric.print)
        return wrapped

    # -- data
    def make_dataset(self, cache: Any, cfg: RunConfig, model: nn.Module, *, split: str,
                     epoch_size: int) -> Any:
        """The data set of this objective's steps: random windows of ``data.window`` samples
        (plus the model's context) of ``split``, ``epoch_size`` items, seeded by
        ``train.seed``. A model that asks for per-frame features (``frame_features()``) gets
        frame-aligned windows carrying them, computed once per cache."""
        from waveloom.data.dataset import WindowDataset

        spec = model.frame_features()
        if spec is not None:
            from waveloom.data.features import FrameWindowDataset

            return FrameWindowDataset(cache, spec, split=split, window=cfg.data.window,
                                      **dataset_args(cfg, model), epoch_size=epoch_size)
        return WindowDataset(cache, split=split, window=cfg.data.window, **dataset_args(cfg, model),
                             epoch_size=epoch_size)

    # -- training
    def autocast(self) -> Any:
        """The context every forward method of a step runs in: ``train.precision``'s autocast
        (bf16 or fp16 mixed precision), a no-op at 32. Fabric applies it to ``model(...)`` but
        not to the methods named by ``mark_forward_method`` (Lightning 2.x), which are how every
        family's step calls its model; without this, ``bf16-mixed`` trained in float32."""
        return self.fabric.autocast()

    def step(self, model: nn.Module, batch: Batch, step: int) -> dict[str, Tensor]:
        """One full training step on ``batch`` (step index ``step``, 0-based): forward,
        backward, clipping, optimiser and schedule steps, EMA. Returns detached metrics on the
        device, ``'loss'`` among them (never read here: reading waits for a GPU)."""
        raise NotImplementedError

    def apply(self, model: nn.Module, loss: Tensor, name: str = "optimizer") -> None:
        """Backward ``loss`` and step the optimiser ``name`` (gradients clipped to
        ``train.grad_clip`` when > 0)."""
        opt, clip = self.optimizers[name], self.cfg.train.grad_clip
        opt.zero_grad(set_to_none=True)
        self.fabric.backward(loss)
        if clip > 0:
            self.fabric.clip_gradients(model, opt, max_norm=clip, error_if_nonfinite=False)
        opt.step()

    def update_ema(self, model: nn.Module) -> None:
        if self.ema is not None:
            self.ema.update(unwrap(model))

    def end_step(self) -> None:
        """Advance every learning-rate schedule by one training step."""
        for scheduler in self.schedulers.values():
            scheduler.step()

    def learning_rate(self) -> float:
        """The first optimiser's current learning rate (for logging)."""
        return next(iter(self.schedulers.values())).get_last_lr()[0]

    # -- validation
    def validation_losses(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        """Losses of one validation batch (called in eval mode, without gradients)."""
        return model.loss(batch)

    # -- state
    def state_dict(self) -> dict[str, Any]:
        """Optimisers, schedules and EMA, under resume.pt's keys."""
        state: dict[str, Any] = {k: o.state_dict() for k, o in self.optimizers.items()}
        state.update({k: s.state_dict() for k, s in self.schedulers.items()})
        state["ema"] = self.ema.state_dict() if self.ema is not None else {}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (after :meth:`configure`, so the optimisers' moments
        land on the parameters' device). KeyError/ValueError/RuntimeError on a mismatch."""
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state[name])
        if self.ema is not None and state.get("ema"):
            self.ema.load_state_dict(state["ema"])

    def export_weights(self, model: nn.Module) -> dict[str, Tensor]:
        """The CPU state dict to export: the EMA's weights where it is on, else the trained
        ones."""
        raw = unwrap(model)
        if self.ema is not None:
            return self.ema.averaged_state(raw)
        return {k: v.detach().cpu() for k, v in raw.state_dict().items()}


def dataset_args(cfg: RunConfig, model: nn.Module) -> dict[str, Any]:
    """Data-set arguments every objective's data set shares."""
    d = cfg.data
    return {"context": model.context, "keys": model.batch_keys(), "roll_hop": d.roll_hop,
            "min_rms": d.min_rms, "onset_fraction": d.onset_fraction, "seed": cfg.train.seed,
            "instrument_weights": parse_instrument_weights(d.instrument_weights)}
