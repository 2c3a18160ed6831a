"""Autoregressive discrete autoencoder (ADA; Dieleman, van den Oord, Simonyan 2018, "The
challenge of realistic music generation: modelling raw audio at scale", arXiv:1806.10474).

One level of a hierarchy of learnt discrete codes::

    input  x [B, T]: audio (mu-law in the encoder, 256-way softmax out) or the codes of the
           level below (embedded tokens in, K_in-way softmax out; see waveloom.models.codes)
    encoder: non-causal dilated residual stack (waveloom.nn.encoder) -> mean over each hop
             -> frames [B, C, T / hop]
    bottleneck: VQ-VAE or AMAE (waveloom.nn.quantize) -> codes [B, T / hop] in [0, K) and
             their vectors [B, D, T / hop]
    decoder: p(x_t | x_<t, codes): a WaveNet stack whose local conditioning is the code
             vectors brought to the input rate (waveloom.nn.conditioning.UpsampleConditioning)

Trained end to end: decoder NLL given the window's own codes, plus the bottleneck's auxiliary
losses (commitment, or AMAE's diversity loss). A level's codes become the next level's input
(``waveloom encode-codes``), so levels stack: waveform -> codes at hop h1 -> codes at h1*h2.
Sampling a level given codes runs on the existing engines (fast CPU kernel, CUDA graphs)
through :meth:`ADA.sampling_plan`, exactly as the NSynth autoencoder's decoder does; the
history before the output (silence, or pad tokens) is conditioned on the codes of that silence.

The paper's decoder reads the codes from *one* frame grid aligned with the window; so does
this one: frame ``k`` conditions input positions ``[k*hop, (k+1)*hop)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from waveloom.audio.mulaw import mulaw_encode, quantize
from waveloom.config import ModelConfig, require_positive
from waveloom.errors import ConfigError, DataError
from waveloom.models.base import Autoencoder, Batch
from waveloom.models.codes import (
    MAX_CODEBOOK,
    CodeHead,
    codes_to_samples,
    masked_nll,
    random_code_samples,
    tokens_from_samples,
)
from waveloom.models.plan import SamplingPlan, StepDecoded, history_prefix
from waveloom.models.stack_config import MAX_LAYERS_PER_STACK, WaveNetStackConfig, build_stack
from waveloom.nn.conditioning import UpsampleConditioning
from waveloom.nn.encoder import DilatedEncoder, average_frames
from waveloom.nn.heads import CategoricalHead
from waveloom.nn.quantize import build_quantizer

INPUTS = ("audio", "codes")
BOTTLENECKS = ("vqvae", "amae")


@dataclass
class ADAConfig(WaveNetStackConfig):
    """Hyper-parameters of one level; defaults are a mid-sized waveform level at hop 64."""

    input: str = "audio"  # audio | codes (the codes of the level below)
    input_codebook: int = 256  # K of the level below (input=codes only)
    bottleneck: str = "vqvae"  # vqvae | amae
    codebook_size: int = 256  # K
    code_dim: int = 64  # D: channels of the code vectors the decoder sees
    hop: int = 64  # input steps per code
    upsample_factors: tuple[int, ...] = (8, 8)  # product must equal hop
    # encoder
    encoder_channels: int = 64
    encoder_layers_per_stack: int = 8
    encoder_stacks: int = 2
    encoder_kernel_size: int = 3
    # bottleneck
    vq_decay: float = 0.99  # EMA decay of the VQ codebook
    commitment_weight: float = 0.25  # beta of the VQ-VAE commitment loss
    dead_code_threshold: float = 1.0  # EMA cluster size under which a VQ code is re-seeded
    diversity_weight: float = 0.1  # weight of AMAE's diversity loss
    # decoder: WaveNetStackConfig's fields, with a narrower skip path than its defaults
    skip_channels: int = 128
    end_channels: int = 128

    def validate(self) -> None:
        if self.input not in INPUTS:
            raise ConfigError(f"model.input={self.input!r}: use one of {', '.join(INPUTS)}")
        if self.bottleneck not in BOTTLENECKS:
            raise ConfigError(
                f"model.bottleneck={self.bottleneck!r}: use one of {', '.join(BOTTLENECKS)}")
        require_positive(
            self, "code_dim", "hop", "encoder_channels", "encoder_layers_per_stack",
            "encoder_stacks")
        super().validate()  # the decoder stack's sizes
        for name in ("codebook_size", "input_codebook"):
            value = getattr(self, name)
            if not 2 <= value <= MAX_CODEBOOK:
                raise ConfigError(f"model.{name}={value} must be in 2..{MAX_CODEBOOK}")
        if self.encoder_kernel_size < 2:
            raise ConfigError(f"model.encoder_kernel_size={self.encoder_kernel_size} must be >= 2")
        if self.encoder_layers_per_stack > MAX_LAYERS_PER_STACK:
            raise ConfigError(f"model.encoder_layers_per_stack={self.encoder_layers_per_stack}: "
                              f"use <= {MAX_LAYERS_PER_STACK} and add stacks instead")
        factors = tuple(self.upsample_factors)
        if not factors or any(f <= 0 for f in factors) or math.prod(factors) != self.hop:
            raise ConfigError(f"model.upsample_factors={list(factors)} must be positive and "
                              f"multiply to model.hop={self.hop}")
        if not 0.0 < self.vq_decay < 1.0:
            raise ConfigError(f"model.vq_decay={self.vq_decay} must be in (0, 1)")
        for name in ("commitment_weight", "dead_code_threshold", "diversity_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model.{name}={getattr(self, name)} must be >= 0")


class ADA(StepDecoded, Autoencoder):
    """One level: encoder -> discrete bottleneck -> WaveNet decoder (module docstring)."""

    config_class: ClassVar[type[ModelConfig]] = ADAConfig
    config: ADAConfig

    def __init__(self, config: ADAConfig) -> None:
        super().__init__(config)
        c = config
        self.codes_in = c.input == "codes"
        if self.codes_in:
            self.pad = c.input_codebook  # token of "no code"
            self.token_embed: nn.Embedding | None = nn.Embedding(c.input_codebook + 1,
                                                                 c.encoder_channels)
            enc_in = c.encoder_channels
            self.head: nn.Module = CodeHead(c.input_codebook)
            levels = c.input_codebook + 1
        else:
            self.pad = -1
            self.token_embed = None
            enc_in = 1
            self.head = CategoricalHead()
            levels = 256
        enc_out = c.codebook_size if c.bottleneck == "amae" else c.code_dim
        self.encoder = DilatedEncoder(enc_in, c.encoder_channels, enc_out,
                                      c.encoder_layers_per_stack, c.encoder_stacks,
                                      c.encoder_kernel_size)
        self.quantizer = build_quantizer(
            c.bottleneck, enc_out, c.code_dim, c.codebook_size, decay=c.vq_decay,
            commitment_weight=c.commitment_weight, dead_code_threshold=c.dead_code_threshold,
            diversity_weight=c.diversity_weight,
        )  # fmt: skip
        self.upsample = UpsampleConditioning(c.code_dim, c.upsample_factors)
        self.stack = build_stack(
            c,
            out_channels=self.head.num_params,
            input_levels=levels,
            local_channels=c.code_dim,
        )

    # ------------------------------------------------------------------ basics

    @property
    def hop(self) -> int:
        return int(self.config.hop)

    @property
    def codebook_size(self) -> int:
        return int(self.config.codebook_size)

    @property
    def context(self) -> int:
        """The decoder's receptive field (the encoder sees the whole window)."""
        return self.stack.receptive_field

    def _param_device(self) -> torch.device:
        return self.stack.out2.weight.device

    def frames_for(self, length: int) -> int:
        return -(-int(length) // self.hop)

    def tokens(self, batch_audio: Tensor) -> Tensor:
        """A batch's 'audio' [B, T] -> the decoder's input tokens [B, T] (mu-law codes, or
        codes with pad)."""
        if self.codes_in:
            return tokens_from_samples(batch_audio, self.config.input_codebook)
        return quantize(batch_audio)

    def _encoder_input(self, x: Tensor) -> Tensor:
        """Audio [B, T] float or tokens [B, T] long -> encoder input [B, C, T]."""
        if self.token_embed is not None:
            return self.token_embed(x).transpose(1, 2)
        return mulaw_encode(x).unsqueeze(1)

    def _check_input(self, x: Any) -> Tensor:
        device = self._param_device()
        if self.codes_in:
            x = torch.as_tensor(x, device=device)
            if x.dtype.is_floating_point:
                raise DataError("this level reads the codes of the level below: pass integer "
                                "codes [B, T], not audio")
            x = x.long()
            if x.numel() and (int(x.min()) < 0 or int(x.max()) > self.pad):
                raise DataError(f"input codes must be in 0..{self.pad - 1} (or {self.pad}, pad)")
        else:
            x = torch.as_tensor(x, dtype=torch.float32, device=device)
        if x.dim() == 1:
            x = x.unsqueeze(0)
        if x.dim() != 2 or x.shape[-1] == 0:
            raise DataError(f"input has shape {tuple(x.shape)}; expected [B, T] with T > 0")
        return x

    def quantize_input(self, x: Tensor):
        """Audio / tokens [B, T] -> :class:`~waveloom.nn.quantize.QuantizerOutput` of its
        ``ceil(T / hop)`` frames."""
        h = self.encoder(self._encoder_input(x))
        return self.quantizer(average_frames(h, self.hop))

    @torch.no_grad()
    def encode(self, audio: Any) -> Tensor:
        """Audio [B, T] in [-1, 1] (or, for a code level, codes [B, T] long) -> codes
        [B, ceil(T / hop)] long in [0, codebook_size)."""
        return self.quantize_input(self._check_input(audio)).codes

    def silence_codes(self, frames: int) -> Tensor:
        """Codes [frames] of ``frames * hop`` steps of silence (or pad tokens): what the
        decoder's history before a piece is conditioned on, as in a training window that
        starts before its example."""
        device = self._param_device()
        n = frames * self.hop
        x = (torch.full((1, n), self.pad, dtype=torch.long, device=device) if self.codes_in
             else torch.zeros(1, n, device=device))
        with torch.no_grad():
            return self.quantize_input(x).codes[0]

    def _features(self, vectors: Tensor, length: int, where: str) -> Tensor:
        try:
            return self.upsample(vectors, length)
        except ValueError as err:
            raise DataError(f"{where}: {err}; pass more code frames") from None

    # ------------------------------------------------------------------ training

    def _forward(self, batch: Batch):
        audio = batch["audio"]
        if audio.dim() != 2:
            raise DataError(f"batch['audio'] has shape {tuple(audio.shape)}; expected [B, T]")
        total, ctx = audio.shape[-1], self.context
        if total <= ctx:
            raise DataError(f"batch['audio'] has {total} steps but this decoder needs its "
                            f"context of {ctx} plus at least one more; raise data.window")
        tokens = self.tokens(audio)
        q = self.quantize_input(tokens if self.codes_in else audio)
        local = self._features(q.quantized, total, "codes")[..., 1:]
        params = self.stack(tokens[:, :-1], None, local, padded=False)
        targets = tokens[:, ctx:]
        return params, targets, q

    def decoder_params(self, tokens: Tensor, codes: Tensor) -> Tensor:
        """Teacher-forced decoder given codes: tokens [B, T] long (the decoder's input space)
        and codes [B, F] -> head parameters [B, P, T], where ``[..., t]`` is the distribution
        of ``tokens[:, t]`` given ``tokens[:, :t]`` (zero history before 0) and the codes.
        For tests of causality and for scoring; training uses the cropped pass in ``loss``."""
        first = torch.full_like(tokens[:, :1], self.pad if self.codes_in else 128)
        inputs = torch.cat([first, tokens[:, :-1]], 1)
        local = self._features(self.quantizer.embed(codes), tokens.shape[-1], "codes")
        return self.stack(inputs, None, local, padded=True)

    def _log_probs(self, params: Tensor, targets: Tensor) -> Tensor:
        safe = targets.clamp(max=self.head.num_params - 1)
        return self.head.log_prob(params, safe)

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Decoder NLL (nats per predicted step, pad steps left out) + bottleneck losses;
        logs bits per step, codebook perplexity, used and dead codes."""
        params, targets, q = self._forward(batch)
        logp = self._log_probs(params, targets)
        if self.codes_in:
            nll, _ = masked_nll(logp, targets, self.pad)
        else:
            nll = -logp.mean()
        loss = nll
        out: dict[str, Tensor] = {}
        for name, value in q.losses.items():
            loss = loss + value
            out[name] = value.detach()
        out.update({"loss": loss, "nll": nll.detach(),
                    "bits_per_step": nll.detach() / math.log(2.0)})
        out.update(q.stats)
        return out

    def log_prob(self, batch: Batch) -> Tensor:
        """``log p(x_t | x_<t, codes(x))`` in nats for the last ``T - context`` steps [B, W]
        (a reconstruction score: the codes' own bits are the prior's to count); pad steps of
        a code level score 0."""
        params, targets, _ = self._forward(batch)
        logp = self._log_probs(params, targets)
        return logp * (targets != self.pad) if self.codes_in else logp

    def example_batch(self, batch_size: int, length: int, seed: int = 0) -> Batch:
        if not self.codes_in:
            return super().example_batch(batch_size, length, seed)
        return {"audio": random_code_samples(batch_size, length, self.config.input_codebook,
                                             seed)}

    # ------------------------------------------------------------------ sampling

    def check_codes(self, codes: Any, n: int | None = None, where: str = "cond['codes']"
                    ) -> Tensor:
        """Codes [n, F] (or [F]) -> long tensor on the model's device, or a one-line
        :class:`ConfigError`."""
        try:
            z = torch.as_tensor(codes, device=self._param_device())
        except (TypeError, ValueError, RuntimeError):
            raise ConfigError(f"{where} is not an array of integer codes") from None
        if z.dtype.is_floating_point or z.dtype == torch.bool:
            raise ConfigError(f"{where} must hold integer codes, not {z.dtype}")
        shape = tuple(z.shape)
        if z.dim() == 1:
            z = z.unsqueeze(0)
        if z.dim() != 2 or z.shape[1] < 1:
            raise ConfigError(f"{where} has shape {shape}; expected [n, frames]")
        if n is not None:
            if z.shape[0] not in (1, n):
                raise ConfigError(f"{where} holds {z.shape[0]} code sequences for n={n}")
            z = z.expand(n, -1)
        z = z.long()
        if int(z.min()) < 0 or int(z.max()) >= self.codebook_size:
            raise ConfigError(f"{where} holds codes outside 0..{self.codebook_size - 1}")
        return z

    def sampling_plan(
        self,
        n: int,
        length: int,
        cond: dict[str, Any] | None = None,
        prime: Tensor | None = None,
    ) -> SamplingPlan:
        """The engines' inputs: the codes (``cond['codes']`` [n, frames], aligned with the
        first output step and covering the output, up to one hop short) are the local
        conditioning; the history is silence (audio levels; a ``prime`` may replace it) or pad
        tokens (code levels), conditioned on :meth:`silence_codes`."""
        cond = dict(cond or {})
        if cond.get("codes") is None:
            raise ConfigError("an ADA level decodes codes: pass cond['codes'] [n, frames]")
        z = self.check_codes(cond["codes"], n)
        device = self._param_device()
        ctx = self.context
        if self.codes_in:
            if (cond.get("prime") if prime is None else prime) is not None:
                raise ConfigError("a code level cannot be primed with audio")
            prefix, user_p, kept = (torch.full((n, ctx), self.pad, device=device), 0, 0)
        else:
            prefix, user_p, kept = history_prefix(
                cond.get("prime") if prime is None else prime, n, ctx, device)
        pad = ctx - kept
        m = -(-pad // self.hop)
        if m:
            z = torch.cat([self.silence_codes(m)[None].expand(n, -1), z], -1)
        vectors = self.quantizer.embed(z)
        try:
            feats = self._features(vectors, m * self.hop + user_p + length, "cond['codes']")
        except DataError as err:
            raise ConfigError(str(err)) from None
        local = feats[..., m * self.hop - pad + user_p - kept:]
        return SamplingPlan(prefix=prefix.long(), g=None, local=local.contiguous())

    def decode_request(self, z: Any, pitch: Any = None, length: int | None = None
                       ) -> tuple[int, int, dict[str, Any]]:
        """Codes [n, F] (or [F]) -> ``(n, length, cond)`` for the engines; ``length`` defaults
        to ``F * hop``. A level has no pitch conditioning, so a pitch is refused."""
        if pitch is not None:
            raise ConfigError("an ADA level has no pitch conditioning; decode without a pitch")
        z = self.check_codes(z)
        length = z.shape[-1] * self.hop if length is None else int(length)
        return z.shape[0], length, {"codes": z}

    def decoded(self, tokens: Tensor) -> Tensor:
        """The decoder's tokens -> audio [n, length] in [-1, 1] (audio level) or the lower
        level's codes [n, length] long (code level)."""
        return tokens if self.codes_in else self.head.decode(tokens).clamp(-1.0, 1.0)

    def output(self, tokens: Tensor) -> Tensor:
        """As :meth:`decoded`, but a code level's codes in the code-cache representation
        (:func:`~waveloom.models.codes.codes_to_samples`): the contract's output type."""
        return codes_to_samples(tokens) if self.codes_in else self.decoded(tokens)

    def unigram_codes(self, n: int, frames: int, seed: int | None) -> Tensor:
        """Codes drawn i.i.d. from the running code usage: what ``sample`` decodes when no
        codes are given (a level has no prior of its own; see the ``code_prior`` family)."""
        gen = torch.Generator()
        if seed is None:
            gen.seed()
        else:
            gen.manual_seed(int(seed))
        probs = self.quantizer.usage.detach().float().cpu().clamp(min=0) + 1e-12
        draws = torch.multinomial(probs, n * frames, replacement=True, generator=gen)
        return draws.view(n, frames).to(self._param_device())

    def sampling_cond(self, n: int, length: int, cond: dict[str, Any],
                      seed: int | None) -> dict[str, Any]:
        """What ``sample`` decodes: ``cond['codes']``, the codes of ``cond['audio']`` (input
        of this level), or unigram codes; an audio level may continue ``cond['prime']``."""
        if cond.get("codes") is not None:
            codes = self.check_codes(cond["codes"], n)
        elif cond.get("audio") is not None:
            codes = self.encode(cond["audio"])
            codes = self.check_codes(codes, n, "codes of cond['audio']")
        else:
            codes = self.unigram_codes(n, self.frames_for(length), seed)
        return {"codes": codes, "prime": cond.get("prime")}
