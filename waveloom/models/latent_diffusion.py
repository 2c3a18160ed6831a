"""Latent diffusion over an autoencoder's continuous latents (the Stable Audio / AudioLDM line).

Why latents: 16 kHz audio is 16,000 values a second; an autoencoder's encoder turns it into
``dim`` channels every 320-1024 samples (15-50 frames a second for the presets here), a
sequence short enough for a small Transformer to attend over 30 s at once. The autoencoder
(``model.autoencoder``, a ``codec`` or ``spectral_ae`` checkpoint:
:mod:`waveloom.models.latent_autoencoder`) is frozen inside the model; its run config is
recorded in ``model.autoencoder_config`` when the model is first built, and its weights are
loaded once before training (:meth:`LatentDiffusion.load_pretrained`), so the exported
checkpoint is self-contained.

* **Target**: the encoder's continuous latents ``[B, dim, F]`` (a codec's before its
  quantizer), scaled to unit standard deviation (the scale is measured on the first training
  batch and kept as a buffer).
* **Denoiser**: a small DiT (:mod:`waveloom.nn.dit`), conditioned through adaLN on the sum of
  the diffusion-step embedding (DiffWave's), the label vector (pitch, instrument; the shared
  ``GlobalConditioning`` with label dropout for classifier-free guidance) and the **timing**
  embedding (Stable Audio: the window's start and the example's total length in seconds), so
  one model makes any length up to ``max_seconds``.
* **Objective**: v-prediction (``prediction = "v"``), T = 1000 linear betas 1e-4..0.02.
* **Sampling**: any of the shared samplers (:mod:`waveloom.sampling.diffusion`); guidance
  ``cond['cfg']`` mixes the conditional and unconditional predictions in one batch; the final
  latents go through the autoencoder's decoder (a codec quantises them first).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from waveloom.config import ModelConfig, require_positive
from waveloom.errors import ConfigError
from waveloom.models.base import Batch
from waveloom.models.diffusion import Diffusion
from waveloom.models.latent_autoencoder import LATENT_FAMILIES, FrozenAutoencoder
from waveloom.models.vocoder_conditioning import label_vectors
from waveloom.nn.conditioning import GlobalConditioning
from waveloom.nn.diffusion_schedule import NoiseSchedule
from waveloom.nn.diffwave import STEP_HIDDEN, StepEmbedding
from waveloom.nn.dit import DiT


@dataclass
class LatentDiffusionConfig(ModelConfig):
    """Hyper-parameters; the defaults are a small DiT (6 x 256)."""

    autoencoder: str = ""  # the codec / spectral_ae checkpoint whose latents are modelled
    autoencoder_config: str = ""  # its run config as JSON (recorded from it when empty)
    d_model: int = 256
    layers: int = 6
    heads: int = 4
    diffusion_steps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    pitch_conditioning: bool = True
    instrument_conditioning: bool = True
    num_instruments: int = 16
    cond_dropout: float = 0.1  # classifier-free guidance's unconditioned share
    timing_conditioning: bool = True
    max_seconds: float = 60.0
    sample_rate: int = 16000

    def validate(self) -> None:
        require_positive(self, "d_model", "layers", "heads", "diffusion_steps",
                         "num_instruments", "max_seconds", "sample_rate")
        if self.d_model % self.heads:
            raise ConfigError(f"model.d_model={self.d_model} must be a multiple of "
                              f"model.heads={self.heads}")
        NoiseSchedule(self.diffusion_steps, self.beta_start, self.beta_end)
        if not 0.0 <= self.cond_dropout < 1.0:
            raise ConfigError(f"model.cond_dropout={self.cond_dropout} must be in [0, 1)")
        if not self.autoencoder_config and self.autoencoder:  # record its architecture
            from waveloom.models.load import read_run_dict

            if not Path(self.autoencoder).is_file():
                raise ConfigError(f"model.autoencoder={self.autoencoder}: no such checkpoint")
            self.autoencoder_config = json.dumps(read_run_dict(self.autoencoder))

    def autoencoder_run(self) -> Any:
        """The autoencoder's validated run config (a codec or a spectral AE)."""
        from waveloom.models.load import build_run_config

        if not self.autoencoder_config:
            raise ConfigError("model.autoencoder: give the codec or spectral_ae checkpoint "
                              "whose latents this model learns (waveloom train "
                              "configs/spectral_ae/... first)")
        run = build_run_config(json.loads(self.autoencoder_config),
                               source="model.autoencoder_config")
        if run.family not in LATENT_FAMILIES:
            raise ConfigError(f"model.autoencoder_config is a {run.family!r} config; latents "
                              f"come from one of {', '.join(LATENT_FAMILIES)}")
        return run


class LatentDiffusion(Diffusion):
    """v-prediction diffusion over frozen autoencoder latents; see the module docstring."""

    config_class: ClassVar[type[ModelConfig]] = LatentDiffusionConfig
    config: LatentDiffusionConfig
    prediction: ClassVar[str] = "v"
    #: ``generate --cfg S`` sets ``cond['cfg']`` (classifier-free guidance).
    guidance: ClassVar[bool] = True

    def __init__(self, config: LatentDiffusionConfig) -> None:
        super().__init__(config)
        c = config
        self.autoencoder = FrozenAutoencoder(c.autoencoder_run())
        if self.autoencoder.sample_rate != c.sample_rate:
            raise ConfigError(f"the autoencoder runs at {self.autoencoder.sample_rate} Hz but "
                              f"model.sample_rate={c.sample_rate}")
        self.hop, self.dim = self.autoencoder.hop, self.autoencoder.dim
        self.register_buffer("latent_scale", torch.zeros(()))
        self.schedule = NoiseSchedule(c.diffusion_steps, c.beta_start, c.beta_end)
        self.step = nn.Sequential(StepEmbedding(), nn.Linear(STEP_HIDDEN, c.d_model))
        self.labels = None
        if c.pitch_conditioning or c.instrument_conditioning:
            self.labels = GlobalConditioning(c.d_model // 2, c.num_instruments,
                                             c.pitch_conditioning, c.instrument_conditioning,
                                             dropout=c.cond_dropout)
            self.label_proj = nn.Linear(self.labels.out_dim, c.d_model)
        self.timing = nn.Linear(2 * 64, c.d_model) if c.timing_conditioning else None
        self.net = DiT(self.dim, c.d_model, c.layers, c.heads)

    def conditioning_keys(self) -> tuple[str, ...]:
        return self.labels.keys() if self.labels is not None else ()

    def batch_keys(self) -> tuple[str, ...]:
        timing = ("start", "total") if self.timing is not None else ()
        return self.conditioning_keys() + timing

    def load_pretrained(self) -> None:
        """Load the autoencoder's weights from ``model.autoencoder`` (the trainer calls this
        before training from scratch; nothing to load when only its config is given)."""
        from safetensors.torch import load_file

        source = self.config.autoencoder
        if not source:
            return
        if not Path(source).is_file():
            raise ConfigError(f"model.autoencoder={source}: no such checkpoint")
        self.autoencoder.load_weights(load_file(source), f"model.autoencoder={source}")

    # ------------------------------------------------------------------ latents

    def clean_target(self, batch: Batch) -> Tensor:
        latents = self.autoencoder.encode(batch["audio"])
        if self.training and float(self.latent_scale) == 0.0:  # the first batch sets it
            self.latent_scale.fill_(1.0 / float(latents.std().clamp_min(1e-6)))
        return latents * (float(self.latent_scale) or 1.0)

    def noise_shape(self, n: int, length: int) -> tuple[int, ...]:
        return (n, self.dim, -(-length // self.hop))

    def to_audio(self, x: Tensor, length: int, labels: dict[str, Any] | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        scale = float(self.latent_scale) or 1.0
        seed = 0 if generator is None else int(generator.initial_seed())
        pitch = (labels or {}).get("pitch")
        return self.autoencoder.decode(x / scale, length, seed, pitch)

    # ------------------------------------------------------------------ conditioning

    def _timing(self, start: Any, total: Any, batch: int, device: torch.device) -> Tensor:
        """Sinusoidal codes of (start, total) seconds ``[B, 128]``."""
        sr = float(self.config.sample_rate)
        values = []
        for v in (start, total):
            t = torch.as_tensor(0 if v is None else v, device=device).float().expand(batch) / sr
            angle = t[:, None] * torch.exp(torch.linspace(0, -math.log(1000.0), 32,
                                                          device=device))[None] * 10
            values.append(torch.cat([torch.sin(angle), torch.cos(angle)], 1))
        return torch.cat(values, 1)

    def condition_input(self, labels: dict[str, Any], batch: int, length: int,
                        audio: Tensor | None = None, dropout: bool = False) -> dict[str, Any]:
        """{'c': [B, D] label + timing vector, 'null': the unconditional one (guidance),
        'scale': guidance scale (``labels['cfg']``, default 1: unguided)}."""
        device = self.latent_scale.device
        c = torch.zeros(batch, self.config.d_model, device=device)
        null = c
        if self.labels is not None:
            c = self.label_proj(label_vectors(self.labels, labels, batch, dropout))
            null = self.label_proj(self.labels(None, None, batch=batch))
        if self.timing is not None:
            total = labels.get("total", length)
            timing = self.timing(self._timing(labels.get("start"), total, batch, device))
            c, null = c + timing, null + timing
        return {"c": c, "null": null, "scale": float(labels.get("cfg", 1.0))}

    def predict(self, x: Tensor, tau: Tensor, cond: dict[str, Any]) -> Tensor:
        step = self.step(tau)
        out = self.net(x, step + cond["c"])
        if cond["scale"] == 1.0:
            return out
        unconditional = self.net(x, step + cond["null"])
        return unconditional + cond["scale"] * (out - unconditional)

    def example_batch(self, batch_size: int, length: int, seed: int = 0) -> Batch:
        batch = super().example_batch(batch_size, length - length % self.hop, seed)
        batch["start"] = torch.zeros(batch_size, dtype=torch.long)
        batch["total"] = torch.full((batch_size,), batch["audio"].shape[-1])
        return batch
