"""The Universal Music Translation Network (Mor et al. 2019): one encoder, a WaveNet per domain.

    audio of any domain --(training: local pitch shifts)--> encoder (non-causal dilated
      residual layers, leaky ReLU, 1x1 to ``latent_dim``, average pool by ``hop``, each
      channel standardised) --> latent [B, D, F]
    latent --WaveNet decoder of domain d (local conditioning, upsampled)--> audio in d's timbre
    latent --gradient reversal--> domain classifier (confusion: removes the domain from z)
    optional (model.f0_excitation, not in the paper): the f0 tracked from the audio being
      decoded --harmonic sines (NSF)--> more local channels of every decoder

Loss (one update, as the paper): each example's own decoder's NLL (teacher-forced, the
shared WaveNet) plus ``confusion_weight`` x the classifier's cross-entropy, whose gradient is
*reversed* on the way into the encoder (ramped in over ``confusion_ramp_steps``): the
classifier learns to tell the domains apart, the encoder learns to make that impossible, so
the decoders must take the timbre from their own weights and only the music from z.
Translating is: encode, then sample the target domain's decoder (any of the WaveNet sampling
engines: the fast C one on a CPU, batched across clips). With the f0 source, the input's f0 is
tracked the way the training cache's was (:func:`waveloom.data.features.example_f0`), so
the decoder is handed the melody's periods and z has to carry only the rest.

Domains are the training cache's ``instrument`` labels (``extra.instruments``, e.g. rendered
chorale voices in several GM instruments). The encoder's layers are DiffWave's gated
non-causal layers (:class:`waveloom.nn.diffwave.DiffWaveLayer`, without a step input); the
decoders are :class:`waveloom.models.wavenet.WaveNet` with ``local = "latent"``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from waveloom.audio.f0 import METHODS as F0_METHODS
from waveloom.config import ModelConfig, require_positive
from waveloom.data.features import FeatureSpec, example_f0
from waveloom.errors import ConfigError, DataError
from waveloom.models.base import Batch, Generative
from waveloom.models.stack_config import HeadedStackConfig
from waveloom.models.wavenet import F0_PHASES, WaveNet, WaveNetConfig
from waveloom.nn.diffwave import DiffWaveLayer


@dataclass
class TranslatorConfig(HeadedStackConfig):
    """Hyper-parameters: the stack and head fields size every decoder; the rest the encoder.

    ``head`` is every decoder's output distribution (HeadedStackConfig): the paper's mu-law
    softmax, or a ``gaussian`` whose sampling temperature scales the predicted spread
    directly, the knob for the broadband floor free sampling makes of wide predictions.
    """

    domains: int = 4  # decoders (the cache's instrument ids 0..domains-1)
    encoder_channels: int = 64
    encoder_layers: int = 10  # dilations 1..2^(cycle-1), repeated
    encoder_cycle: int = 10
    latent_dim: int = 64
    hop: int = 320  # samples per latent frame: 50 Hz at 16 kHz
    upsample_factors: tuple[int, ...] = field(default_factory=lambda: (16, 20))
    confusion_weight: float = 0.01
    # Steps over which the reversed gradient reaching the encoder ramps from 0 to full (Ganin
    # & Lempitsky 2015's schedule, 2 / (1 + exp(-10 p)) - 1): the decoders learn to read z
    # before the encoder is asked to hide the domain in it. 0: full from the start.
    confusion_ramp_steps: int = 0
    pitch_shift_semitones: float = 0.5  # training augmentation (0: off)
    shift_seconds: tuple[float, float] = (0.25, 0.5)
    sample_rate: int = 16000
    # Noise on every decoder's teacher-forced history (WaveNetConfig.input_noise): without it a
    # decoder can predict from its perfect past and ignore z, which is all a translation has.
    input_noise: float = 0.0
    # An NSF-style source in every decoder (WaveNetConfig.f0_excitation): this many harmonics
    # of the f0 tracked (f0_method, at the latent's frame rate) from the audio being decoded:
    # the training window itself, and at translation the input. The paper's decoders must
    # find the melody's periods in z alone; two CPU cores' worth of training did not get
    # there (session 26: 3-26 of 172 held-out notes on pitch). 0: off, the paper's model.
    f0_excitation: int = 0
    f0_method: str = "yin"
    f0_phase: str = "random"  # WaveNetConfig.f0_phase: 'fit' locks it to the training target

    def validate(self) -> None:
        super().validate()
        require_positive(self, "domains", "encoder_channels", "encoder_layers",
                         "encoder_cycle", "latent_dim", "hop", "sample_rate")
        if math.prod(self.upsample_factors) != self.hop:
            raise ConfigError(f"model.upsample_factors={list(self.upsample_factors)} multiply "
                              f"to {math.prod(self.upsample_factors)}, not model.hop={self.hop}")
        if self.confusion_weight < 0 or self.pitch_shift_semitones < 0 \
                or self.confusion_ramp_steps < 0:
            raise ConfigError("model.confusion_weight, model.confusion_ramp_steps and "
                              "model.pitch_shift_semitones must be >= 0")
        if self.f0_excitation < 0 or self.f0_method not in F0_METHODS \
                or self.f0_phase not in F0_PHASES:
            raise ConfigError(f"model.f0_excitation={self.f0_excitation} (harmonics, >= 0), "
                              f"model.f0_method={self.f0_method!r} (one of "
                              f"{', '.join(F0_METHODS)}), model.f0_phase={self.f0_phase!r} "
                              f"(one of {', '.join(F0_PHASES)})")
        if self.f0_excitation and self.sample_rate % self.hop:
            raise ConfigError(f"model.hop={self.hop} must divide model.sample_rate="
                              f"{self.sample_rate} (the latent's frame rate is their ratio)")

    def decoder_config(self) -> WaveNetConfig:
        """The WaveNet config of every decoder: this stack, conditioned on the latent only."""
        stack = {f.name: getattr(self, f.name) for f in dataclasses.fields(HeadedStackConfig)}
        return WaveNetConfig(**stack, pitch_conditioning=False, instrument_conditioning=False,
                             local="latent", local_channels=self.latent_dim,
                             local_hop=self.hop, upsample_factors=tuple(self.upsample_factors),
                             sample_rate=self.sample_rate, input_noise=self.input_noise,
                             f0_excitation=self.f0_excitation, f0_phase=self.f0_phase)


#: Batch keys of the decoders' source: the tracked f0 and its voicing confidence.
F0_KEYS = ("f0_hz", "f0_confidence")
#: Confidence at which a frame counts as voiced (YIN's is a 0/1 level gate; CREPE's a
#: probability): below it the source is silent.
VOICED = 0.5


def voiced_f0(f0_hz: Any, confidence: Any) -> Tensor:
    """f0 ``[B, F]`` (Hz) where ``confidence >= VOICED``, else 0 (the source's "unvoiced")."""
    f0, conf = torch.as_tensor(f0_hz).float(), torch.as_tensor(confidence).float()
    return torch.where(conf.to(f0.device) >= VOICED, f0, torch.zeros_like(f0))


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient times ``-scale`` backward (Ganin & Lempitsky 2015)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.scale * grad, None


def reverse_gradient(x: Tensor, scale: float = 1.0) -> Tensor:
    return _ReverseGradient.apply(x, scale)


def local_pitch_shift(audio: Tensor, sample_rate: int, semitones: float,
                      seconds: tuple[float, float], generator: torch.Generator) -> Tensor:
    """Audio ``[B, T]`` with consecutive segments of ``seconds`` (drawn in the range) each
    resampled by a random factor within +-``semitones`` (kept to its length): the paper's
    augmentation, so the encoder cannot key on exact pitch-timbre pairs."""
    out = audio.clone()
    b, total = audio.shape
    for i in range(b):
        pos = 0
        while pos < total:
            lo, hi = seconds
            span = int(sample_rate * (lo + (hi - lo) * float(torch.rand((), generator=generator))))
            seg = audio[i, pos:pos + max(span, 2)]
            shift = (2 * float(torch.rand((), generator=generator)) - 1) * semitones
            stretched = max(2, round(seg.shape[0] / 2 ** (shift / 12)))
            moved = F.interpolate(seg[None, None], size=stretched, mode="linear",
                                  align_corners=False)[0, 0]
            n = min(seg.shape[0], moved.shape[0])
            out[i, pos:pos + n] = moved[:n]
            pos += seg.shape[0]
    return out


def latent_spread(z: Tensor) -> Tensor:
    """Mean over channels of the std of latents ``[B, D, F]`` over clips and frames: 0 when
    the encoder has collapsed to one vector (the decoders then ignore the input; logged so a
    run shows it long before its samples do)."""
    return z.transpose(0, 1).reshape(z.shape[1], -1).std(-1).mean()


class Encoder(nn.Module):
    """Audio ``[B, T]`` -> latent ``[B, D, ceil(T / hop)]`` (see the module docstring)."""

    def __init__(self, c: TranslatorConfig) -> None:
        super().__init__()
        self.hop = c.hop
        self.start = nn.Conv1d(1, c.encoder_channels, 1)
        self.layers = nn.ModuleList(
            DiffWaveLayer(c.encoder_channels, 2 ** (i % c.encoder_cycle), 0, with_step=False)
            for i in range(c.encoder_layers))
        self.end = nn.Conv1d(c.encoder_channels, c.latent_dim, 1)
        # eps far below the default 1e-5: a pooled channel's raw variance is ~1e-7..1e-5 (a
        # CPU run's at step 500), which the default eps would leave unnormalised and tiny
        self.norm = nn.BatchNorm1d(c.latent_dim, eps=1e-10, affine=False)

    def forward(self, audio: Tensor) -> Tensor:
        x = F.pad(audio, (0, (-audio.shape[-1]) % self.hop))
        h = self.start(x[:, None])
        total = torch.zeros_like(h)
        for layer in self.layers:
            h, skip = layer(h, None, None)
            total = total + skip
        # A leaky rectifier, then a 1x1 and the pool: rectified features survive the average
        # over a hop (envelopes, band energies) where zero-mean ones cancel, and no unit can
        # die. Then every channel is standardised over the batch and frames, so the reversed
        # domain gradient cannot win by shrinking z to one vector: with a plain ReLU, a CPU
        # run's z was one constant by step 2,000, and every decoder an unconditional WaveNet
        # (session 26, docs/translator.md).
        z = self.end(F.leaky_relu(total / math.sqrt(len(self.layers)), 0.2))
        return self.norm(F.avg_pool1d(z, self.hop))


class Translator(Generative):
    """Encoder, domain classifier and one WaveNet decoder per domain."""

    config_class: ClassVar[type[ModelConfig]] = TranslatorConfig
    config: TranslatorConfig
    #: It makes audio from audio, not from labels: ``waveloom translate`` draws it
    #: (:mod:`waveloom.sampling.translate`), its own tests cover it.
    generates_audio: ClassVar[bool] = False

    def __init__(self, config: TranslatorConfig) -> None:
        super().__init__(config)
        c = config
        self.encoder = Encoder(c)
        self.classifier = nn.Sequential(
            nn.Conv1d(c.latent_dim, c.encoder_channels, 3, padding=1), nn.ELU(),
            nn.Conv1d(c.encoder_channels, c.encoder_channels, 3, padding=1), nn.ELU(),
            nn.Conv1d(c.encoder_channels, c.domains, 1))
        self.decoders = nn.ModuleList(WaveNet(c.decoder_config()) for _ in range(c.domains))
        # training loss calls seen (optimizer updates x accumulation), for the confusion ramp;
        # a buffer, so a resumed run continues the ramp where it stopped
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @property
    def context(self) -> int:
        return self.decoders[0].context

    def batch_keys(self) -> tuple[str, ...]:
        """The domain of each training example, and the f0 curves the source reads."""
        return ("instrument",) + (F0_KEYS if self.config.f0_excitation else ())

    def frame_features(self) -> FeatureSpec | None:
        """f0 at the latent's frame rate, tracked once per cache, when the decoders have a
        source (``model.f0_excitation``)."""
        c = self.config
        if not c.f0_excitation:
            return None
        return FeatureSpec(frame_rate=c.sample_rate // c.hop, hop=c.hop, f0_method=c.f0_method)

    def source_f0(self, audio: Tensor) -> Tensor | None:
        """Audio ``[n, T]`` -> the decoders' voiced f0 ``[n, ceil(T / hop)]`` (Hz, 0 where
        unvoiced), tracked as the training cache's was; None without a source."""
        spec = self.frame_features()
        if spec is None:
            return None
        curves = [example_f0(clip, self.config.sample_rate, spec)
                  for clip in audio.detach().float().cpu().numpy()]
        f0 = torch.from_numpy(np.stack([c[0] for c in curves]))
        confidence = torch.from_numpy(np.stack([c[1] for c in curves]))
        return voiced_f0(f0, confidence).to(audio.device)

    def encode(self, audio: Tensor) -> Tensor:
        return self.encoder(audio.float())

    def decoder(self, domain: int) -> WaveNet:
        if not 0 <= domain < self.config.domains:
            raise ConfigError(f"domain {domain}: this translator has domains "
                              f"0..{self.config.domains - 1}")
        return self.decoders[domain]

    def reversal_scale(self) -> float:
        """How much of the reversed domain gradient reaches the encoder now (0..1)."""
        ramp = self.config.confusion_ramp_steps
        if ramp <= 0:
            return 1.0
        p = min(1.0, float(self.updates) / ramp)
        return 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Mean decoder NLL (nats per sample, each example through its domain's decoder) +
        confusion_weight x the domain classifier's cross-entropy through gradient reversal."""
        audio, domains = batch["audio"].float(), batch.get("instrument")
        if domains is None:
            raise DataError("the translator trains on a cache whose 'instrument' labels are "
                            "its domains; this batch has none")
        domains = torch.as_tensor(domains, device=audio.device).long()
        if int(domains.min()) < 0 or int(domains.max()) >= self.config.domains:
            raise DataError(f"domain labels {domains.tolist()} outside 0.."
                            f"{self.config.domains - 1}; set model.domains to the cache's "
                            "instrument count")
        source = audio
        if self.training and self.config.pitch_shift_semitones > 0:
            g = torch.Generator().manual_seed(int(torch.randint(0, 2**31, ())))
            source = local_pitch_shift(audio.cpu(), self.config.sample_rate,
                                       self.config.pitch_shift_semitones,
                                       tuple(self.config.shift_seconds), g).to(audio.device)
        z = self.encode(source)
        f0 = None
        if self.config.f0_excitation:
            if "f0_hz" not in batch or "f0_confidence" not in batch:
                raise DataError("model.f0_excitation: the batch needs 'f0_hz' and "
                                "'f0_confidence' (the objective's frame-feature data set)")
            f0 = voiced_f0(batch["f0_hz"], batch["f0_confidence"]).to(audio.device)
        nll, count = audio.new_zeros(()), 0
        for d in domains.unique().tolist():
            rows = domains == d
            out = self.decoders[d].loss({"audio": audio[rows], "latent": z[rows],
                                         **({} if f0 is None else {"f0_hz": f0[rows]})})
            nll = nll + out["loss"] * int(rows.sum())
            count += int(rows.sum())
        nll = nll / count
        logits = self.classifier(reverse_gradient(z, self.reversal_scale())).mean(-1)
        if self.training:
            self.updates += 1
        confusion = F.cross_entropy(logits, domains)
        accuracy = (logits.argmax(-1) == domains).float().mean()
        return {"loss": nll + self.config.confusion_weight * confusion,
                "nll_bits": nll.detach() / math.log(2.0), "domain_ce": confusion.detach(),
                "domain_accuracy": accuracy, "latent_std": latent_spread(z.detach())}

    def example_batch(self, batch_size: int, length: int, seed: int = 0) -> Batch:
        batch = super().example_batch(batch_size, length, seed)
        batch["instrument"] = batch["instrument"] % self.config.domains
        if self.config.f0_excitation:  # a random melody: 100-800 Hz, a frame in 8 unvoiced
            g = torch.Generator().manual_seed(seed + 1)
            frames = -(-length // self.config.hop)
            batch["f0_hz"] = 100 * 8 ** torch.rand(batch_size, frames, generator=g)
            batch["f0_confidence"] = (torch.rand(batch_size, frames, generator=g) > 0.125).float()
        return batch
