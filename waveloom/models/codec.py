"""A neural audio codec (SoundStream, Zeghidour et al. 2021; EnCodec, Défossez et al. 2022).

::

    audio [B, T] --SEANet encoder--> latents [B, dim, F]   (F = T / hop; strides 2,4,5,8: 50 Hz)
      --residual VQ: n_q codebooks of codebook_size, each quantizing what the ones before left
      --> codes [B, n_q, F] (int)  --sum of the chosen entries--> [B, dim, F]
      --SEANet decoder--> audio [B, T]

Bitrate = frame rate x bits per code x codebooks used: 50 Hz x 10 bits = 0.5 kbps a codebook.
Quantizer dropout (training draws how many codebooks to use, per batch, as SoundStream does)
makes one model serve every bitrate up to ``n_q``: ``encode(audio, bandwidth=KBPS)`` keeps
the first ``KBPS / 0.5`` codebooks.

Training is adversarial with a reconstruction core (the ``adversarial`` objective; generator
= encoder + quantizer + decoder): a multi-scale complex-STFT discriminator (hinge loss, feature
matching), a time-domain L1 and a multi-scale mel loss, combined by EnCodec's loss balancer
(:mod:`waveloom.nn.codec_losses`), plus the quantizer's commitment loss. The residual VQ is
vector-quantize-pytorch's ``ResidualVQ``: k-means initialisation on the first batch, EMA
codebook updates and dead-code replacement, which is why it is used and not rewritten
(docs/codec.md).

``generate`` resynthesises ``cond['audio']`` (or ``cond['prime']``) at ``cond['bandwidth']``
kbps, or decodes ``cond['codes']`` ([n, k, F] ints, k <= n_q).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from waveloom.config import ModelConfig, SamplingOptions, require_positive
from waveloom.errors import ConfigError, DataError
from waveloom.models.adversarial import Adversarial, AdversarialConfig, CriticOutput, fit_length
from waveloom.models.base import Batch, require_default_engine
from waveloom.nn.codec_losses import LossBalancer, multiscale_mel_loss
from waveloom.nn.gan import feature_matching, hinge_g
from waveloom.nn.seanet import SEANetDecoder, SEANetEncoder
from waveloom.nn.stft_disc import MultiScaleSTFTDiscriminator


@dataclass
class CodecConfig(AdversarialConfig):
    channels: int = 32  # first encoder conv; doubled at each stride
    dim: int = 128  # latent size per frame
    strides: tuple[int, ...] = (2, 4, 5, 8)  # hop = their product
    n_q: int = 12  # codebooks (0.5 kbps each at 50 Hz x 1024 entries): up to 6 kbps
    codebook_size: int = 1024
    ema_decay: float = 0.99  # codebook EMA
    dead_code_threshold: float = 2.0  # EMA usage under which an entry is replaced
    quantizer_dropout: bool = True
    commitment_weight: float = 1.0
    # > 0: latents = bound x tanh(latents / bound). The first CPU run's latents grew without
    # limit (commitment loss 2e17 by step 1500, docs/codec.md); 0 keeps EnCodec's unbounded.
    latent_bound: float = 0.0
    # DAC's codebook (Kumar et al. 2023, sec. 3.2): look codes up in a low-dimensional projection
    # (``codebook_dim``, 0 = ``dim``; DAC: 8) and by cosine similarity of L2-normalised vectors
    # (``cosine_codes``), which DAC found to use far more of each codebook and which cannot be
    # saturated by the latents' scale (the third CPU run's failure, docs/codec.md).
    codebook_dim: int = 0
    cosine_codes: bool = False
    # With ``codebook_dim``: a projection per codebook (DAC's layout, waveloom.nn.factorized_rvq)
    # instead of ResidualVQ's one shared projection, which caps the decoder's input at a rank-
    # ``codebook_dim`` image however many codebooks are kept (the shipped codec is bitrate-blind).
    per_codebook_projection: bool = False
    disc_fft_sizes: tuple[int, ...] = (1024, 512, 256)
    disc_channels: int = 32
    # Shares of the balanced update (EnCodec: time 0.1, frequency 1, adversarial 3, features 3).
    weight_time: float = 0.1
    weight_mel: float = 1.0
    weight_adv: float = 3.0
    weight_feat: float = 3.0
    balancer_decay: float = 0.999
    gan_loss: str = "hinge"
    latent_dim: int = 1  # unused (no latent to draw); kept for the shared config

    @property
    def hop(self) -> int:
        return math.prod(self.strides)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    def bandwidths(self) -> list[float]:
        """Every bitrate (kbps) the model serves: 1 .. n_q codebooks."""
        per = self.frame_rate * math.log2(self.codebook_size) / 1000.0
        return [round(k * per, 3) for k in range(1, self.n_q + 1)]

    def validate(self) -> None:
        super().validate()
        require_positive(self, "channels", "dim", "n_q", "codebook_size", "disc_channels")
        if not 0 <= self.codebook_dim <= self.dim:
            raise ConfigError(f"model.codebook_dim={self.codebook_dim} must be in 0..model.dim="
                              f"{self.dim} (0: no projection)")
        if self.per_codebook_projection and not 0 < self.codebook_dim < self.dim:
            raise ConfigError("model.per_codebook_projection needs 0 < model.codebook_dim < "
                              f"model.dim={self.dim} (got {self.codebook_dim}): set both")
        if not self.strides or any(s < 1 for s in self.strides):
            raise ConfigError(f"model.strides={list(self.strides)}: give positive strides")
        if self.sample_rate % self.hop:
            raise ConfigError(f"model.strides={list(self.strides)} multiply to {self.hop}, "
                              f"which does not divide model.sample_rate={self.sample_rate}")
        if self.codebook_size & (self.codebook_size - 1):
            raise ConfigError(f"model.codebook_size={self.codebook_size}: use a power of two "
                              "(whole bits per code)")
        for name in ("weight_time", "weight_mel", "weight_adv", "weight_feat"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model.{name}={getattr(self, name)} must be >= 0")


_DECODE_ONLY = contextvars.ContextVar("codec_decode_only", default=False)


@contextlib.contextmanager
def decode_only() -> Iterator[None]:
    """Codecs built inside this block (e.g. by ``load_checkpoint``) decode codes through
    :class:`~waveloom.nn.rvq_lookup.RVQLookup` and never import vector-quantize-pytorch (1.4 s
    of start-up); they cannot encode. What ``generate`` uses for a codec LM without a prime."""
    token = _DECODE_ONLY.set(True)
    try:
        yield
    finally:
        _DECODE_ONLY.reset(token)


class CodecAutoencoder(nn.Module):
    """The generator: encoder, residual VQ and decoder."""

    def __init__(self, c: CodecConfig) -> None:
        super().__init__()
        self.encoder = SEANetEncoder(c.channels, c.dim, c.strides, bound=c.latent_bound)
        self.decoder = SEANetDecoder(c.channels, c.dim, c.strides)
        if _DECODE_ONLY.get():
            from waveloom.nn.rvq_lookup import RVQLookup

            self.quantizer = RVQLookup(c.dim, c.n_q, c.codebook_size, c.codebook_dim,
                                       per_codebook=c.per_codebook_projection)
            return
        vq = dict(kmeans_init=True, kmeans_iters=10, decay=c.ema_decay,
                  threshold_ema_dead_code=c.dead_code_threshold,
                  commitment_weight=c.commitment_weight, use_cosine_sim=c.cosine_codes)
        if c.per_codebook_projection:
            from waveloom.nn.factorized_rvq import FactorizedRVQ

            self.quantizer = FactorizedRVQ(c.dim, c.n_q, c.codebook_size, c.codebook_dim,
                                           quantize_dropout=c.quantizer_dropout, **vq)
            return
        from vector_quantize_pytorch import ResidualVQ

        self.quantizer = ResidualVQ(
            dim=c.dim, num_quantizers=c.n_q, codebook_size=c.codebook_size,
            quantize_dropout=c.quantizer_dropout and c.n_q > 1, **vq,
            **({"codebook_dim": c.codebook_dim} if c.codebook_dim else {}))

    @contextlib.contextmanager
    def _no_init_outside_training(self):
        """In eval, an uninitialised codebook must not run its k-means (it would change the
        model from a forward pass): treat it as initialised for the call, then restore."""
        flags = [m for m in self.quantizer.modules() if hasattr(m, "initted")]
        saved = [m.initted.clone() for m in flags]
        if not self.training:
            for m in flags:
                m.initted.fill_(True)
        try:
            yield
        finally:
            if not self.training:
                for m, s in zip(flags, saved):
                    m.initted.copy_(s)

    def quantize(self, latents: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Latents [B, dim, F] -> (quantized [B, dim, F], codes [B, n_q, F], commit loss)."""
        with self._no_init_outside_training():
            q, codes, commit = self.quantizer(latents.transpose(1, 2))
        return q.transpose(1, 2), codes.transpose(1, 2), commit.sum()

    def decode_codes(self, codes: Tensor) -> Tensor:
        """Codes [B, k, F] (the first k <= n_q codebooks) -> audio [B, F * hop]."""
        latents = self.quantizer.get_output_from_indices(codes.transpose(1, 2).long())
        return self.decoder(latents.transpose(1, 2))[:, 0]


class CodecStream:
    """Chunked encoding and decoding, equal to offline (tested): each chunk is run with the
    samples (or frames) before it that its outputs can still see, from the encoder's and the
    decoder's receptive fields, and only the chunk's own outputs are kept. Chunks must be whole
    frames (a multiple of ``hop`` samples); pad the last one."""

    def __init__(self, model: Codec, bandwidth: float | None = None) -> None:
        self.model, self.k = model, model.codebooks_for(bandwidth)
        hop = model.hop
        rf = model.generator.encoder.receptive_field()
        self.audio_context = -(-(rf - 1) // hop) * hop
        self.frame_context = model.generator.decoder.receptive_field() - 1
        self._audio: Tensor | None = None
        self._codes: Tensor | None = None

    @torch.no_grad()
    def encode(self, chunk: Tensor) -> Tensor:
        """Audio [n, L] (L a multiple of hop) -> codes [n, k, L / hop]."""
        m = self.model
        chunk = torch.as_tensor(chunk, dtype=torch.float32, device=m._param_device())
        if chunk.dim() != 2 or chunk.shape[-1] % m.hop:
            raise ConfigError(f"stream chunk of shape {tuple(chunk.shape)}: give [n, L] with "
                              f"L a multiple of {m.hop} samples (pad the last chunk)")
        past = self._audio if self._audio is not None else chunk[:, :0]
        buffer = torch.cat([past, chunk], -1)
        latents = m.generator.encoder(buffer[:, None])[..., past.shape[-1] // m.hop:]
        self._audio = buffer[:, -self.audio_context:] if self.audio_context else chunk[:, :0]
        return m.generator.quantize(latents)[1][:, : self.k]

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        """Codes [n, k, f] -> audio [n, f * hop], continuing the chunks decoded before."""
        codes = torch.as_tensor(codes, device=self.model._param_device())
        past = self._codes if self._codes is not None else codes[..., :0]
        buffer = torch.cat([past, codes], -1)
        audio = self.model.decode(buffer)[:, past.shape[-1] * self.model.hop:]
        self._codes = buffer[..., -self.frame_context:] if self.frame_context else codes[..., :0]
        return audio


class Codec(Adversarial):
    """Residual-VQ neural codec (see the module docstring)."""

    config_class: ClassVar[type[ModelConfig]] = CodecConfig
    config: CodecConfig

    def __init__(self, config: CodecConfig) -> None:
        super().__init__(config)
        c = config
        self.generator = CodecAutoencoder(c)
        self.discriminator = MultiScaleSTFTDiscriminator(c.disc_fft_sizes, c.disc_channels)
        self.balancer = LossBalancer({"time": c.weight_time, "mel": c.weight_mel,
                                      "adv": c.weight_adv, "feat": c.weight_feat},
                                     c.balancer_decay)

    def conditioning_keys(self) -> tuple[str, ...]:
        return ("codes", "bandwidth")

    def batch_keys(self) -> tuple[str, ...]:
        return ()

    @property
    def hop(self) -> int:
        return self.config.hop

    # ------------------------------------------------------------------ coding

    def codebooks_for(self, bandwidth: float | None) -> int:
        """Codebooks that ``bandwidth`` kbps buys (None: all); a one-line error listing the
        valid bandwidths for any other value."""
        valid = self.config.bandwidths()
        if bandwidth is None:
            return self.config.n_q
        for k, bw in enumerate(valid, 1):
            if abs(bw - float(bandwidth)) < 1e-6:
                return k
        raise ConfigError(f"--bandwidth {bandwidth:g}: this codec serves "
                          f"{', '.join(f'{b:g}' for b in valid)} kbps")

    def _pad(self, audio: Tensor) -> Tensor:
        audio = torch.as_tensor(audio, dtype=torch.float32, device=self._param_device())
        if audio.dim() == 1:
            audio = audio[None]
        if audio.dim() != 2 or audio.shape[-1] < 1:
            raise DataError(f"audio of shape {tuple(audio.shape)}: expected [n, samples]")
        return F.pad(audio, (0, (-audio.shape[-1]) % self.hop))

    @torch.no_grad()
    def encode(self, audio: Tensor, bandwidth: float | None = None) -> Tensor:
        """Audio [n, T] (or [T]) -> int64 codes [n, k, ceil(T / hop)], k for ``bandwidth``."""
        k = self.codebooks_for(bandwidth)
        latents = self.generator.encoder(self._pad(audio)[:, None])
        return self.generator.quantize(latents)[1][:, :k]

    @torch.no_grad()
    def decode(self, codes: Tensor, pitch: Any = None, length: int | None = None,
               options: SamplingOptions | None = None) -> Tensor:
        """Codes [n, k, F] -> audio [n, length or F * hop] in [-1, 1] (the autoencoders'
        signature, for :func:`waveloom.sampling.sample.decode`; deterministic, no pitch); k
        above n_q or codes outside the codebook are refused in one line."""
        require_default_engine(self, options or SamplingOptions())
        if pitch is not None:
            raise ConfigError("a codec decodes codes alone; drop --pitch")
        codes = torch.as_tensor(codes, device=self._param_device())
        if codes.dim() == 2:
            codes = codes[None]
        c = self.config
        if codes.dim() != 3 or not 1 <= codes.shape[1] <= c.n_q or codes.shape[2] < 1:
            raise ConfigError(f"codes of shape {tuple(codes.shape)}: this codec reads "
                              f"[n, k <= {c.n_q}, frames]")
        if codes.min() < 0 or codes.max() >= c.codebook_size:
            raise ConfigError(f"codes outside 0..{c.codebook_size - 1}: from another codec?")
        audio = self.generator.decode_codes(codes).clamp(-1.0, 1.0)
        return audio if length is None else fit_length(audio, length)

    # ------------------------------------------------------------------ adversarial pieces

    def real_sample(self, batch: Batch, gen: torch.Generator | None) -> tuple[Tensor, dict]:
        audio = batch["audio"].to(self._param_device())
        if audio.dim() != 2:
            raise DataError(f"batch['audio'] has shape {tuple(audio.shape)}; expected [B, T]")
        audio = audio[:, : audio.shape[-1] - audio.shape[-1] % self.hop]
        if audio.shape[-1] == 0:
            raise DataError(f"training windows shorter than one codec frame ({self.hop} "
                            "samples); raise data.window")
        return audio[:, None], {"audio": audio}

    def fake_sample(self, cond: dict[str, Any], gen: torch.Generator | None) -> Tensor:
        latents = self.generator.encoder(cond["audio"][:, None])
        if self.training:
            self._check_dead_code_threshold(latents.shape[0] * latents.shape[-1])
        quantized, _, commit = self.generator.quantize(latents)
        cond["commit"] = commit
        return self.generator.decoder(quantized)

    def _check_dead_code_threshold(self, frames: int) -> None:
        """Warn once when a batch's frames cannot keep the codebooks alive: below the
        threshold's mean use every entry is replaced by that batch's latents at every step
        (the commitment loss then reads 0 and the deeper codebooks collapse; measured)."""
        c = self.config
        mean_use = frames / c.codebook_size
        if getattr(self, "_warned_dead_codes", False) or mean_use > c.dead_code_threshold:
            return
        self._warned_dead_codes = True
        import warnings

        warnings.warn(f"codec: {frames} latent frames a batch for {c.codebook_size} entries is "
                      f"{mean_use:.3g} uses per entry, not above model.dead_code_threshold="
                      f"{c.dead_code_threshold:g}: every entry would be replaced at every step; "
                      f"set it to about {mean_use / 5:.2g} or raise the batch", stacklevel=2)

    def critic(self, x: Tensor, cond: dict[str, Any], gen: torch.Generator | None
               ) -> list[CriticOutput]:
        return self.discriminator(x)

    def generator_loss(self, batch: Batch, gen: torch.Generator | None = None,
                       adversarial: bool = True) -> dict[str, Tensor]:
        """Balanced time + mel + adversarial + feature-matching losses, plus commitment; with
        ``adversarial`` False (the warm-up before ``model.adversarial_start``) time + mel
        alone, balanced among themselves, and ``'reconstruction'`` their weighted sum."""
        gen = self._eval_gen(gen)
        real, cond = self.real_sample(batch, gen)
        fake = self.fake_sample(cond, gen)
        losses = {
            "time": F.l1_loss(fake, real),
            "mel": multiscale_mel_loss(fake[:, 0], real[:, 0], self.config.sample_rate),
        }
        if adversarial:
            outs_f = self.critic(fake, cond, gen)
            with torch.no_grad():
                outs_r = self.critic(real, cond, gen)
            scales = len(outs_f)
            losses["adv"] = sum(hinge_g(f[0]) for f in outs_f) / scales
            losses["feat"] = sum(feature_matching(r[1], f[1])
                                 for r, f in zip(outs_r, outs_f)) / scales
        total = self.balancer.surrogate(losses, fake) + cond["commit"]
        out = {"loss": total, "commit": cond["commit"].detach(),
               **{k: v.detach() for k, v in losses.items()}}
        if not adversarial:
            out["loss"] = total + self._touch_discriminator()
            out["reconstruction"] = (total - cond["commit"]).detach()
        return out

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def generate(self, n: int, length: int, cond: dict[str, Any] | None = None,
                 options: SamplingOptions | None = None) -> Tensor:
        """Decode ``cond['codes']`` or resynthesise ``cond['audio']`` / ``cond['prime']`` at
        ``cond['bandwidth']`` kbps (default: every codebook); deterministic."""
        require_default_engine(self, options or SamplingOptions())
        if n <= 0 or length <= 0:
            raise ConfigError(f"n={n} and length={length} must be positive")
        cond = cond or {}
        if cond.get("codes") is not None:
            codes = torch.as_tensor(cond["codes"])
        elif cond.get("audio") is not None or cond.get("prime") is not None:
            audio = cond["audio"] if cond.get("audio") is not None else cond["prime"]
            codes = self.encode(audio, cond.get("bandwidth"))
        else:
            raise ConfigError("a codec resynthesises audio (waveloom generate CKPT --prime FILE)"
                              " or decodes codes; it draws nothing new by itself")
        if codes.dim() == 2:
            codes = codes[None]
        if codes.shape[0] == 1 and n > 1:
            codes = codes.expand(n, -1, -1)
        if codes.shape[0] != n:
            raise ConfigError(f"{codes.shape[0]} code sequences for {n} samples")
        return fit_length(self.decode(codes), length)

    def interpolate(self, *args: Any, **kwargs: Any) -> Tensor:
        raise ConfigError("a codec has no latent to interpolate; --interpolate is for "
                          "wavegan, specgan and gansynth")

    def example_batch(self, batch_size: int, length: int, seed: int = 0) -> Batch:
        batch = super().example_batch(batch_size, length, seed)
        was = self.training
        self.eval()
        batch["codes"] = self.encode(batch["audio"])
        self.train(was)
        return batch
