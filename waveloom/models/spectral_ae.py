"""Spectral autoencoder: the baseline of the NSynth paper (Engel et al. 2017, sec. 3.2).

A convolutional autoencoder of log-magnitude STFT frames; the phase is not modelled but
recovered by Griffin-Lim when decoding to audio. It has the same code shape as the WaveNet
autoencoder (D channels every ``hop`` samples), so the two compare at equal bottleneck size::

    audio [B, T] -> log |STFT| [B, F, M] (n_fft, stft_hop; M = ceil(T / hop) * hop/stft_hop)
      encoder: conv -> residual blocks (dilations 1, 2, 4, ...) -> stride-2 convs down to one
               frame per hop -> 1x1 to D                      -> z [B, D, ceil(T / hop)]
      decoder: 1x1 (+ optional pitch bias) -> transposed stride-2 convs -> residual blocks
               -> conv to F log magnitudes
    loss: L2 (or L1) between predicted and true log magnitudes (floored at ``log_floor``)
    decode: exp -> fast Griffin-Lim (:func:`waveloom.audio.spectral.griffin_lim`) -> audio

Frequency bins are the channels of 1-D convolutions over time (a spectrogram frame is one
vector), where the paper used 2-D convolutions over the image; with a 16-dim code per hop the
bottleneck, not the encoder's shape, bounds the quality. Layers are shared with the other
families: :class:`~waveloom.nn.encoder.DilatedResidualBlock` and
:class:`~waveloom.nn.conditioning.GlobalConditioning`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from waveloom.audio.spectral import griffin_lim, log_magnitude, stft
from waveloom.config import ModelConfig, SamplingOptions, require_positive
from waveloom.errors import ConfigError, DataError
from waveloom.models.autoencoder import CodeAutoencoder
from waveloom.models.base import Batch, require_default_engine
from waveloom.nn.conditioning import GlobalConditioning
from waveloom.nn.conv import Conv1dSame
from waveloom.nn.encoder import CodeStatistics, DilatedResidualBlock

LOSSES = ("l2", "l1")
# Log magnitudes (raw DFT sums, natural log) of music span about [-11.5, 6]; this affine map
# brings them near [-2, 2] for the network, and back.
LOG_CENTRE, LOG_SCALE = -4.0, 4.0


@dataclass
class SpectralAEConfig(ModelConfig):
    """Hyper-parameters; defaults match the NSynth WaveNet autoencoder's code (16 per 512)."""

    n_fft: int = 1024
    stft_hop: int = 256
    hop: int = 512  # samples per code frame: stft_hop * a power of two
    embedding_dim: int = 16
    channels: int = 256
    layers: int = 3  # residual blocks on each side (dilations 1, 2, 4, ...)
    kernel_size: int = 3
    loss: str = "l2"  # l2 | l1, on log magnitudes
    log_floor: float = 1e-5  # magnitudes below this are silence (log -11.5)
    griffin_lim_iters: int = 100
    pitch_conditioning: bool = False
    cond_dim: int = 64
    cond_dropout: float = 0.0

    def validate(self) -> None:
        require_positive(
            self, "n_fft", "stft_hop", "hop", "embedding_dim", "channels", "layers", "kernel_size",
            "griffin_lim_iters", "cond_dim")
        if self.n_fft % 2:
            raise ConfigError(f"model.n_fft={self.n_fft} must be even")
        ratio = self.hop // self.stft_hop
        if self.hop % self.stft_hop or ratio & (ratio - 1):
            raise ConfigError(
                f"model.hop={self.hop} must be model.stft_hop={self.stft_hop} times a power of "
                "two (the encoder halves the frame rate with stride-2 convolutions)"
            )
        if self.stft_hop > self.n_fft:
            raise ConfigError(f"model.stft_hop={self.stft_hop} must be <= n_fft={self.n_fft}")
        if self.loss not in LOSSES:
            raise ConfigError(f"model.loss={self.loss!r}: use one of {', '.join(LOSSES)}")
        if not self.log_floor > 0:
            raise ConfigError(f"model.log_floor={self.log_floor} must be > 0")
        if not 0.0 <= self.cond_dropout < 1.0:
            raise ConfigError(f"model.cond_dropout={self.cond_dropout} must be in [0, 1)")


class SpectralAE(CodeAutoencoder):
    """Log-magnitude STFT autoencoder with Griffin-Lim phase (see the module docstring)."""

    config_class: ClassVar[type[ModelConfig]] = SpectralAEConfig
    config: SpectralAEConfig

    def __init__(self, config: SpectralAEConfig) -> None:
        super().__init__(config)
        c = config
        bins, ch, k = c.n_fft // 2 + 1, c.channels, c.kernel_size
        halvings = int(math.log2(c.hop // c.stft_hop))
        dilations = [2**i for i in range(c.layers)]
        self.enc_in = Conv1dSame(bins, ch, k)
        self.enc_blocks = nn.ModuleList(DilatedResidualBlock(ch, k, d) for d in dilations)
        self.down = nn.ModuleList(nn.Conv1d(ch, ch, 4, stride=2, padding=1)
                                  for _ in range(halvings))
        self.enc_out = nn.Conv1d(ch, c.embedding_dim, 1)
        self.dec_in = nn.Conv1d(c.embedding_dim, ch, 1)
        self.global_cond = (
            GlobalConditioning(c.cond_dim, 1, pitch=True, instrument=False,
                               dropout=c.cond_dropout)
            if c.pitch_conditioning
            else None
        )
        self.pitch_proj = nn.Linear(c.cond_dim, ch) if c.pitch_conditioning else None
        self.up = nn.ModuleList(nn.ConvTranspose1d(ch, ch, 4, stride=2, padding=1)
                                for _ in range(halvings))
        self.dec_blocks = nn.ModuleList(DilatedResidualBlock(ch, k, d) for d in dilations)
        self.dec_out = Conv1dSame(ch, bins, k)
        self.code_stats = CodeStatistics(c.embedding_dim)

    # ------------------------------------------------------------------ the spectra

    def conditioning_keys(self) -> tuple[str, ...]:
        return ("pitch",) if self.global_cond is not None else ()

    def _param_device(self) -> torch.device:
        return self.enc_out.weight.device

    @property
    def frames_per_code(self) -> int:
        return self.config.hop // self.config.stft_hop

    def log_spectrogram(self, audio: Tensor) -> Tensor:
        """Audio [B, T] -> log magnitudes [B, F, ceil(T / hop) * hop / stft_hop].

        The centred STFT has ``1 + T // stft_hop`` frames; they are cropped (or padded with
        silence) to a whole number of code frames, so frame ``m`` belongs to code frame
        ``m // (hop / stft_hop)``.
        """
        c = self.config
        audio = torch.as_tensor(audio, dtype=torch.float32).to(self._param_device())
        if audio.dim() == 1:
            audio = audio.unsqueeze(0)
        if audio.dim() != 2 or audio.shape[-1] == 0:
            raise DataError(f"audio has shape {tuple(audio.shape)}; expected [B, T] with T > 0")
        logmag = log_magnitude(stft(audio, c.n_fft, c.stft_hop), c.log_floor)
        want = self.frames_for(audio.shape[-1]) * self.frames_per_code
        have = logmag.shape[-1]
        if have >= want:
            return logmag[..., :want]
        return F.pad(logmag, (0, want - have), value=math.log(c.log_floor))

    def _encode_spec(self, logmag: Tensor) -> Tensor:
        x = self.enc_in((logmag - LOG_CENTRE) / LOG_SCALE)
        for block in self.enc_blocks:
            x = block(x)
        for down in self.down:
            x = down(F.relu(x))
        return self.enc_out(F.relu(x))

    def _decode_spec(self, z: Tensor, pitch: Any = None, dropout: bool = False) -> Tensor:
        """Codes [B, D, F] -> log magnitudes [B, bins, F * hop / stft_hop]."""
        x = self.dec_in(z)
        if self.global_cond is not None and self.pitch_proj is not None:
            labels = None if pitch is None else torch.as_tensor(pitch, device=z.device).long()
            if labels is not None:
                problem = self.global_cond.check(labels.reshape(-1), None)
                if problem:
                    raise ConfigError(problem)
            g = self.global_cond(labels, None, batch=z.shape[0], dropout=dropout)
            x = x + self.pitch_proj(g).unsqueeze(-1)
        for up in self.up:
            x = up(F.relu(x))
        for block in self.dec_blocks:
            x = block(x)
        return self.dec_out(F.relu(x)) * LOG_SCALE + LOG_CENTRE

    # ------------------------------------------------------------------ contract

    def encode(self, audio: Tensor) -> Tensor:
        """Audio [B, T] (or [T]) -> codes [B, D, ceil(T / hop)]."""
        return self._encode_spec(self.log_spectrogram(audio))

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Distance between reconstructed and true log magnitudes (``model.loss``), plus both
        the L1 and L2 values and the spectral convergence for logging."""
        audio = batch["audio"]
        if audio.dim() != 2:
            raise DataError(f"batch['audio'] has shape {tuple(audio.shape)}; expected [B, T]")
        target = self.log_spectrogram(audio)
        z = self._encode_spec(target)
        self.track_codes(z)
        pred = self._decode_spec(z, batch.get("pitch"), dropout=self.training)
        diff = pred - target
        l1, l2 = diff.abs().mean(), diff.pow(2).mean()
        with torch.no_grad():
            ref, est = target.exp(), pred.exp()
            convergence = torch.linalg.vector_norm(ref - est) / torch.linalg.vector_norm(ref)
        return {"loss": l2 if self.config.loss == "l2" else l1, "log_mag_l1": l1.detach(),
                "log_mag_l2": l2.detach(), "spectral_convergence": convergence}

    @torch.no_grad()
    def decode(self, z: Any, pitch: Any = None, length: int | None = None,
               options: SamplingOptions | None = None, iterations: int | None = None
               ) -> Tensor:
        """Codes [B, D, F] (or [D, F]) -> audio [B, length] in [-1, 1] (default F * hop).

        The magnitudes come from the decoder, the phase from ``iterations`` (default
        ``model.griffin_lim_iters``) of fast Griffin-Lim started from a phase seeded by
        ``options.seed``. The decoder does not sample: a non-default engine is refused, the
        temperature has no meaning here.
        """
        options = options or SamplingOptions()
        require_default_engine(self, options, "does not sample (its decoder is deterministic)")
        seed, progress = options.seed, options.progress
        c = self.config
        z = self.check_codes(z)
        length = z.shape[-1] * c.hop if length is None else int(length)
        if length <= 0:
            raise ConfigError(f"length={length} must be positive")
        needed = 1 + length // c.stft_hop  # frames of a centred STFT of `length` samples
        logmag = self._decode_spec(z, pitch)
        have = logmag.shape[-1]
        if have >= needed:
            logmag = logmag[..., :needed]
        elif needed - have <= self.frames_per_code:  # the trailing partial frame
            logmag = F.pad(logmag, (0, needed - have), mode="replicate")
        else:
            raise ConfigError(
                f"{z.shape[-1]} code frames cover {z.shape[-1] * c.hop} samples, {length} "
                "were asked for; pass more frames"
            )
        mag = logmag.float().clamp(max=20.0).exp()
        audio = griffin_lim(mag, iterations or c.griffin_lim_iters, hop=c.stft_hop,
                            length=length, seed=seed, progress=progress)
        return audio.clamp(-1.0, 1.0).to(z.device)

    @torch.no_grad()
    def generate(self, n: int, length: int, cond: dict[str, Any] | None = None,
                 options: SamplingOptions | None = None) -> Tensor:
        """``n`` waveforms [n, length]: decodes ``cond['embedding']``, reconstructs
        ``cond['audio']``, or decodes a code drawn from the training codes' statistics.
        The temperature has no effect (the decoder is deterministic; the seed picks the
        initial phase of Griffin-Lim and the drawn code)."""
        options = options or SamplingOptions()
        require_default_engine(self, options)
        if n <= 0 or length <= 0:
            raise ConfigError(f"n={n} and length={length} must be positive")
        cond = cond or {}
        z = self.codes_for(n, length, cond, options.seed)
        return self.decode(z, cond.get("pitch"), length, options)
