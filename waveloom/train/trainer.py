"""The one trainer: any registered family, CPU or GPU, one process or DDP, through Lightning Fabric.

Why Fabric rather than ``lightning.Trainer``: the loop below is short enough to read in one
sitting, and owning it makes exact resume straightforward. Every batch is a pure function of
``(seed, step, rank)`` (see :class:`StepBatchSampler`), so restoring weights, optimiser, EMA, step
counter and RNG state reproduces an uninterrupted run bit for bit. Fabric supplies devices, mixed
precision and DDP (``--devices N --nodes M``; torchrun and SLURM environments are detected).

A run folder holds::

    RUN/config.yaml          the resolved config
    RUN/model.safetensors    the latest exported weights (EMA when enabled) -> `waveloom generate`
    RUN/resume.pt            weights + optimiser + EMA + step + RNG, for --resume (tensors only)
    RUN/tb/                  TensorBoard scalars, audio samples and spectrogram images
    RUN/samples/             the same samples as WAV + PNG
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.utils.data import DataLoader, Sampler

from waveloom.checkpoint import default_file_mode, save_checkpoint
from waveloom.config import RunConfig
from waveloom.errors import CheckpointError, ConfigError, DataError
from waveloom.models.registry import build_model
from waveloom.train import adversarial as adv
from waveloom.train.ema import EMA

RESUME_FILE = "resume.pt"
MODEL_FILE = "model.safetensors"


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


def _precision(requested: str, accelerator: str) -> str:
    if requested != "auto":
        return requested
    if accelerator == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def _lr_lambda(cfg: RunConfig):
    t = cfg.train

    def factor(step: int) -> float:
        if t.warmup_steps and step < t.warmup_steps:
            return (step + 1) / t.warmup_steps
        if t.lr_decay == "cosine":
            progress = (step - t.warmup_steps) / max(1, t.max_steps - t.warmup_steps)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return 1.0

    return factor


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save to a temp file in the same folder, then rename: never a half-written file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, default_file_mode())
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_resume_state(path: Path) -> dict[str, Any]:
    """Read resume.pt with ``weights_only=True``: tensors and plain containers, never code."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad resume file
        raise CheckpointError(
            f"{path}: cannot resume from it ({type(err).__name__}); delete it to start over"
        ) from None


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
) -> TrainResult:
    """Train ``cfg``'s model on the cache at ``data``, writing the run folder ``out``."""
    import lightning as L
    from tqdm.auto import tqdm

    from waveloom.data.cache import AudioCache
    from waveloom.data.dataset import ChunkSequenceDataset, WindowDataset

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise DataError(
            f"{out}: run folder is not writable ({err.strerror}); pass another --out"
        ) from None
    resume_path = out / RESUME_FILE
    if resume_path.exists() and not resume:
        raise DataError(
            f"{out} already holds a run ({RESUME_FILE}); pass --resume to continue it or choose "
            "another --out"
        )

    cache = AudioCache(data)
    cache.check_sample_rate(cfg.data.sample_rate)
    _check_vocabulary(cfg, cache)

    fabric = L.Fabric(
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy,
        precision=_precision(cfg.train.precision, accelerator if accelerator != "auto" else (
            "cuda" if torch.cuda.is_available() else "cpu")),
    )
    fabric.launch()
    fabric.seed_everything(cfg.train.seed, workers=True, verbose=False)

    model = build_model(cfg)
    t = cfg.train
    if t.init_from and not (resume and resume_path.exists()):
        # Before the optimiser and the EMA exist, so both start from the loaded weights.
        _init_from(model, cfg, Path(t.init_from))
    # Adversarial families: two optimisers and their own update (waveloom.train.adversarial).
    adversarial = adv.is_adversarial(cfg)
    optimizer_d = scheduler_d = None
    if adversarial:
        optimizer, optimizer_d = adv.build_optimizers(model, cfg)
        scheduler_d = torch.optim.lr_scheduler.LambdaLR(optimizer_d, _lr_lambda(cfg))
    else:
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=t.lr, betas=tuple(t.betas), weight_decay=t.weight_decay
        )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg))
    ema = None
    if t.ema_decay > 0:
        ema = adv.generator_ema(model, t.ema_decay) if adversarial else EMA(model, t.ema_decay)

    start_step = 0
    if resume and resume_path.exists():
        state = load_resume_state(resume_path)
        try:
            model.load_state_dict(state["model"])
            # Loaded once here to fail early on a mismatch, and again after fabric.setup() has
            # moved the parameters: load_state_dict puts the moments on the parameters' device.
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if optimizer_d is not None and scheduler_d is not None:
                optimizer_d.load_state_dict(state["optimizer_d"])
                scheduler_d.load_state_dict(state["scheduler_d"])
            if ema is not None and state.get("ema"):
                ema.load_state_dict(state["ema"])
        except (KeyError, RuntimeError, ValueError) as err:
            raise CheckpointError(
                f"{resume_path}: does not match this config ({str(err).splitlines()[0]}); "
                "resume with the config the run was started with"
            ) from None
        start_step = int(state["step"])
        rng_state = state["rng"]  # restored right before the loop: see there
    elif resume:
        fabric.print(f"note: {resume_path} not found; starting from step 0")
    if not start_step:
        rng_state = None

    if fabric.is_global_zero:
        (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    world = fabric.world_size
    if t.max_steps <= start_step:
        fabric.print(f"run already at step {start_step} >= max_steps {t.max_steps}; nothing to do")
        return TrainResult(out, start_step, False, float("nan"), 0.0, fabric.is_global_zero)

    bptt = model.truncated_bptt  # items are sequences of consecutive windows (see _updates)
    chunks = cfg.data.chunks if bptt else 1
    dataset_cls, sizes = WindowDataset, {"window": cfg.data.window}
    if bptt:
        dataset_cls, sizes = ChunkSequenceDataset, {"chunk": cfg.data.window, "n_chunks": chunks}
    dataset = dataset_cls(
        cache,
        split=cfg.data.train_split,
        **sizes,
        context=model.context,
        keys=model.batch_keys(),
        roll_hop=cfg.data.roll_hop,
        min_rms=cfg.data.min_rms,
        onset_fraction=cfg.data.onset_fraction,
        epoch_size=t.max_steps * cfg.data.batch_size * world,
        seed=t.seed,
    )
    sampler = StepBatchSampler(start_step, t.max_steps, cfg.data.batch_size, fabric.global_rank,
                               world)
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=cfg.data.num_workers,
        persistent_workers=cfg.data.num_workers > 0,
        pin_memory=fabric.device.type == "cuda",
    )
    loader = fabric.setup_dataloaders(loader, use_distributed_sampler=False)
    if optimizer_d is None:
        model, optimizer = fabric.setup(model, optimizer)
    else:
        model, optimizer, optimizer_d = fabric.setup(model, optimizer, optimizer_d)
    if start_step:
        optimizer.load_state_dict(state["optimizer"])
        if optimizer_d is not None:
            optimizer_d.load_state_dict(state["optimizer_d"])
    # Route loss() through the strategy's forward so DDP syncs gradients for it.
    model.mark_forward_method("loss")
    if bptt:
        model.mark_forward_method("loss_chunk")
    for name in adv.FORWARD_METHODS if adversarial else ():
        model.mark_forward_method(name)
    if ema is not None:
        ema.shadow = {k: v.to(fabric.device) for k, v in ema.shadow.items()}

    writer = None
    if fabric.is_global_zero:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tb"))

    def export() -> None:
        """Write model.safetensors (EMA weights if enabled) and resume.pt; rank 0 only."""
        fabric.barrier()
        if fabric.is_global_zero:
            raw = _unwrap(model)
            atomic_torch_save(
                {
                    "step": step,
                    "model": {k: v.detach().cpu() for k, v in raw.state_dict().items()},
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "ema": ema.state_dict() if ema is not None else {},
                    "rng": _rng_state(fabric.device),
                    **({"optimizer_d": optimizer_d.state_dict(),
                        "scheduler_d": scheduler_d.state_dict()}
                       if optimizer_d is not None and scheduler_d is not None else {}),
                },
                resume_path,
            )
            with torch.random.fork_rng(devices=[]):  # building draws init weights
                export_model = build_model(cfg)
            export_model.load_state_dict({k: v.cpu() for k, v in raw.state_dict().items()})
            if ema is not None:
                ema_cpu = EMA.__new__(EMA)
                ema_cpu.decay, ema_cpu.shadow = ema.decay, {
                    k: v.cpu() for k, v in ema.shadow.items()
                }
                ema_cpu.copy_to(export_model)
            save_checkpoint(out / MODEL_FILE, export_model, cfg, extra={
                "step": step,
                # Names for `generate --instrument NAME`: ids are the cache's vocabulary.
                "instruments": list(cache.info.get("instruments", [])),
            })
        fabric.barrier()

    step = start_step
    last_loss = float("nan")
    started = time.perf_counter()
    bar = tqdm(total=t.max_steps, initial=start_step, desc="train", unit="step",
               disable=not (progress and fabric.is_global_zero), dynamic_ncols=True)
    interrupted = False
    check_every = 1 if fabric.device.type == "cpu" else t.log_every
    with _StopFlag() as stop:
        model.train()
        window_t0, window_samples = time.perf_counter(), 0
        # The loader's iterator draws its base seed from the global RNG when it starts (lazily,
        # at the first batch, behind Fabric's wrapper), so fetch the first batch (windows come
        # from their own seeded generators, not the global RNG) and only then restore a resumed
        # run's RNG: the draws of step k+1 (label dropout, latents) equal the straight run's.
        batches = iter(loader)
        first = next(batches, None)
        batches = itertools.chain([] if first is None else [first], batches)
        if rng_state is not None:
            _set_rng_state(rng_state, fabric.device)
        updates = (
            adv.updates(model, batches, optimizer, optimizer_d, fabric, cfg, ema, _unwrap,
                        start_step)
            if adversarial else _updates(model, batches, bptt)  # 1 or data.chunks a batch
        )
        for batch, losses, last in updates:
            loss = losses["loss"]
            # Reading the loss waits for the device; on a GPU do it only when it is reported or
            # about to be saved, so the CPU queues the next steps while the GPU works.
            if check_every == 1 or (step + 1) % check_every == 0 or (
                (step + 1) % t.checkpoint_every == 0 or step + 1 == t.max_steps
                or stop.raised is not None
            ):
                last_loss = float(loss.detach())
                if not math.isfinite(last_loss):
                    raise DataError(
                        f"loss became {last_loss} at step {step}; lower train.lr or check the "
                        f"data (last good weights are in {out / MODEL_FILE})"
                    )
            if not adversarial:  # (the adversarial update has been made already)
                optimizer.zero_grad(set_to_none=True)
                fabric.backward(loss)
                if t.grad_clip > 0:
                    fabric.clip_gradients(
                        model, optimizer, max_norm=t.grad_clip, error_if_nonfinite=False
                    )
                optimizer.step()
                if ema is not None:
                    ema.update(_unwrap(model))
            if not last:
                continue  # the next window of this step's sequences (truncated BPTT)
            scheduler.step()
            if scheduler_d is not None:
                scheduler_d.step()
            step += 1
            window_samples += batch["audio"].shape[0] * cfg.data.window * chunks * world
            bar.update(1)
            if step % t.log_every == 0 or step == t.max_steps:
                rate = window_samples / max(1e-9, time.perf_counter() - window_t0)
                window_t0, window_samples = time.perf_counter(), 0
                bar.set_postfix(loss=f"{last_loss:.3f}", refresh=False)
                if writer is not None:
                    for key, value in losses.items():
                        writer.add_scalar(f"train/{key}", float(value.detach()), step)
                    writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
                    writer.add_scalar("train/samples_per_second", rate, step)
            if t.sample_every and step % t.sample_every == 0 and writer is not None:
                _log_sample(model, cfg, dataset, out, writer, step)
            if step % t.checkpoint_every == 0 or step == t.max_steps:
                export()
            if stop.raised is not None:
                interrupted = True
                if step % t.checkpoint_every != 0:
                    export()
                name = signal.Signals(stop.raised).name
                fabric.print(f"\n{name}: saved step {step} to {out}; continue with --resume")
                break
    bar.close()
    if writer is not None:
        writer.close()
    return TrainResult(out, step, interrupted, last_loss, time.perf_counter() - started,
                       fabric.is_global_zero)


def _init_from(model: torch.nn.Module, cfg: RunConfig, path: Path) -> None:
    """Load ``train.init_from``'s weights into the freshly built ``model`` (one-line errors)."""
    from waveloom.checkpoint import load_weights, tied_names
    from waveloom.models.load import read_config

    if not path.is_file():
        raise CheckpointError(f"train.init_from={path}: no such file; pass a .safetensors "
                              "checkpoint (e.g. a run's model.safetensors)")
    family = read_config(path).family
    if family != cfg.family:
        raise CheckpointError(f"train.init_from={path}: a {family!r} checkpoint cannot start a "
                              f"{cfg.family!r} run; pass one of the same family")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        shapes = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    differ = sorted(k for k in expected if k in shapes and shapes[k] != expected[k])
    extra = sorted(set(shapes) - set(expected))
    twins = tied_names(model)  # tied tensors are stored once
    missing = sorted(k for k in set(expected) - set(shapes) if twins.get(k) not in shapes)
    if differ or extra or missing:
        what = (f"{differ[0]} is {shapes[differ[0]]} there, {expected[differ[0]]} here" if differ
                else f"it has {extra[0]}, which this model lacks" if extra
                else f"it lacks {missing[0]}")
        raise CheckpointError(f"train.init_from={path}: its model is shaped differently ({what}); "
                              "use the preset and model.* overrides it was trained with")
    load_weights(model, path)


def _rng_state(device: torch.device) -> dict[str, Any]:
    """The RNG states a step draws from: the CPU's, and the GPU's when training on one."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _updates(model: torch.nn.Module, loader: Any,
             bptt: bool) -> Iterator[tuple[dict[str, Any], dict[str, torch.Tensor], bool]]:
    """(batch, losses, last of its step) for each optimiser update.

    A window family makes one update per batch. A truncated-BPTT family (``truncated_bptt``)
    gets sequences of consecutive windows of one file ('audio' [B, chunks, window + context],
    'roll' [B, chunks, 128, frames]) and makes one update per window, in order, carrying its
    recurrent state from window to window detached (gradients stop at window boundaries); the
    state is dropped after the last window, since the next batch starts new files. A step is
    thus ``data.chunks`` updates; checkpoints fall between sequences, so resume stays exact.
    """
    for batch in loader:
        if not bptt:
            yield batch, model.loss(batch), True
            continue
        state, n = None, batch["audio"].shape[1]
        for j in range(n):
            window = {k: v[:, j] if k in ("audio", "roll") else v for k, v in batch.items()}
            losses, state = model.loss_chunk(window, state)
            yield batch, losses, j == n - 1
            state = _detach(state)


def _detach(state: Any) -> Any:
    """A recurrent state (tensors in nested tuples/lists) cut from the graph."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(_detach(s) for s in state)
    return state


def _check_vocabulary(cfg: RunConfig, cache) -> None:
    """Fail before training if the cache has more instruments than the model has embeddings."""
    n_cache = len(cache.info.get("instruments", []))
    n_model = getattr(cfg.model, "num_instruments", None)
    wants = getattr(cfg.model, "instrument_conditioning", True)
    if n_model is not None and wants and n_cache > n_model:
        raise ConfigError(
            f"{cache.root} has {n_cache} instruments but model.num_instruments={n_model}; "
            f"pass model.num_instruments={n_cache} (or more)"
        )
    model_sr = getattr(cfg.model, "sample_rate", None)
    if model_sr is not None and model_sr != cfg.data.sample_rate:
        raise ConfigError(
            f"model.sample_rate={model_sr} but data.sample_rate={cfg.data.sample_rate}; "
            "set both to the cache's rate"
        )


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The user's module inside Fabric's wrapper (``.module`` is the original, DDP or not)."""
    return getattr(model, "module", model)


def _log_sample(model, cfg: RunConfig, dataset, out: Path, writer, step: int) -> None:
    """Generate one short sample conditioned like a real example; log audio + spectrogram."""
    from waveloom.audio.io import save_audio
    from waveloom.audio.plots import plot_rainbowgram, plot_spectrogram
    from waveloom.config import SamplingOptions
    from waveloom.sampling.sample import sample

    raw = _unwrap(model)
    example = dataset[0]
    cond = {k: torch.as_tensor(example[k])[None] for k in raw.conditioning_keys() if k in example}
    if any(k not in example for k in raw.conditioning_keys()):
        # Conditioning the data set does not serve (a vocoder's mel) comes from the window itself.
        cond["audio"] = torch.as_tensor(example["audio"])[None]
    length = int(cfg.train.sample_seconds * cfg.data.sample_rate)
    was_training = raw.training
    raw.eval()
    audio = sample(raw, 1, length, cond, SamplingOptions(seed=step, progress=False))[0]
    audio = audio.float().cpu()
    raw.train(was_training)
    sr = cfg.data.sample_rate
    folder = out / "samples"
    wav = save_audio(folder / f"step-{step:07d}.wav", audio.numpy(), sr)
    # Families that model phase (GANSynth's instantaneous frequency) log rainbowgrams.
    plot = plot_rainbowgram if getattr(raw, "rainbowgram", False) else plot_spectrogram
    png = plot(audio.numpy(), sr, wav.with_suffix(".png"), title=f"step {step}")
    writer.add_audio("sample", audio[None], step, sample_rate=sr)
    import matplotlib.image as mpimg

    writer.add_image("sample_spectrogram", mpimg.imread(png)[..., :3], step, dataformats="HWC")
