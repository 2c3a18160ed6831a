"""What a run reports: the progress bar, TensorBoard scalars, and audio samples.

Only rank 0 writes TensorBoard (``RUN/tb``) and samples; metrics arrive as device tensors and are
read (a GPU sync) only on the steps that log them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from waveloom.config import RunConfig, SamplingOptions
from waveloom.sampling.sample import sample


class Logger:
    """Progress bar + TensorBoard writer of one run (a context manager: closes both)."""

    def __init__(self, out: Path, fabric: Any, cfg: RunConfig, start_step: int,
                 progress: bool) -> None:
        from tqdm.auto import tqdm

        self.cfg, self.world = cfg, fabric.world_size
        self.writer = None
        if fabric.is_global_zero:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out / "tb"))
        self.bar = tqdm(total=cfg.train.max_steps, initial=start_step, desc="train", unit="step",
                        disable=not (progress and fabric.is_global_zero), dynamic_ncols=True)
        self.postfix: dict[str, str] = {}
        self._t0, self._samples = time.perf_counter(), 0

    def __enter__(self) -> Logger:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.close()
        if self.writer is not None:
            self.writer.close()

    def step(self, step: int, metrics: dict[str, Tensor], loss: float, lr: float,
             samples: int) -> None:
        """Count finished step ``step`` (``samples`` predicted samples on this rank); on
        logging steps write every metric, the learning rate and the throughput."""
        self._samples += samples * self.world
        self.bar.update(1)
        t = self.cfg.train
        if step % t.log_every and step != t.max_steps:
            return
        rate = self._samples / max(1e-9, time.perf_counter() - self._t0)
        self._t0, self._samples = time.perf_counter(), 0
        self.postfix["loss"] = f"{loss:.3f}"
        self.bar.set_postfix(self.postfix, refresh=False)
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(f"train/{key}", float(value.detach()), step)
            self.writer.add_scalar("train/lr", lr, step)
            self.writer.add_scalar("train/samples_per_second", rate, step)

    def validation(self, step: int, loss: float) -> None:
        """Report the validation loss of ``step`` (TensorBoard ``val/loss`` and the bar)."""
        self.postfix["val"] = f"{loss:.3f}"
        self.bar.set_postfix(self.postfix, refresh=False)
        if self.writer is not None:
            self.writer.add_scalar("val/loss", loss, step)

    def sample(self, model: nn.Module, dataset: Any, out: Path, step: int) -> None:
        """Every ``train.sample_every`` steps (rank 0): one generated sample of what the model
        makes (its class's ``data_kind``): :func:`log_sample` (audio) or
        :func:`log_events_sample` (symbolic)."""
        every = self.cfg.train.sample_every
        if every and step % every == 0 and self.writer is not None:
            kind = getattr(getattr(model, "module", model), "data_kind", "audio")
            SAMPLE_LOGGERS[kind](model, self.cfg, dataset, out, self.writer, step)


def log_sample(model: nn.Module, cfg: RunConfig, dataset: Any, out: Path, writer: Any,
               step: int) -> None:
    """Generate one short sample conditioned like a real example; log audio + spectrogram."""
    from waveloom.audio.io import save_audio
    from waveloom.audio.plots import plot_rainbowgram, plot_spectrogram

    raw = getattr(model, "module", model)
    example = dataset[0]
    cond = {k: torch.as_tensor(example[k])[None] for k in raw.conditioning_keys() if k in example}
    if any(k not in example for k in raw.conditioning_keys()):
        # Conditioning the data set does not serve (a vocoder's mel) comes from the window itself.
        cond["audio"] = torch.as_tensor(example["audio"])[None]
    length = int(cfg.train.sample_seconds * cfg.data.sample_rate)
    was_training = raw.training
    raw.eval()
    options = SamplingOptions(seed=step, progress=False)
    audio = sample(raw, 1, length, cond, options)[0].float().cpu()
    raw.train(was_training)
    sr = cfg.data.sample_rate
    folder = out / "samples"
    wav = save_audio(folder / f"step-{step:07d}.wav", audio.numpy(), sr)
    # Families that model phase (instantaneous frequency) log rainbowgrams.
    plot = plot_rainbowgram if getattr(raw, "rainbowgram", False) else plot_spectrogram
    png = plot(audio.numpy(), sr, wav.with_suffix(".png"), title=f"step {step}")
    writer.add_audio("sample", audio[None], step, sample_rate=sr)
    import matplotlib.image as mpimg

    writer.add_image("sample_spectrogram", mpimg.imread(png)[..., :3], step, dataformats="HWC")


def log_events_sample(model: nn.Module, cfg: RunConfig, dataset: Any, out: Path, writer: Any,
                      step: int) -> None:
    """A symbolic model's sample: ``train.sample_seconds`` of events (seed = step) written as
    ``samples/step-K.mid`` with its piano roll, which TensorBoard shows."""
    import matplotlib.image as mpimg

    from waveloom.audio.plots import plot_notes
    from waveloom.data.events import events_to_midi, events_to_notes
    from waveloom.sampling.events import compose_events

    raw = getattr(model, "module", model)
    tokens = compose_events(raw, cfg.train.sample_seconds, seed=step)[0]
    mid = out / "samples" / f"step-{step:07d}.mid"
    mid.parent.mkdir(parents=True, exist_ok=True)
    events_to_midi(tokens).write(str(mid))
    png = plot_notes(events_to_notes(tokens), mid.with_suffix(".png"), title=f"step {step}")
    writer.add_image("sample_piano_roll", mpimg.imread(png)[..., :3], step, dataformats="HWC")


#: How each data kind (a model class's ``data_kind``) logs its training samples.
SAMPLE_LOGGERS = {"audio": log_sample, "symbolic": log_events_sample}
