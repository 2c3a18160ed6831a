"""The one trainer: any registered family, CPU or GPU, one process or DDP, through Lightning Fabric.

Why Fabric rather than ``lightning.Trainer``: the loop below is short enough to read in one
sitting, and owning it makes exact resume straightforward. Every batch is a pure function of
``(seed, step, rank)`` (see :class:`StepBatchSampler`), so restoring weights, optimisers, EMA,
step counter and RNG state reproduces an uninterrupted run bit for bit. Fabric supplies devices,
mixed precision and DDP (``--devices N --nodes M``; torchrun and SLURM environments are
detected).

What a step *is* belongs to the family's objective (:mod:`waveloom.train.objectives`, named by
the registry): its optimisers, schedules, EMA, data set and update. This module only runs it:
build, resume, then for each batch ``objective.step``, then log, validate, sample, checkpoint.
The run folder's layout is in :mod:`waveloom.train.run_folder`.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from waveloom.config import RunConfig
from waveloom.errors import DataError
from waveloom.models.registry import build_model, get_family
from waveloom.train.logger import Logger
from waveloom.train.memory_guard import StepMemoryGuard, free_bytes
from waveloom.train.objectives import Objective, build_objective
from waveloom.train.objectives.base import unwrap
from waveloom.train.run_folder import (
    MODEL_FILE,
    RESUME_FILE,
    RunFolder,
    load_resume_state,
    set_rng_state,
)
from waveloom.train.startup import check_vocabulary, init_from, launch_fabric
from waveloom.train.startup import precision as _precision  # noqa: F401 - tests import it here
from waveloom.train.validation import Validator

__all__ = ["MODEL_FILE", "RESUME_FILE", "StepBatchSampler", "TrainResult", "load_resume_state",
           "train"]


class StepBatchSampler(Sampler[list[int]]):
    """Batches of dataset indices that depend only on the step, the rank and the batch size.

    Step ``s`` on rank ``r`` of ``w`` reads indices ``[(s*w + r)*B, (s*w + r + 1)*B)``. The
    dataset turns an index into a random window deterministically, so the global batch of a step
    is the same whether it runs on one process or is split across ``w`` of them, and a resumed run
    continues exactly where it stopped.
    """

    def __init__(self, start_step: int, max_steps: int, batch_size: int, rank: int = 0,
                 world_size: int = 1) -> None:
        self.start_step, self.max_steps = start_step, max_steps
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size

    def __iter__(self) -> Iterator[list[int]]:
        b = self.batch_size
        for step in range(self.start_step, self.max_steps):
            first = (step * self.world_size + self.rank) * b
            yield list(range(first, first + b))

    def __len__(self) -> int:
        return max(0, self.max_steps - self.start_step)


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    interrupted: bool
    last_loss: float
    seconds: float
    is_global_zero: bool = True
    signum: int = 0  # the signal that interrupted the run (SIGINT 2, SIGTERM 15), else 0


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step (then saves and exits)."""

    def __init__(self) -> None:
        self.raised: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. inside a test runner thread)
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.raised is not None:  # second signal: stop now
            raise KeyboardInterrupt
        self.raised = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@dataclass
class _Run:
    """What the loop works on, built by :func:`train`."""

    cfg: RunConfig
    fabric: Any
    folder: RunFolder
    cache: Any
    model: nn.Module  # Fabric's wrapper
    objective: Objective
    dataset: Any

    def save(self, step: int) -> None:
        self.folder.save(self.fabric, step, self.model, self.objective, self.cfg,
                         list(self.cache.info.get("instruments", [])))

    def save_best(self, step: int, val_loss: float) -> None:
        self.folder.save_best(self.fabric, step, self.model, self.objective, self.cfg,
                              list(self.cache.info.get("instruments", [])), val_loss)


def train(
    cfg: RunConfig,
    data: str | Path,
    out: str | Path,
    *,
    resume: bool = False,
    accelerator: str = "auto",
    devices: int | str = 1,
    num_nodes: int = 1,
    strategy: str = "auto",
    progress: bool = True,
    overwrite: bool = False,
    override: bool = False,
) -> TrainResult:
    """Train ``cfg``'s model on the cache at ``data``, writing the run folder ``out``.

    ``overwrite`` replaces a run or model already in ``out``; ``override`` lets ``resume``
    continue with a changed config or data folder (see RunFolder.check_resume).
    """
    folder = RunFolder(out, resume, overwrite)
    cache = _open_cache(cfg, data)
    fabric = launch_fabric(cfg, accelerator, devices, num_nodes, strategy)
    folder.check_resume(cfg, data, override, fabric)
    if fabric.is_global_zero:
        if overwrite:
            folder.clear()
        folder.clean_orphans(fabric)
    model, objective, state = _build(cfg, folder, fabric)
    start = int(state["step"]) if state is not None else 0
    if fabric.is_global_zero:
        folder.write_run(cfg, data)
    if state is not None:
        _reexport(folder, fabric, objective, model, cfg, start, cache)
    if cfg.train.max_steps <= start:
        fabric.print(f"run already at step {start} >= max_steps {cfg.train.max_steps}; "
                     "nothing to do")
        return TrainResult(folder.root, start, False, float("nan"), 0.0, fabric.is_global_zero)
    dataset = objective.make_dataset(
        cache, cfg, unwrap(model), split=cfg.data.train_split,
        epoch_size=cfg.train.max_steps * cfg.data.batch_size * fabric.world_size)
    _check_batch_memory(cfg, dataset, objective)
    run = _Run(cfg, fabric, folder, cache, model, objective, dataset)
    started = time.perf_counter()
    step, signum, last_loss = _loop(run, _loader(run, start), start,
                                    state["rng"] if start else None, progress)
    return TrainResult(folder.root, step, signum != 0, last_loss, time.perf_counter() - started,
                       fabric.is_global_zero, signum)


def data_kind(cfg: RunConfig) -> str:
    """What the family trains on: ``"audio"`` (the default) or ``"symbolic"`` (event tokens),
    read from the model class's ``data_kind`` so this module names no family."""
    return getattr(get_family(cfg.family).model, "data_kind", "audio")


def _open_cache(cfg: RunConfig, data: str | Path) -> Any:
    """The cache at ``data`` for ``cfg``'s data kind: a SymbolicCache (no sample rate, no
    instruments to check) or an AudioCache checked against the config."""
    if data_kind(cfg) == "symbolic":
        from waveloom.data.symbolic import SymbolicCache

        return SymbolicCache(data)
    from waveloom.data.cache import AudioCache

    cache = AudioCache(data)
    cache.check_sample_rate(cfg.data.sample_rate)
    check_vocabulary(cfg, cache)
    adopt = getattr(cfg.model, "adopt_cache", None)  # a family's own check of its data
    if adopt is not None:
        adopt(cache.info, cache.root)
    return cache


def _batch_size(batch: Any) -> int:
    """Items in ``batch``: its audio's, else (a symbolic family's) its first tensor's."""
    first = batch["audio"] if "audio" in batch else next(
        v for v in batch.values() if isinstance(v, torch.Tensor))
    return int(first.shape[0])


def _check_batch_memory(cfg: RunConfig, dataset: Any, objective: Objective) -> None:
    """Refuse a batch that cannot fit before the loader collates it: the data set checks one
    window, but the loader stacks ``data.batch_size`` of them (``data.chunks`` windows each for
    sequence objectives) before the first step and its guard."""
    from waveloom.data.dataset import BYTES_PER_SAMPLE
    from waveloom.memory import check_allocation

    samples = int(getattr(dataset, "length", dataset.window))
    chunks = cfg.data.chunks if objective.dataset_kind == "sequences" else 1
    b = cfg.data.batch_size
    check_allocation(b * chunks * samples * BYTES_PER_SAMPLE,
                     f"a batch of {b} x {samples:,} samples", "data.window or data.batch_size")


def _reexport(folder: RunFolder, fabric: Any, objective: Objective, model: nn.Module,
              cfg: RunConfig, step: int, cache: Any) -> None:
    """A resumed run whose model.safetensors is gone or of another step than resume.pt (killed
    between the two renames of a save, or deleted): write it again from resume.pt's state."""
    if fabric.is_global_zero and folder.model_step() != step:
        folder.export(objective.export_weights(model), cfg, step,
                      list(cache.info.get("instruments", [])))
        fabric.print(f"note: {folder.model_path} was missing or behind {RESUME_FILE}; "
                     f"written again at step {step}")


def _build(cfg: RunConfig, folder: RunFolder, fabric: Any
           ) -> tuple[nn.Module, Objective, dict[str, Any] | None]:
    """(Fabric-wrapped model, its configured objective, resume.pt's state or None)."""
    model = build_model(cfg)
    state = folder.load_resume(fabric)
    if cfg.train.init_from and state is None:
        # Before the optimiser and the EMA exist, so both start from the loaded weights.
        init_from(model, cfg, Path(cfg.train.init_from))
    elif state is None and hasattr(model, "load_pretrained"):
        model.load_pretrained()  # a family's frozen pretrained part, loaded once
    if state is not None:
        folder.restore(lambda: model.load_state_dict(state["model"]))
    objective = build_objective(get_family(cfg.family).objective)
    wrapped = objective.configure(model, cfg, fabric)
    if state is not None:
        # After fabric.setup(): loading puts the optimisers' moments on the parameters' device.
        folder.restore(lambda: objective.load_state_dict(state))
    return wrapped, objective, state


def _loader(run: _Run, start: int) -> Any:
    """The data loader of steps ``start..max_steps`` on this rank (see StepBatchSampler)."""
    cfg, fabric = run.cfg, run.fabric
    sampler = StepBatchSampler(start, cfg.train.max_steps, cfg.data.batch_size,
                               fabric.global_rank, fabric.world_size)
    loader = DataLoader(
        run.dataset,
        batch_sampler=sampler,
        num_workers=cfg.data.num_workers,
        persistent_workers=cfg.data.num_workers > 0,
        pin_memory=fabric.device.type == "cuda",
    )
    return fabric.setup_dataloaders(loader, use_distributed_sampler=False)


def _batches(loader: Any, rng: dict[str, Any] | None, device: torch.device) -> Iterator[Any]:
    """The loader's batches, a resumed run's RNG state restored right after the first one.

    The loader's iterator draws its base seed from the global RNG when it starts (lazily, at the
    first batch, behind Fabric's wrapper), so fetch the first batch (windows come from their own
    seeded generators, not the global RNG) and only then restore a resumed run's RNG: the draws
    of step k+1 (label dropout, latents) equal the straight run's.
    """
    batches = iter(loader)
    first = next(batches, None)
    if rng is not None:
        set_rng_state(rng, device)
    if first is None:
        return
    yield first
    yield from batches


def _loop(run: _Run, loader: Any, step: int, rng: dict[str, Any] | None,
          progress: bool) -> tuple[int, int, float]:
    """Train from ``step`` to ``train.max_steps`` (or a signal) -> (step, signal or 0, loss)."""
    cfg, fabric, t = run.cfg, run.fabric, run.cfg.train
    last_loss, signum = float("nan"), 0
    # Reading the loss waits for the device; on a GPU do it only when it is reported or about to
    # be saved, so the CPU queues the next steps while the GPU works.
    check_every = 1 if fabric.device.type == "cpu" else t.log_every
    validator = Validator(run.objective, run.cache, cfg, fabric)
    # A resumed run keeps its best.safetensors until it does better; a fresh one starts over.
    best = run.folder.best_val_loss() if t.keep_best and step > 0 else float("inf")
    with _StopFlag() as stop, Logger(run.folder.root, fabric, cfg, step, progress) as log:
        run.model.train()
        first = step
        for batch in _batches(loader, rng, fabric.device):
            with _guard(run, batch) if step == first else contextlib.nullcontext():
                metrics = run.objective.step(run.model, batch, step)
            step += 1
            saving = step % t.checkpoint_every == 0 or step == t.max_steps
            if step % check_every == 0 or saving or stop.raised is not None:
                last_loss = _checked(metrics["loss"], step - 1, run.folder)
            log.step(step, metrics, last_loss, run.objective.learning_rate(),
                     _batch_size(batch) * run.dataset.window)
            if validator.due(step) and (val := validator.run(run.model)) is not None:
                log.validation(step, val)
                if t.keep_best and val < best:
                    best = val
                    run.save_best(step, val)
            log.sample(run.model, run.dataset, run.folder.root, step)  # by the model's kind
            if saving:
                run.save(step)
            if stop.raised is not None:
                signum = stop.raised
                if not saving:
                    run.save(step)
                name = signal.Signals(stop.raised).name
                fabric.print(f"\n{name}: saved step {step} to {run.folder.root}; "
                             "continue with --resume")
                break
    return step, signum, last_loss


def _guard(run: _Run, batch: Any) -> StepMemoryGuard:
    """The first step's memory guard (see :mod:`waveloom.train.memory_guard`)."""
    what = (f"a training step of {_batch_size(batch)} x {run.dataset.window:,} samples "
            f"({run.cfg.family})")
    return StepMemoryGuard(what, free_bytes(run.fabric.device))


def _checked(loss: torch.Tensor, step: int, folder: RunFolder) -> float:
    """``loss`` as a float (a device sync), or a DataError if it is not finite."""
    value = float(loss)
    if not math.isfinite(value):
        raise DataError(
            f"loss became {value} at step {step}; lower train.lr or check the data (last good "
            f"weights are in {folder.model_path})"
        )
    return value
