"""NSynth WaveNet autoencoder (Engel et al. 2017, "Neural Audio Synthesis of Musical Notes with
WaveNet Autoencoders", arXiv:1704.01279).

A temporal encoder compresses a note into a slow code, a WaveNet decoder models the audio given
that code::

    encoder:  mu-law audio [B, 1, T] -> non-causal dilated residual stack (ReLU, dilated conv,
              ReLU, 1x1; dilations doubling in stacks of 10) -> 1x1 to D -> mean over each hop
              -> z [B, D, ceil(T / hop)]                     (paper: 30 layers, 128 ch, D=16,
                                                              hop 512 = 31.25 Hz at 16 kHz)
    decoder:  p(x_t | x_<t, z, pitch): a :class:`~waveloom.nn.wavenet.WaveNetStack` whose local
              conditioning is z brought to the sample rate; each residual layer adds its own
              1x1 projection of it to its gates ("a separate projection of the embedding as a
              bias in every layer"), and the optional pitch label enters every layer through
              the same global conditioning as a WaveNet's (the paper's trick to take pitch out
              of the code, so a code carries timbre).

The code is upsampled by :class:`~waveloom.nn.conditioning.UpsampleConditioning`, which starts as
the paper's plain repetition (frame k conditions samples [k*hop, (k+1)*hop)) and may learn a
per-position interpolation. Differences from the reference implementation: the decoder reads
the previous sample as a learnt embedding of its mu-law code (not a scalar), and its two output
1x1 layers are not conditioned.

Training is teacher-forced maximum likelihood of the decoder given the code of the same window
(the encoder sees the whole window, including the sample being predicted: that is the point of
an autoencoder, so :meth:`NSynthAE.log_prob` is ``log p(x | z(x))``, a reconstruction score,
not a bound on ``-log p(x)``). Decoding runs on the existing sampling engines through
:meth:`NSynthAE.sampling_plan`; the silent history before a note gets the codes of silence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from waveloom.audio.mulaw import mulaw_encode, quantize
from waveloom.config import ModelConfig, require_positive
from waveloom.errors import ConfigError, DataError
from waveloom.models.autoencoder import CodeAutoencoder
from waveloom.models.base import Batch
from waveloom.models.plan import SamplingPlan, StepDecoded, global_vector, history_prefix
from waveloom.models.stack_config import (
    MAX_LAYERS_PER_STACK,
    HeadedStackConfig,
    build_output_head,
    build_stack,
)
from waveloom.nn.conditioning import GlobalConditioning, UpsampleConditioning
from waveloom.nn.encoder import CodeStatistics, DilatedEncoder, average_frames
from waveloom.nn.pitch_clock import EXCITATION_CHANNELS, noisy_history, pitch_excitation


@dataclass
class NSynthAEConfig(HeadedStackConfig):
    """Hyper-parameters; the defaults are the paper's model (see configs/nsynth_ae/paper.yaml)."""

    # temporal encoder
    encoder_channels: int = 128
    encoder_layers_per_stack: int = 10  # dilations 1 .. 2^(L-1)
    encoder_stacks: int = 3
    encoder_kernel_size: int = 3
    embedding_dim: int = 16  # D: code channels
    hop: int = 512  # samples per code frame (the average-pooling width)
    upsample_factors: tuple[int, ...] = (8, 8, 8)  # product must equal hop
    # WaveNet decoder: WaveNetStackConfig's fields; the paper's sizes differ from its defaults
    # here (skip/end 256 and 10 layers per stack are the shared defaults). Its output is
    # HeadedStackConfig's head: the paper's 256-way softmax by default; a Gaussian over 16-bit
    # levels (head: gaussian, mixture_levels: 65536) escapes the 8-bit floor and samples colder.
    residual_channels: int = 512
    dilation_channels: int = 512
    stacks: int = 3
    kernel_size: int = 3
    # optional pitch label (global conditioning of every decoder layer)
    pitch_conditioning: bool = False
    cond_dim: int = 64
    cond_dropout: float = 0.0  # rate of hiding the pitch in training (teaches "unknown")
    # Not in the paper: the WaveNet family's pitch clock (waveloom.nn.pitch_clock), sin/cos of
    # the labelled pitch's phase as two more local channels beside the code. The paper's
    # small-budget failure mode is a decoder that invents its own period (measured: the
    # shipped small decoder put 3 of 17 held-out notes on pitch); handed the period, it only
    # has to shape the code's timbre around it. Random phase in training; decoding needs the
    # pitch label.
    pitch_excitation: bool = False
    # Training noise on the decoder's input history (std up to this x the window's RMS), so
    # the code and the pitch clock must carry the note instead of a perfect teacher-forced past.
    input_noise: float = 0.0
    sample_rate: int = 16000  # turns MIDI pitch into the clock's period

    def validate(self) -> None:
        require_positive(
            self, "encoder_channels", "encoder_layers_per_stack", "encoder_stacks",
            "embedding_dim", "hop", "cond_dim")
        if self.encoder_kernel_size < 2:
            raise ConfigError(f"model.encoder_kernel_size={self.encoder_kernel_size} must be >= 2")
        if self.encoder_layers_per_stack > MAX_LAYERS_PER_STACK:
            raise ConfigError(
                f"model.encoder_layers_per_stack={self.encoder_layers_per_stack}: use <= "
                f"{MAX_LAYERS_PER_STACK} and add stacks instead"
            )
        super().validate()  # the decoder stack's sizes
        factors = tuple(self.upsample_factors)
        if not factors or any(f <= 0 for f in factors) or math.prod(factors) != self.hop:
            raise ConfigError(
                f"model.upsample_factors={list(factors)} must be positive and multiply to "
                f"model.hop={self.hop}"
            )
        if not 0.0 <= self.cond_dropout < 1.0:
            raise ConfigError(f"model.cond_dropout={self.cond_dropout} must be in [0, 1)")
        if self.input_noise < 0:
            raise ConfigError(f"model.input_noise={self.input_noise} must be >= 0")
        require_positive(self, "sample_rate")


class NSynthAE(StepDecoded, CodeAutoencoder):
    """Temporal encoder + WaveNet decoder (8-bit mu-law input; its head's output levels)."""

    config_class: ClassVar[type[ModelConfig]] = NSynthAEConfig
    config: NSynthAEConfig

    def __init__(self, config: NSynthAEConfig) -> None:
        super().__init__(config)
        c = config
        self.encoder = DilatedEncoder(
            1, c.encoder_channels, c.embedding_dim, c.encoder_layers_per_stack,
            c.encoder_stacks, c.encoder_kernel_size,
        )  # fmt: skip
        self.upsample = UpsampleConditioning(c.embedding_dim, c.upsample_factors)
        self.global_cond = (
            GlobalConditioning(c.cond_dim, 1, pitch=True, instrument=False,
                               dropout=c.cond_dropout)
            if c.pitch_conditioning
            else None
        )
        self.head = build_output_head(c)
        self.stack = build_stack(
            c,
            out_channels=self.head.num_params,
            global_channels=0 if self.global_cond is None else self.global_cond.out_dim,
            local_channels=c.embedding_dim + (EXCITATION_CHANNELS if c.pitch_excitation else 0),
        )
        self.code_stats = CodeStatistics(c.embedding_dim)

    # ------------------------------------------------------------------ contract

    @property
    def context(self) -> int:
        """The decoder's receptive field (the encoder sees the whole window, no context)."""
        return self.stack.receptive_field

    def conditioning_keys(self) -> tuple[str, ...]:
        uses_pitch = self.global_cond is not None or self.config.pitch_excitation
        return ("pitch",) if uses_pitch else ()

    def _param_device(self) -> torch.device:
        return self.stack.out2.weight.device

    def encode(self, audio: Tensor) -> Tensor:
        """Audio [B, T] (or [T]) in [-1, 1] -> codes [B, D, ceil(T / hop)].

        The encoder reads mu-law companded audio (quiet partials are not lost under loud ones),
        zero-padded at both ends; frame ``k`` is the mean over samples ``[k*hop, (k+1)*hop)``.
        """
        audio = torch.as_tensor(audio, dtype=torch.float32).to(self._param_device())
        if audio.dim() == 1:
            audio = audio.unsqueeze(0)
        if audio.dim() != 2 or audio.shape[-1] == 0:
            raise DataError(f"audio has shape {tuple(audio.shape)}; expected [B, T] with T > 0")
        h = self.encoder(mulaw_encode(audio).unsqueeze(1))
        return average_frames(h, self.hop)

    def silence_codes(self, frames: int) -> Tensor:
        """Codes of ``frames * hop`` samples of digital silence [D, frames]: what the decoder's
        silent history is conditioned on. A training window that starts before its note sees
        the same thing: silence next to the window's zero-padded edge."""
        with torch.no_grad():
            return self.encode(torch.zeros(1, frames * self.hop, device=self._param_device()))[0]

    def _features(self, z: Tensor, length: int, where: str) -> Tensor:
        """Codes [B, D, F] -> sample-rate features [B, D, length] (DataError if too short)."""
        try:
            return self.upsample(z, length)
        except ValueError as err:
            raise DataError(f"{where}: {err}; pass more code frames") from None

    def _global(self, pitch: Any, n: int, dropout: bool) -> Tensor | None:
        if self.global_cond is None:
            return None
        device = self._param_device()
        labels = None if pitch is None else torch.as_tensor(pitch, device=device).long()
        return self.global_cond(labels, None, batch=n, dropout=dropout)

    def decoder_params(self, audio: Tensor, z: Tensor, pitch: Any = None) -> tuple[Tensor, Tensor]:
        """Teacher-forced decoder: head parameters [B, P, W] and target codes [B, W] for the
        last ``W = T - context`` samples of ``audio`` [B, T] given codes ``z`` [B, D, F]."""
        total, ctx = audio.shape[-1], self.context
        if total <= ctx:
            raise DataError(
                f"batch['audio'] has {total} samples but this decoder needs its context of "
                f"{ctx} plus at least one more; raise data.window"
            )
        history = audio[:, :-1]  # sample t-1 feeds the prediction of t
        if self.training:
            history = noisy_history(history, self.config.input_noise)
        inputs = quantize(history)
        targets = self.head.encode(audio[:, ctx:])
        l = self._features(z, total, "codes")[..., 1:]  # the feature of the predicted t
        if self.config.pitch_excitation:
            times = torch.arange(total - 1, device=audio.device).expand(audio.shape[0], -1)
            l = torch.cat([l, self._excitation(pitch, times, self.training)], dim=1)
        g = self._global(pitch, audio.shape[0], dropout=self.training)
        return self.stack(inputs, g, l, padded=False), targets

    def _excitation(self, pitch: Any, times: Tensor, random_phase: bool) -> Tensor:
        """The pitch clock of ``times`` [n, L] -> [n, 2, L] (zeros for an unknown pitch)."""
        return pitch_excitation(pitch, times, self.config.sample_rate,
                                random_phase=random_phase, onset_phase=False,
                                device=self._param_device())

    def _params(self, batch: Batch) -> tuple[Tensor, Tensor]:
        audio = batch["audio"]
        if audio.dim() != 2:
            raise DataError(f"batch['audio'] has shape {tuple(audio.shape)}; expected [B, T]")
        z = self.encode(audio)
        self.track_codes(z)
        return self.decoder_params(audio, z, batch.get("pitch"))

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Mean NLL in nats per predicted sample given the window's own code, plus bits/sample
        and next-code accuracy."""
        params, targets = self._params(batch)
        nll = -self.head.log_prob(params, targets).mean()
        with torch.no_grad():
            accuracy = (self.head.mode(params) == targets).float().mean()
        return {"loss": nll, "bits_per_sample": nll.detach() / math.log(2.0),
                "accuracy": accuracy}

    def log_prob(self, batch: Batch) -> Tensor:
        """``log p(x_t | x_<t, z(x))`` in nats for the last ``T - context`` samples: [B, W].

        The code is computed from the same audio, so this scores reconstruction; it is not a
        likelihood of the audio alone (the code's own bits are not counted).
        """
        params, targets = self._params(batch)
        return self.head.log_prob(params, targets)

    # ------------------------------------------------------------------ sampling

    def sampling_plan(
        self,
        n: int,
        length: int,
        cond: dict[str, Any] | None = None,
        prime: Tensor | None = None,
    ) -> SamplingPlan:
        """Resolve ``cond`` into the engines' inputs; the code is the local conditioning.

        ``cond['embedding']`` [n, D, frames] (or [D, frames]) is aligned with the first sample
        of the prime (or of the output without one) and must cover prime + output (up to one
        hop short: the last frame is then repeated). The silent history that fills the
        decoder's receptive field is conditioned on :meth:`silence_codes` frames on the same
        frame grid, as in a training window that starts before its note.
        """
        cond = dict(cond or {})
        device = self._param_device()
        if cond.get("embedding") is None:
            raise ConfigError("an NSynth autoencoder decodes a code: pass cond['embedding'] "
                              f"[n, {self.embedding_dim}, frames]")
        z = self.check_codes(cond["embedding"], n, "cond['embedding']")
        prefix, user_p, kept = history_prefix(
            cond.get("prime") if prime is None else prime, n, self.context, device
        )
        pad = self.context - kept  # silent history samples (then user_p == kept)
        m = -(-pad // self.hop)
        if m:
            z = torch.cat([self.silence_codes(m)[None].expand(n, -1, -1), z], -1)
        try:
            feats = self._features(z, m * self.hop + user_p + length,
                                   "cond['embedding']")
        except DataError as err:
            raise ConfigError(str(err)) from None
        local = feats[..., m * self.hop - pad + user_p - kept :]
        if self.config.pitch_excitation:  # phase 0 at the timeline's start, as in training
            times = torch.arange(local.shape[-1], device=device).expand(n, -1)
            local = torch.cat([local, self._excitation(cond.get("pitch"), times, False)], 1)
        g = global_vector(self.global_cond, cond, n, device)
        return SamplingPlan(prefix=prefix, g=g, local=local.contiguous())

    def decode_request(self, z: Any, pitch: Any = None, length: int | None = None
                       ) -> tuple[int, int, dict[str, Any]]:
        """Codes [B, D, F] (or [D, F]) -> ``(B, length, cond)`` for the engines (``length``
        defaults to F * hop). ``pitch`` (MIDI, one or B values) is used by pitch-conditioned
        models; None is the unknown label. ``waveloom.sampling.sample.decode`` runs it: the
        same seed gives the same audio on every engine."""
        z = self.check_codes(z)
        length = z.shape[-1] * self.hop if length is None else int(length)
        cond: dict[str, Any] = {"embedding": z}
        if pitch is not None:
            cond["pitch"] = pitch
        return z.shape[0], length, cond

    def sampling_cond(self, n: int, length: int, cond: dict[str, Any],
                      seed: int | None) -> dict[str, Any]:
        """What ``sample`` decodes: ``cond['embedding']``, the code of ``cond['audio']``, the
        prime's code continued (``cond['prime']`` alone: ``generate --prime``;
        :meth:`~waveloom.models.autoencoder.CodeAutoencoder.continued_codes`), or a code drawn
        from the training codes' statistics
        (:meth:`~waveloom.models.autoencoder.CodeAutoencoder.codes_for`)."""
        cond = dict(cond)
        if (cond.get("prime") is not None and cond.get("embedding") is None
                and cond.get("audio") is None):
            cond["embedding"] = self.continued_codes(n, length, cond["prime"])
            return cond
        cond["embedding"] = self.codes_for(n, length, cond, seed)
        cond.pop("audio", None)
        return cond
