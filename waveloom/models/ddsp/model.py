"""DDSP (Engel et al., ICLR 2020): a network that plays a differentiable synthesiser.

::

    f0_hz [B, F], loudness_db [B, F] (+ z [B, F, D] from the MFCC encoder, ae variant)
      -> decoder (per-input MLPs -> GRU -> MLP, :class:`~waveloom.nn.ddsp_net.DDSPDecoder`)
      -> amplitude [B, F] (exp-sigmoid), harmonic distribution [B, F, K] (softmax),
         noise magnitudes [B, F, N] (exp-sigmoid, biased -5: training starts quiet)
      -> harmonic synth + filtered noise -> learned reverb     (:mod:`waveloom.nn.ddsp`)
      -> audio [B, F * hop]
    loss: multi-scale spectral loss against batch['audio'] (L1 on linear and log magnitudes)

Pitch is exact by construction: the oscillators run at the f0 they are given. Batches carry
``f0_hz`` and ``loudness_db`` beside ``audio`` (:mod:`waveloom.data.features` computes them once
per cache; :meth:`DDSP.frame_features` tells the objective's data set which ones).

While training, the model keeps the range of f0 and loudness it has seen on voiced frames
(integer buffers in cents and centi-dB, so weight averaging leaves them alone) and the mean of
z: ``transfer`` clips f0 to that range and ``generate``/``perform`` place velocity 127 at the
loudest level seen.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from waveloom.audio.loudness import FLOOR_DB, a_weighted_loudness
from waveloom.audio.tuning import midi_hz
from waveloom.config import ModelConfig, SamplingOptions
from waveloom.data.features import FeatureSpec
from waveloom.data.midi_controls import VELOCITY_RANGE_DB, line_loudness
from waveloom.errors import ConfigError, DataError
from waveloom.models.base import Batch, Generative, require_default_engine
from waveloom.models.ddsp.config import DDSPConfig
from waveloom.nn.ddsp.reverb import Reverb
from waveloom.nn.ddsp.spectral_loss import multiscale_spectral_loss
from waveloom.nn.ddsp.synth import synthesize
from waveloom.nn.ddsp_net import DDSPDecoder, MFCCEncoder, exp_sigmoid

VOICED_DB = -60.0  # frames louder than this count towards the seen f0 / loudness range
NOISE_BIAS = -5.0
DEFAULT_TOP_DB = -15.0  # loudest level before any training data was seen
_BIG = 1 << 40


def scale_f0(f0_hz: Tensor) -> Tensor:
    """Hz -> MIDI / 127 (0 Hz and below MIDI 0 read as MIDI 0), the decoder's f0 input."""
    midi = 69.0 + 12.0 * torch.log2(f0_hz.clamp_min(8.1758) / 440.0)
    return midi / 127.0


def scale_loudness(loudness_db: Tensor) -> Tensor:
    """dB (floor -100, 0 = mean square 1) -> about [0, 1], the decoder's loudness input."""
    return (loudness_db - FLOOR_DB) / -FLOOR_DB


class DDSP(Generative):
    """See the module docstring."""

    config_class: ClassVar[type[ModelConfig]] = DDSPConfig
    config: DDSPConfig

    def __init__(self, config: DDSPConfig) -> None:
        super().__init__(config)
        c = config
        self.hop = c.hop
        self.decoder = DDSPDecoder(c.hidden, 1 + c.n_harmonics + c.n_noise_bands, c.z_dims,
                                   c.mlp_layers)
        self.encoder = (MFCCEncoder(c.sample_rate, c.hop, c.z_dims, c.encoder_hidden, c.n_mfcc,
                                    c.n_mels, c.encoder_fft) if c.z_dims else None)
        self.reverb = Reverb(c.sample_rate, c.reverb_seconds) if c.reverb_seconds > 0 else None
        # [f0 lo, f0 hi] in cents above MIDI 0, [loudness lo, hi] in centi-dB; lo > hi = unseen.
        self.register_buffer("seen_range", torch.tensor([_BIG, -_BIG, _BIG, -_BIG]))
        self.register_buffer("z_mean", torch.zeros(max(c.z_dims, 1)))
        self.register_buffer("z_count", torch.zeros((), dtype=torch.int64))

    # ------------------------------------------------------------------ contract

    def batch_keys(self) -> tuple[str, ...]:
        return ("f0_hz", "loudness_db")

    def conditioning_keys(self) -> tuple[str, ...]:
        return ("pitch", "velocity")

    def frame_features(self) -> FeatureSpec:
        """The per-frame features a training batch needs, and how to compute them."""
        c = self.config
        return FeatureSpec(frame_rate=c.frame_rate, hop=c.hop, f0_method=c.f0_method)

    def _param_device(self) -> torch.device:
        return self.decoder.out.weight.device

    # ------------------------------------------------------------------ controls and audio

    def controls(self, f0_hz: Tensor, loudness_db: Tensor, z: Tensor | None = None,
                 state: Tensor | None = None) -> tuple[dict[str, Tensor], Tensor]:
        """Frame features -> synth controls ``{'amplitude' [B, F], 'distribution' [B, F, K],
        'magnitudes' [B, F, N]}`` and the decoder's GRU state (carried when streaming)."""
        k = self.config.n_harmonics
        raw, state = self.decoder(scale_f0(f0_hz), scale_loudness(loudness_db), z, state)
        return {"amplitude": exp_sigmoid(raw[..., 0]),
                "distribution": F.softmax(raw[..., 1:1 + k], dim=-1),
                "magnitudes": exp_sigmoid(raw[..., 1 + k:] + NOISE_BIAS)}, state

    def render(self, f0_hz: Tensor, loudness_db: Tensor, z: Tensor | None = None,
               noise: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Frame features ``[B, F]`` (and z ``[B, F, D]``) -> audio ``[B, F * hop]``, unclipped.
        ``noise`` ``[B, F * hop]`` in [-1, 1] or ``generator`` fix the filtered noise."""
        if f0_hz.ndim != 2 or loudness_db.shape != f0_hz.shape:
            raise DataError(f"f0_hz {tuple(f0_hz.shape)} and loudness_db "
                            f"{tuple(loudness_db.shape)} must both be [B, F]")
        ctl, _ = self.controls(f0_hz, loudness_db, self._z_or_mean(z, f0_hz))
        return synthesize(f0_hz, ctl["amplitude"], ctl["distribution"], ctl["magnitudes"],
                          self.config.sample_rate, self.hop, self.reverb, noise, generator)

    def _z_or_mean(self, z: Tensor | None, f0_hz: Tensor) -> Tensor | None:
        """z as given, or (ae models without one) the mean z seen in training per frame."""
        if self.encoder is None or z is not None:
            return z
        b, f = f0_hz.shape
        return self.z_mean.to(f0_hz.dtype).expand(b, f, -1)

    def export_spec(self) -> Any:
        """The streaming block with its state as tensors (:mod:`waveloom.models.ddsp.block`)."""
        from waveloom.models.ddsp.block import export_spec

        return export_spec(self)

    def encode(self, audio: Tensor) -> Tensor:
        """Audio ``[B, T]`` -> z ``[B, T // hop, D]`` (ae models)."""
        if self.encoder is None:
            raise ConfigError("this DDSP model has no encoder (model.z_dims=0); it needs no z")
        return self.encoder(audio)

    # ------------------------------------------------------------------ training

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Multi-scale spectral loss between the resynthesis of ``batch``'s features and its
        audio. FFT sizes at or above the window's length are skipped (a centred STFT needs
        more than half a frame of audio). Eval mode draws the noise from seed 0, so a
        validation loss is a pure function of the weights."""
        audio, f0, loud = batch["audio"], batch["f0_hz"], batch["loudness_db"]
        if audio.ndim != 2 or audio.shape[1] != f0.shape[-1] * self.hop:
            raise DataError(f"batch audio {tuple(audio.shape)} must be [B, F * hop] with F = "
                            f"{f0.shape[-1]} frames of f0_hz and hop {self.hop}")
        z = self.encoder(audio) if self.encoder is not None else None
        if self.training:
            self._track(f0, loud, z)
        generator = (None if self.training else
                     torch.Generator(device=audio.device).manual_seed(0))
        pred = self.render(f0, loud, z, generator=generator)
        sizes = [n for n in self.config.fft_sizes if n // 2 < audio.shape[1]]
        if not sizes:
            raise DataError(f"windows of {audio.shape[1]} samples are too short for "
                            f"model.fft_sizes={list(self.config.fft_sizes)}; raise data.window")
        loss = multiscale_spectral_loss(pred, audio, sizes, log_weight=self.config.log_weight)
        return {"loss": loss}

    @torch.no_grad()
    def _track(self, f0: Tensor, loud: Tensor, z: Tensor | None) -> None:
        """Widen the seen f0 / loudness range with this batch's voiced frames; update mean z."""
        voiced = loud > VOICED_DB
        if voiced.any():
            cents = (scale_f0(f0[voiced]) * 12700.0).round().long()
            centi_db = (loud[voiced] * 100.0).round().long()
            new = torch.stack([cents.min(), cents.max(), centi_db.min(), centi_db.max()])
            r = self.seen_range
            r.copy_(torch.stack([torch.minimum(r[0], new[0]), torch.maximum(r[1], new[1]),
                                 torch.minimum(r[2], new[2]), torch.maximum(r[3], new[3])]))
        if z is not None:
            n = z.shape[0] * z.shape[1]
            total = self.z_count + n
            self.z_mean.mul_(self.z_count / total).add_(z.detach().sum((0, 1)) / total)
            self.z_count.copy_(total)

    def f0_range(self) -> tuple[float, float]:
        """(lowest, highest) f0 in Hz the model accepts: what it saw in training (widened by a
        semitone), else ``model.f0_min_hz .. f0_max_hz``."""
        lo, hi = int(self.seen_range[0]), int(self.seen_range[1])
        if lo > hi:
            return self.config.f0_min_hz, self.config.f0_max_hz
        to_hz = lambda cents: float(midi_hz(cents / 100.0))  # noqa: E731
        return to_hz(lo - 100), min(to_hz(hi + 100), self.config.sample_rate / 2 - 1)

    def top_db(self) -> float:
        """Where velocity 127 plays (dB): through ``model.velocity_db`` when calibrated (the
        training notes' own level at their velocity, 40 dB per 127 velocities), else the
        loudest voiced level seen in training."""
        if self.config.velocity_db:
            velocity, level = self.config.velocity_db
            return float(level) + VELOCITY_RANGE_DB * (1.0 - float(velocity) / 127.0)
        lo, hi = int(self.seen_range[2]), int(self.seen_range[3])
        return DEFAULT_TOP_DB if lo > hi else hi / 100.0

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def generate(self, n: int, length: int, cond: dict[str, Any] | None = None,
                 options: SamplingOptions | None = None) -> Tensor:
        """``n`` waveforms ``[n, length]`` in [-1, 1]: resynthesis of ``cond['f0_hz']`` and
        ``cond['loudness_db']`` ([n, F] frames, cut or the last frame held) or of the audio
        ``cond['audio']`` ([n, T]: its features tracked here), else one note per
        output of ``cond['pitch']`` (MIDI, default 60) at ``cond['velocity']`` (default 100),
        released 0.1 s before the end. ``options.seed`` draws the noise; the temperature has
        no meaning here (the model does not sample)."""
        options = options or SamplingOptions()
        require_default_engine(self, options, "does not sample (it plays a synthesiser)")
        if n <= 0 or length <= 0:
            raise ConfigError(f"n={n} and length={length} must be positive")
        frames = math.ceil(length / self.hop)
        cond = dict(cond or {})
        if cond.get("audio") is not None and cond.get("f0_hz") is None:
            cond.update(self._audio_cond(torch.as_tensor(cond["audio"], dtype=torch.float32)))
        f0, loud = self._cond_controls(n, frames, cond)
        z = None
        if self.encoder is not None and cond.get("z") is not None:
            z = _fit_frames(torch.as_tensor(cond["z"], dtype=torch.float32), n, frames, 2)
        dev = self._param_device()
        generator = torch.Generator(device=dev).manual_seed(int(options.seed))
        audio = self.render(f0.to(dev), loud.to(dev), None if z is None else z.to(dev),
                            generator=generator)
        return audio[:, :length].clamp(-1.0, 1.0)

    def _audio_cond(self, audio: Tensor) -> dict[str, Tensor]:
        """f0, loudness (and z) of ``audio`` ``[n, T]``: the trainer's logged samples are
        resyntheses of a training window."""
        from waveloom.data.features import example_features

        audio = audio.reshape(-1, audio.shape[-1])
        spec, sr = self.frame_features(), self.config.sample_rate
        curves = [example_features(a.cpu().numpy(), sr, spec) for a in audio]
        out = {"f0_hz": torch.from_numpy(np.stack([c[0] for c in curves])),
               "loudness_db": torch.from_numpy(np.stack([c[2] for c in curves]))}
        if self.encoder is not None:
            padded = F.pad(audio, (0, out["f0_hz"].shape[1] * self.hop - audio.shape[-1]))
            out["z"] = self.encoder(padded.to(self._param_device())).cpu()
        return out

    def _cond_controls(self, n: int, frames: int, cond: dict[str, Any]
                       ) -> tuple[Tensor, Tensor]:
        if cond.get("f0_hz") is not None and cond.get("loudness_db") is not None:
            return (_fit_frames(torch.as_tensor(cond["f0_hz"], dtype=torch.float32), n, frames),
                    _fit_frames(torch.as_tensor(cond["loudness_db"], dtype=torch.float32), n,
                                frames))
        pitch = _per_output(cond.get("pitch"), n, 60)
        velocity = _per_output(cond.get("velocity"), n, 100)
        rate = self.config.frame_rate
        end = max(frames / rate - 0.1, 0.5 * frames / rate)
        loud = [line_loudness([(0.0, end, p, v)], frames, rate, self.top_db())
                for p, v in zip(pitch, velocity)]
        f0 = midi_hz(torch.tensor(pitch, dtype=torch.float64).numpy())
        f0_t = torch.as_tensor(f0, dtype=torch.float32)[:, None].expand(n, frames)
        return f0_t.contiguous(), torch.from_numpy(np.stack(loud))

    # ------------------------------------------------------------------ tests

    def example_batch(self, batch_size: int, length: int, seed: int = 0) -> Batch:
        """Sines with noise (the base class's batch) cut to whole frames, their f0 and loudness."""
        frames = max(1, length // self.hop)
        base = super().example_batch(batch_size, frames * self.hop, seed)
        g = torch.Generator().manual_seed(seed)
        f0 = (110.0 + 330.0 * torch.rand(batch_size, 1, generator=g)).expand(-1, frames)
        t = torch.arange(frames * self.hop, dtype=torch.float32) / self.config.sample_rate
        audio = 0.5 * torch.sin(2 * math.pi * f0[:, :1] * t) + 0.05 * base["audio"]
        loud = a_weighted_loudness(audio, self.config.sample_rate, self.hop)
        return {"audio": audio.clamp(-1, 1), "f0_hz": f0.contiguous(), "loudness_db": loud}


def _fit_frames(x: Tensor, n: int, frames: int, dims: int = 1) -> Tensor:
    """``[n, F', ...]`` (or one curve of ``dims`` dims, shared by all) -> ``[n, frames, ...]``:
    cut, or the last frame held."""
    if x.ndim == dims:
        x = x.unsqueeze(0)
    if x.shape[0] == 1:
        x = x.expand(n, *x.shape[1:])
    if x.ndim != dims + 1 or x.shape[0] != n or x.shape[1] == 0:
        raise ConfigError(f"conditioning curve of shape {tuple(x.shape)} does not give {n} "
                          "outputs of one or more frames")
    if x.shape[1] >= frames:
        return x[:, :frames].contiguous()
    pad = x[:, -1:].expand(n, frames - x.shape[1], *x.shape[2:])
    return torch.cat([x, pad], dim=1)


def _per_output(value: Any, n: int, default: int) -> list[int]:
    """A scalar or ``[n]`` label -> ``n`` ints (missing or -1: ``default``)."""
    if value is None:
        return [default] * n
    flat = torch.as_tensor(value).reshape(-1).tolist()
    flat = flat * n if len(flat) == 1 else flat
    if len(flat) != n:
        raise ConfigError(f"{len(flat)} labels given for {n} outputs")
    return [default if int(v) < 0 else int(v) for v in flat]
