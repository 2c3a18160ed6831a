"""A Parallel-WaveNet-style student: an IAF stack distilled from a Gaussian WaveNet teacher.

Why: the teacher samples one value at a time; the student turns white noise into a whole clip
in ``K`` parallel WaveNet passes (:mod:`waveloom.nn.iaf`). It is trained only through the
teacher, by *probability density distillation* in ClariNet's closed form (Ping et al. 2019):

* the student draws ``x = IAF(z)`` from noise for a window, and knows, for every step, the
  Gaussian ``q_t = N(M_t, S_t^2)`` that ``x_t`` was drawn from given its past;
* the frozen teacher (``model.teacher``: a ``wavenet`` with ``head: gaussian`` and
  ``input: scalar``) reads the student's own samples, teacher-forced, and gives ``p_t``;
* loss = mean over steps of ``KL(q_t || p_t) + lambda (log s_q - log s_p)^2`` (ClariNet's
  regularised reverse KL, lambda 4) + ``power_weight`` x the power loss of Parallel WaveNet
  (van den Oord et al. 2018): the squared difference of log time-averaged STFT power between
  the student's window and a real window with the same labels, which keeps the student out of
  whisper-like modes the per-step KL alone allows.

Values live where the teacher's Gaussian lives: the mu-law companded domain in [-1, 1]; audio
is its expansion. The teacher's gradients reach the student through the teacher's input (its
scalar input reads the student's float samples), which is why an embedding-input WaveNet
cannot be a teacher.

The student is told what the teacher is told: the pitch and instrument labels (its own
embedding of them) and, when the teacher has them, the pitch clock and the note clock
(:mod:`waveloom.nn.pitch_clock`) as local channels of every flow.

The teacher's weights are loaded once before training (:meth:`Student.load_pretrained`) and
stay inside the checkpoint, so a student file can always be compared with its teacher.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from waveloom.audio.mulaw import mulaw_decode
from waveloom.audio.spectral import stft
from waveloom.config import ModelConfig, SamplingOptions, require_positive
from waveloom.errors import ConfigError
from waveloom.models.base import Batch, Generative, require_default_engine
from waveloom.models.plan import global_vector
from waveloom.nn.conditioning import GlobalConditioning
from waveloom.nn.iaf import IAFStack, gaussian_kl
from waveloom.nn.pitch_clock import (
    EXCITATION_CHANNELS,
    NOTE_CLOCK_CHANNELS,
    note_clock,
    pitch_excitation,
)
from waveloom.nn.wavenet import WaveNetStack

#: Samples per span when generating: a flow's activations for ~2 s of audio at a time, so a
#: minute of 16 clips takes the memory of seconds (the result is the same; tested).
GENERATE_CHUNK = 32768


@dataclass
class StudentConfig(ModelConfig):
    """Hyper-parameters; the defaults are ClariNet's student shape at a CPU width (ClariNet:
    6 flows of 10 layers, 64 channels; Parallel WaveNet: 4 flows of 10, 10, 10, 30)."""

    teacher: str = ""  # the Gaussian WaveNet checkpoint distilled
    teacher_config: str = ""  # its run config as JSON (recorded from ``teacher`` when empty)
    flow_layers: tuple[int, ...] = (10, 10, 10, 10, 10, 10)  # dilations 1..2^(L-1) per flow
    residual_channels: int = 64
    dilation_channels: int = 64
    skip_channels: int = 64
    end_channels: int = 64
    kernel_size: int = 2
    log_scale_weight: float = 4.0  # ClariNet's lambda on (log s_q - log s_p)^2
    power_weight: float = 1.0  # Parallel WaveNet's power loss
    power_fft: int = 512
    sample_rate: int = 16000

    def validate(self) -> None:
        require_positive(self, "residual_channels", "dilation_channels", "skip_channels",
                         "end_channels", "power_fft", "sample_rate")
        if not self.flow_layers or any(n <= 0 for n in self.flow_layers):
            raise ConfigError(f"model.flow_layers={list(self.flow_layers)}: give one positive "
                              "layer count per flow")
        if self.kernel_size < 2:
            raise ConfigError(f"model.kernel_size={self.kernel_size} must be >= 2")
        if self.log_scale_weight < 0 or self.power_weight < 0:
            raise ConfigError("model.log_scale_weight and model.power_weight must be >= 0")
        if not self.teacher_config and self.teacher:  # record the teacher's architecture
            from waveloom.models.load import read_run_dict

            self.teacher_config = json.dumps(read_run_dict(self.teacher))
        if self.teacher_config:  # a usable teacher, or one line saying why not
            self.teacher_run()

    def teacher_run(self) -> Any:
        """The teacher's run config (ConfigError unless a Gaussian, scalar-input WaveNet)."""
        from waveloom.models.load import build_run_config

        if not self.teacher_config:
            raise ConfigError("model.teacher: give the WaveNet checkpoint to distil (trained "
                              "with model.head=gaussian model.input=scalar; docs/distillation.md)")
        run = build_run_config(json.loads(self.teacher_config), source="model.teacher_config")
        m = run.model
        if run.family != "wavenet" or m.head != "gaussian" or m.input != "scalar":
            what = run.family if run.family != "wavenet" else f"head={m.head}, input={m.input}"
            raise ConfigError(f"model.teacher is a {what} model; a teacher is a wavenet with "
                              "model.head=gaussian model.input=scalar (docs/distillation.md)")
        if m.local != "none":
            raise ConfigError(f"model.teacher has model.local={m.local}; distilling a locally "
                              "conditioned WaveNet is not supported yet")
        if m.sample_rate != self.sample_rate:
            raise ConfigError(f"the teacher runs at {m.sample_rate} Hz but "
                              f"model.sample_rate={self.sample_rate}")
        return run


class Student(Generative):
    """An IAF student of a Gaussian WaveNet; see the module docstring."""

    config_class: ClassVar[type[ModelConfig]] = StudentConfig
    config: StudentConfig

    def __init__(self, config: StudentConfig) -> None:
        super().__init__(config)
        from waveloom.models.wavenet import WaveNet

        c = config
        t = c.teacher_run().model
        self.teacher = WaveNet(t).requires_grad_(False)
        self.labels = None
        if t.pitch_conditioning or t.instrument_conditioning:
            self.labels = GlobalConditioning(t.cond_dim, t.num_instruments,
                                             pitch=t.pitch_conditioning,
                                             instrument=t.instrument_conditioning)
        g = 0 if self.labels is None else self.labels.out_dim
        local = ((EXCITATION_CHANNELS if t.pitch_excitation else 0)
                 + (NOTE_CLOCK_CHANNELS if t.note_clock else 0))
        self.iaf = IAFStack([
            WaveNetStack(2, c.residual_channels, c.dilation_channels, c.skip_channels,
                         c.end_channels, layers_per_stack=n, stacks=1,
                         kernel_size=c.kernel_size, input="scalar", global_channels=g,
                         local_channels=local)
            for n in c.flow_layers])

    def train(self, mode: bool = True) -> Student:
        super().train(mode)
        self.teacher.eval()  # frozen: no input noise, no label dropout
        return self

    def load_pretrained(self) -> None:
        """Load the teacher's weights from ``model.teacher`` (the trainer calls this once
        before training from scratch)."""
        from safetensors.torch import load_file

        if not self.config.teacher:
            return
        path = Path(self.config.teacher)
        if not path.is_file():
            raise ConfigError(f"model.teacher={self.config.teacher}: no such checkpoint")
        self.teacher.load_state_dict(load_file(str(path)))

    # ------------------------------------------------------------------ contract

    @property
    def context(self) -> int:
        """The teacher's receptive field: a training window is the student's own output for
        ``context + window`` samples, and the KL covers the last ``window``, where the teacher
        sees a full history of student samples."""
        return self.teacher.context

    def conditioning_keys(self) -> tuple[str, ...]:
        return self.teacher.conditioning_keys()

    def batch_keys(self) -> tuple[str, ...]:
        return self.teacher.batch_keys()

    def _param_device(self) -> torch.device:
        return self.teacher.stack.out2.weight.device

    def _conditioning(self, labels: dict[str, Any], n: int, times: Tensor
                      ) -> tuple[Tensor | None, Tensor | None]:
        """Global vector [n, G] and clocks [n, L, T] for samples at ``times`` [n, T] (samples
        since the note's onset; the random-phase pitch clock runs from phase 0 at the first)."""
        g = global_vector(self.labels, labels, n, self._param_device())
        t = self.teacher.config
        parts = []
        if t.pitch_excitation:
            onset = t.excitation_phase == "onset"
            exc_times = times if onset else times - times[:, :1]
            parts.append(pitch_excitation(labels.get("pitch"), exc_times, t.sample_rate,
                                          random_phase=False, onset_phase=onset,
                                          device=self._param_device()))
        if t.note_clock:
            parts.append(note_clock(times, t.sample_rate))
        return g, (torch.cat(parts, 1) if parts else None)

    def draw(self, z: Tensor, labels: dict[str, Any], start: Tensor | int = 0,
             chunk: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Noise ``z`` [n, T] -> (companded sample, mean, log-scale), each [n, T], for samples
        starting ``start`` (one or n values) samples after the note's onset; ``chunk``: see
        :meth:`waveloom.nn.iaf.IAFStack.forward`."""
        n, length = z.shape
        offset = torch.as_tensor(start, device=z.device).reshape(-1, 1)
        times = (offset + torch.arange(length, device=z.device)).expand(n, -1)
        g, l = self._conditioning(labels, n, times)
        return self.iaf(z, g, l, chunk=chunk)

    # ------------------------------------------------------------------ training

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Regularised reverse KL to the teacher over the window's last ``T - context`` steps,
        plus the power loss; ``batch['noise']`` [B, T] is the objective's seeded draw."""
        audio = batch["audio"]
        z = batch.get("noise")
        if z is None:  # a fixed draw: the loss stays a function of the batch
            gen = torch.Generator().manual_seed(0)
            z = torch.randn(tuple(audio.shape), generator=gen).to(audio)
        labels = {k: batch.get(k) for k in ("pitch", "instrument")}
        x, mean, log_scale = self.draw(z, labels, batch.get("start", 0))
        student = {**batch, "audio": mulaw_decode(x.clamp(-1.0, 1.0))}
        mean_p, log_scale_p = self.teacher.predictive_gaussian(student)
        ctx = self.context
        mean_q, log_scale_q = mean[:, ctx:], log_scale[:, ctx:]
        kl = gaussian_kl(mean_q, log_scale_q, mean_p, log_scale_p).mean()
        spread = (log_scale_q - log_scale_p).pow(2).mean()
        power = self.power_loss(student["audio"], audio)
        c = self.config
        loss = kl + c.log_scale_weight * spread + c.power_weight * power
        return {"loss": loss, "kl": kl.detach(), "log_scale_gap": spread.detach(),
                "power": power.detach()}

    def power_loss(self, fake: Tensor, real: Tensor) -> Tensor:
        """Mean squared difference of log time-averaged STFT power [B, bins] (Parallel
        WaveNet's power loss, in logs so that quiet bands count as much as loud ones)."""
        n = self.config.power_fft

        def power(x: Tensor) -> Tensor:
            return torch.log(stft(x.float(), n, n // 4).abs().pow(2).mean(-1) + 1e-7)

        return (power(fake) - power(real)).pow(2).mean()

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def generate(self, n: int, length: int, cond: dict[str, Any] | None = None,
                 options: SamplingOptions | None = None) -> Tensor:
        """``n`` clips ``[n, length]`` in one pass of every flow: ``z ~ N(0, temperature^2)``,
        the note starting at the first sample."""
        options = options or SamplingOptions()
        require_default_engine(self, options, "samples in one parallel pass")
        gen = torch.Generator(device=self._param_device()).manual_seed(int(options.seed or 0))
        z = torch.randn(n, length, generator=gen, device=self._param_device()) * options.temperature
        x, _, _ = self.draw(z, dict(cond or {}), chunk=GENERATE_CHUNK)
        return mulaw_decode(x.clamp(-1.0, 1.0))

    def example_batch(self, batch_size: int, length: int, seed: int = 0) -> Batch:
        batch = super().example_batch(batch_size, length, seed)
        batch["instrument"] = batch["instrument"] % self.teacher.config.num_instruments
        batch["start"] = torch.zeros(batch_size, dtype=torch.long)
        return batch

