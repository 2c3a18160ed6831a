"""WaveNet (van den Oord et al. 2016): an autoregressive model of raw audio samples.

p(x) = prod_t p(x_t | x_<t, h): the network sees the mu-law codes of the previous samples
(teacher forcing, shifted by one) and predicts a distribution over sample t with a softmax over
256 mu-law codes or a discretised logistic mixture. Optional conditioning: pitch and instrument
labels (global) and a mel spectrogram or piano roll (local, upsampled to the sample rate).

With ``local: mel`` it is a WaveNet vocoder (Shen et al. 2018): the log mel is the one MelGAN
reads (:class:`waveloom.audio.mel_features.MelFeatures`), computed from each training window,
so ``waveloom vocode`` and resynthesis (``cond['audio']``) work with either family on the same
mels.

The network is :class:`waveloom.nn.wavenet.WaveNetStack`; it does not sample itself: it is a
:class:`~waveloom.models.plan.StepSampled` family, run by the engines of :mod:`waveloom.sampling`
(``waveloom.sampling.sample.sample(model, n, length, cond, options)``: the compiled fast engine
on a CPU, CUDA graphs on a GPU, the plain-torch cached reference otherwise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from waveloom.audio.mel_features import MelFeatures
from waveloom.audio.mulaw import mulaw_encode, quantize
from waveloom.config import ModelConfig, require_positive
from waveloom.errors import ConfigError, DataError
from waveloom.models.base import Batch, Likelihood
from waveloom.models.plan import (
    LocalFeatures,
    SamplingPlan,
    StepSampled,
    global_vector,
    history_prefix,
)
from waveloom.models.stack_config import HeadedStackConfig, build_output_head, build_stack
from waveloom.nn.conditioning import GlobalConditioning, UpsampleConditioning
from waveloom.nn.excitation import SINE_AMPLITUDE, fitted_phase, harmonic_excitation
from waveloom.nn.pitch_clock import (
    EXCITATION_CHANNELS,
    EXCITATION_PHASES,
    NOTE_CLOCK_CHANNELS,
    noisy_history,
    note_clock,
    pitch_excitation,
)
from waveloom.nn.roll_excitation import ROLL_EXCITATION_CHANNELS, roll_excitation
from waveloom.nn.wavenet import STACK_INPUTS

LOCALS = ("none", "mel", "roll", "latent")  # latent: an encoder's frames (the translator)
F0_PHASES = ("random", "fit")


@dataclass
class WaveNetConfig(HeadedStackConfig):
    """Hyper-parameters of a WaveNet; defaults are a mid-sized pitch/instrument model."""

    # The stack's sizes are WaveNetStackConfig's fields, with its defaults.
    # head / mixture_components / mixture_levels: HeadedStackConfig's (gaussian: the
    # ClariNet distillation teacher)
    # embedding | onehot | scalar (of the previous sample's mu-law code; scalar: its companded
    # value as one channel, which training feeds unquantised: a distillation teacher)
    input: str = "embedding"
    num_instruments: int = 16
    pitch_conditioning: bool = True
    instrument_conditioning: bool = True
    cond_dim: int = 32  # embedding width per global label
    cond_dropout: float = 0.0  # rate at which training hides a label (teaches "unknown")
    local: str = "none"  # none | mel | roll | latent
    local_channels: int = 80  # mel bands, or 128 for a piano roll
    local_hop: int = 256  # samples per conditioning frame
    upsample_factors: tuple[int, ...] = (16, 16)  # product must equal local_hop
    # The mel's analysis (local: mel; n_mels = local_channels, hop = local_hop). The defaults
    # are MelGAN's, so the two vocode the same mels; fmax 0 means sample_rate / 2.
    mel_n_fft: int = 1024
    mel_fmin: float = 0.0
    mel_fmax: float = 0.0
    # Neural source-filter style pitch clock: feed sin/cos of the requested pitch's phase as two
    # extra sample-rate local channels, so the network shapes a timbre around a period it is
    # given instead of having to invent the period from an embedding (Wang et al. 2019, NSF).
    # The phase starts at random in training, so only the period carries information.
    pitch_excitation: bool = False
    # 'random': the clock's phase is random in training (only its period informs).
    # 'onset': the clock starts at phase 0 on the note's onset and is silent before it, in
    # training and sampling alike (needs each window's 'start', like the note clock). Rendered
    # notes start their waveform at the same phase every time, so the clock then also says
    # *where* in the period the next sample falls, which the network can use from the first
    # sample of the note instead of inventing a phase and a period from silence.
    excitation_phase: str = "random"
    # Teacher forcing shows the network a perfect history, which predicts the next sample so
    # well that it learns to ignore its pitch labels (measured: switching the excitation off
    # changed test NLL by 0.001 bits); at sampling time its own imperfect history then drifts
    # off pitch. Adding Gaussian noise to the *input* history in training (std drawn per window
    # uniformly in [0, input_noise] x the window's RMS; targets stay clean) makes the history
    # less trustworthy, so the conditioning must carry the pitch (cf. FFTNet's noise injection).
    input_noise: float = 0.0
    # Time since the note started, as local channels (a gate that opens at the onset and
    # exp(-t/tau) for a few time scales): a receptive field of tens of ms cannot tell 5 ms of
    # silence before an onset from 500 ms, nor the slow swell of a bowed string from silence
    # that should stay silent; with the clock the network knows where in the note it is.
    # Needs examples that start at their note's onset (NSynth-style notes); the window's
    # 'start' within its example comes from the data set.
    note_clock: bool = False
    # local: roll only. Two more sample-rate channels: the summed sin / cos of every sounding
    # note's phase, weighted by its roll value (waveloom.nn.roll_excitation), so the network
    # is handed the score's periods instead of inventing them from the roll's on/off rows.
    roll_excitation: bool = False
    # An NSF source from a tracked f0 (waveloom.nn.excitation.harmonic_excitation): this many
    # unit sines at the harmonics of 'f0_hz' [B, F] (Hz per local frame, 0 = unvoiced) as more
    # sample-rate channels, so a decoder of a latent (the translator's) is handed the period
    # of the input's melody instead of inventing it from the latent. 0: off. Needs a local.
    f0_excitation: int = 0
    # The source's starting phase in training: 'random' (only the period informs) or 'fit'
    # (locked to the window's own fundamental by least squares, waveloom.nn.excitation.
    # fitted_phase, so the decoder learns to follow the source sample by sample; sampling
    # starts it at phase 0 and the output locks to it).
    f0_phase: str = "random"
    sample_rate: int = 16000  # turns MIDI pitch into a period and note_clock taus into samples

    def validate(self) -> None:
        super().validate()  # the stack's sizes and its head
        require_positive(self, "num_instruments", "cond_dim")
        _choice("input", self.input, STACK_INPUTS)
        _choice("local", self.local, LOCALS)
        _choice("excitation_phase", self.excitation_phase, EXCITATION_PHASES)
        _choice("f0_phase", self.f0_phase, F0_PHASES)
        if self.input_noise < 0:
            raise ConfigError(f"model.input_noise={self.input_noise} must be >= 0")
        if self.roll_excitation and self.local != "roll":
            raise ConfigError("model.roll_excitation needs model.local=roll (it sounds the "
                              "roll's notes); set model.local=roll or turn it off")
        if self.f0_excitation < 0 or (self.f0_excitation and self.local == "none"):
            raise ConfigError(f"model.f0_excitation={self.f0_excitation} must be >= 0 and needs "
                              "a local conditioning (its f0 comes per local frame)")
        if self.pitch_excitation and self.sample_rate <= 0:
            raise ConfigError(f"model.sample_rate={self.sample_rate} must be > 0")
        if not 0.0 <= self.cond_dropout < 1.0:
            raise ConfigError(f"model.cond_dropout={self.cond_dropout} must be in [0, 1)")
        if self.local != "none":
            if self.local_channels <= 0 or self.local_hop <= 0:
                raise ConfigError(
                    f"model.local_channels={self.local_channels} and "
                    f"model.local_hop={self.local_hop} must be > 0"
                )
            if self.local == "roll" and self.local_channels != 128:
                raise ConfigError(
                    f"model.local_channels={self.local_channels}: a piano roll has 128 pitch "
                    "rows; set model.local_channels=128"
                )
            factors = tuple(self.upsample_factors)
            if not factors or any(f <= 0 for f in factors):
                raise ConfigError(
                    f"model.upsample_factors={list(factors)} must be positive integers"
                )
            if math.prod(factors) != self.local_hop:
                raise ConfigError(
                    f"model.upsample_factors={list(factors)} multiply to {math.prod(factors)}, "
                    f"not model.local_hop={self.local_hop}; make their product equal the hop"
                )
        if self.local == "mel":
            if self.mel_n_fft < self.local_hop:
                raise ConfigError(
                    f"model.mel_n_fft={self.mel_n_fft} is shorter than model.local_hop="
                    f"{self.local_hop}: frames would skip samples; use mel_n_fft >= local_hop"
                )
            nyquist = self.sample_rate / 2
            top = self.mel_fmax or nyquist
            if not 0 <= self.mel_fmin < top <= nyquist:
                raise ConfigError(
                    f"model.mel_fmin={self.mel_fmin}, model.mel_fmax={self.mel_fmax}: need "
                    f"0 <= fmin < fmax <= sample_rate / 2 = {nyquist:g} (fmax 0 = Nyquist)"
                )


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"model.{name}={value!r}: use one of {', '.join(allowed)}")


class WaveNet(StepSampled, Likelihood):
    """A (conditional) WaveNet over 16 kHz audio, trained by maximum likelihood."""

    config_class: ClassVar[type[ModelConfig]] = WaveNetConfig
    config: WaveNetConfig

    def __init__(self, config: WaveNetConfig) -> None:
        super().__init__(config)
        c = config
        self.head = build_output_head(c)
        self.global_cond = (
            GlobalConditioning(
                c.cond_dim,
                c.num_instruments,
                pitch=c.pitch_conditioning,
                instrument=c.instrument_conditioning,
                dropout=c.cond_dropout,
            )
            if c.pitch_conditioning or c.instrument_conditioning
            else None
        )
        self.upsample = (
            UpsampleConditioning(c.local_channels, c.upsample_factors)
            if c.local != "none"
            else None
        )
        self.stack = build_stack(
            c,
            out_channels=self.head.num_params,
            input=c.input,
            global_channels=0 if self.global_cond is None else self.global_cond.out_dim,
            local_channels=(c.local_channels if self.upsample is not None else 0)
            + (ROLL_EXCITATION_CHANNELS if c.roll_excitation else 0)
            + c.f0_excitation
            + (EXCITATION_CHANNELS if c.pitch_excitation else 0)
            + (NOTE_CLOCK_CHANNELS if c.note_clock else 0),
        )

    # ------------------------------------------------------------------ contract

    @property
    def context(self) -> int:
        """Past samples needed per prediction: the stack's receptive field.

        Sample t is predicted from the codes of samples t - RF .. t - 1 (the one-step shift), so
        the model's receptive field counting the predicted sample is RF + 1 and the context is
        RF.
        """
        return self.stack.receptive_field

    def conditioning_keys(self) -> tuple[str, ...]:
        keys = () if self.global_cond is None else self.global_cond.keys()
        if self.config.pitch_excitation and "pitch" not in keys:
            keys = keys + ("pitch",)
        keys = keys + (() if self.config.local == "none" else (self.config.local,))
        return keys + (("f0_hz",) if self.config.f0_excitation else ())

    @property
    def _needs_start(self) -> bool:
        c = self.config
        return c.note_clock or (c.pitch_excitation and c.excitation_phase == "onset")

    def batch_keys(self) -> tuple[str, ...]:
        """What a training/evaluation batch must hold besides 'audio': the conditioning (but
        not a mel, which each window's own audio gives), plus the window's 'start' within its
        example when the note clock or an onset-phase excitation needs it."""
        keys = tuple(k for k in self.conditioning_keys() if k != "mel")
        return keys + (("start",) if self._needs_start else ())

    @property
    def mel_features(self) -> MelFeatures | None:
        """The mel analysis of a mel-conditioned WaveNet (MelGAN's layout), else None."""
        c = self.config
        if c.local != "mel":
            return None
        return MelFeatures(c.sample_rate, c.mel_n_fft, c.local_hop, c.local_channels,
                           c.mel_fmin, c.mel_fmax)

    def vocode_request(self, mel: Any) -> tuple[int, int, dict[str, Any]]:
        """Log mel [n, M, F] (or [M, F]) -> ``(n, (F - 1) * hop, {'mel': mel})``: the request
        that samples audio with the mel as local conditioning (the length MelGAN's ``vocode``
        gives); ``waveloom.sampling.sample.vocode`` runs it."""
        features = self.mel_features
        if features is None:
            raise ConfigError(f"this WaveNet has model.local={self.config.local!r}; only a "
                              "mel-conditioned one (model.local=mel) can vocode")
        return features.request(mel, self.stack.out2.weight.device)

    def _note_clock(self, times: Tensor) -> Tensor:
        """Samples since the note's onset [n, L] -> [n, NOTE_CLOCK_CHANNELS, L]
        (:func:`waveloom.nn.pitch_clock.note_clock`)."""
        return note_clock(times, self.config.sample_rate)

    def _excitation(self, pitch: Any, times: Tensor, random_phase: bool) -> Tensor:
        """sin/cos of the phase of each example's pitch: [n, 2, L] (zeros where unknown;
        :func:`waveloom.nn.pitch_clock.pitch_excitation`, onset-phased when
        ``excitation_phase='onset'``)."""
        return pitch_excitation(pitch, times, self.config.sample_rate,
                                random_phase=random_phase,
                                onset_phase=self.config.excitation_phase == "onset",
                                device=self.stack.out2.weight.device)

    def _global(self, source: dict[str, Any], n: int, dropout: bool) -> Tensor | None:
        if self.global_cond is None:
            return None
        device = self.stack.out2.weight.device
        labels = {}
        for key in ("pitch", "instrument"):
            value = source.get(key)
            labels[key] = None if value is None else torch.as_tensor(value, device=device).long()
        return self.global_cond(labels["pitch"], labels["instrument"], batch=n, dropout=dropout)

    def _local(self, frames: Tensor, length: int, where: str, f0: Any = None,
               audio: Tensor | None = None) -> Tensor:
        """Frame features [B, C, F] -> sample-rate features [B, C', length] (frame k conditions
        samples [k*hop, (k+1)*hop)), followed by the roll's and the f0's sources when
        configured (``f0``: the 'f0_hz' frames [B, F'] on the same hop; ``audio`` [B, length]:
        the training window the source's phase is fitted to, ``model.f0_phase=fit``)."""
        assert self.upsample is not None
        key, c = self.config.local, self.config.local_channels
        if frames.dim() != 3 or frames.shape[1] != c:
            raise DataError(
                f"{where}[{key!r}] has shape {tuple(frames.shape)}; expected [B, {c}, frames]"
            )
        try:
            features = self.upsample(frames.to(self.stack.out2.weight), length)
        except ValueError as err:
            raise DataError(f"{where}[{key!r}]: {err}; pass more frames") from None
        parts = [features]
        if self.config.roll_excitation:
            phases = None  # training: random phases, so only the periods inform
            if self.training:
                phases = torch.rand(frames.shape[0], 128, device=frames.device) * (2 * math.pi)
            parts.append(roll_excitation(frames, self.config.local_hop, length,
                                         self.config.sample_rate, phases))
        if self.config.f0_excitation:
            parts.append(self._f0_source(f0, frames.shape[0], length, where, audio))
        return parts[0] if len(parts) == 1 else torch.cat([p.to(features) for p in parts], 1)

    def _f0_source(self, f0: Any, n: int, length: int, where: str,
                   audio: Tensor | None = None) -> Tensor:
        """'f0_hz' [n, F] (Hz per local frame, 0 = unvoiced) -> the harmonic source
        [n, f0_excitation, length]. Its starting phase in training: random, or fitted to
        ``audio`` (``model.f0_phase``); phase 0 at sample 0 when sampling."""
        c = self.config
        if f0 is None:
            raise DataError(f"this WaveNet has model.f0_excitation={c.f0_excitation}: "
                            f"{where} needs 'f0_hz' [B, frames] at hop {c.local_hop}")
        f0 = torch.as_tensor(f0, device=self.stack.out2.weight.device).float()
        f0 = (f0[None] if f0.dim() == 1 else f0).expand(n, -1)
        needed = -(-length // c.local_hop)
        if f0.shape[-1] < needed:
            raise DataError(f"{where}['f0_hz'] has {f0.shape[-1]} frames; {length} samples "
                            f"need {needed} at hop {c.local_hop}")
        f0 = f0[:, :needed + 1]
        phase0 = None
        if self.training and c.f0_phase == "fit" and audio is not None:
            phase0 = fitted_phase(f0, audio, c.sample_rate, c.local_hop)
        elif self.training:
            phase0 = torch.rand(n, device=f0.device) * (2 * math.pi)
        source = harmonic_excitation(f0, c.sample_rate, c.local_hop, c.f0_excitation, phase0)
        # Unit sines: NSF's 0.1 suits a source added to a waveform, but beside standardised
        # local features it sat 10x under the latent, and a CPU translator run ignored it
        # (session 27: the NLL the same to 1e-3 bits with the source silenced, step 2,000).
        return source[..., :length] / SINE_AMPLITUDE

    def _params(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Head parameters [B, P, W] and target codes [B, W] for the last W samples."""
        audio = batch["audio"]
        if audio.dim() != 2:
            raise DataError(f"batch['audio'] has shape {tuple(audio.shape)}; expected [B, T]")
        total, ctx = audio.shape[-1], self.context
        if total <= ctx:
            raise DataError(
                f"batch['audio'] has {total} samples but this WaveNet needs its context of "
                f"{ctx} plus at least one more; raise data.window"
            )
        history = audio[:, :-1]  # sample t-1 feeds the prediction of t
        if self.training:
            history = noisy_history(history, self.config.input_noise)
        # scalar input reads the companded value itself (what a distilled student feeds it)
        inputs = mulaw_encode(history) if self.config.input == "scalar" else quantize(history)
        targets = self.head.encode(audio[:, ctx:])
        g = self._global(batch, audio.shape[0], dropout=self.training)
        l = None
        if self.upsample is not None:
            key = self.config.local
            if key == "mel" and key not in batch:  # the window's own mel (a vocoder)
                frames = self.mel_features(audio)
            elif key not in batch:
                raise DataError(f"this WaveNet is conditioned on {key!r}; the batch lacks it")
            else:
                frames = batch[key]
            # the features of the predicted samples t
            l = self._local(frames, total, "batch", batch.get("f0_hz"), audio)[..., 1:]
        times = None  # of the predicted samples since the note's onset
        if self._needs_start:
            if "start" not in batch:
                raise DataError("this WaveNet has a note clock or an onset-phase excitation: "
                                "the batch needs each window's 'start' sample within its "
                                "example")
            start = torch.as_tensor(batch["start"], device=audio.device).reshape(-1, 1)
            times = (start + torch.arange(1, total, device=audio.device)).expand(
                audio.shape[0], -1)
        if self.config.pitch_excitation:
            exc_times = times if self.config.excitation_phase == "onset" else (
                torch.arange(total - 1, device=audio.device).expand(audio.shape[0], -1))
            exc = self._excitation(batch.get("pitch"), exc_times, random_phase=self.training)
            l = exc if l is None else torch.cat([l, exc], dim=1)
        if self.config.note_clock:
            clock = self._note_clock(times)
            l = clock if l is None else torch.cat([l, clock], dim=1)
        return self.stack(inputs, g, l, padded=False), targets

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Mean NLL in nats per predicted sample, plus bits/sample and next-code accuracy."""
        params, targets = self._params(batch)
        nll = -self.head.log_prob(params, targets).mean()
        with torch.no_grad():
            accuracy = (self.head.mode(params) == targets).float().mean()
        return {
            "loss": nll,
            "bits_per_sample": nll.detach() / math.log(2.0),
            "accuracy": accuracy,
        }

    def log_prob(self, batch: Batch) -> Tensor:
        """Log-likelihood in nats of each of the last ``T - context`` samples: [B, T - ctx]."""
        params, targets = self._params(batch)
        return self.head.log_prob(params, targets)

    def predictive_gaussian(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Teacher-forced ``(mean, log_scale)`` [B, T - ctx] of a Gaussian-head WaveNet for
        each of the last ``T - context`` samples of ``batch['audio']``, in the companded
        domain: what a distilled student is compared with. Differentiable in the audio when
        ``model.input`` is scalar."""
        if self.config.head != "gaussian":
            raise ConfigError(f"model.head={self.config.head}: only a gaussian head has a "
                              "closed-form predictive Gaussian")
        params, _ = self._params(batch)
        return self.head.gaussian(params)

    # ------------------------------------------------------------------ sampling

    def sampling_plan(
        self,
        n: int,
        length: int,
        cond: dict[str, Any] | None = None,
        prime: Tensor | None = None,
    ) -> SamplingPlan:
        """Resolve ``cond`` into the engine's inputs (see :class:`SamplingPlan`).

        The history is the prime (``cond['prime']`` [n, P] or [P] float audio; only its last
        ``context`` samples matter) left-padded with silence to ``context`` samples, so the
        network always sees a full, in-distribution receptive field. Local features
        (``cond['mel'|'roll']`` [n, C, frames]) are aligned with the first sample of the prime
        (or of the output when there is none) and must cover prime + output; the silent padding
        gets zero features.
        """
        cond = dict(cond or {})
        device = self.stack.out2.weight.device
        ctx = self.context
        prefix, user_p, kept = history_prefix(
            cond.get("prime") if prime is None else prime, n, ctx, device
        )
        g = global_vector(self.global_cond, cond, n, device)

        local = None
        if self.upsample is not None:
            key = self.config.local
            frames = cond.get(key)
            if frames is None and key == "mel" and cond.get("audio") is not None:
                # Resynthesis, as the autoencoders and MelGAN read cond['audio'].
                audio = torch.as_tensor(cond["audio"], device=device).float()
                frames = self.mel_features(audio.reshape(-1, audio.shape[-1]))
            if frames is None:
                raise ConfigError(
                    f"this WaveNet is conditioned on a {key}: pass cond[{key!r}] "
                    f"[n, {self.config.local_channels}, frames]"
                    + (" or cond['audio'] to resynthesise; from the command line, "
                       "`waveloom vocode CKPT MEL.npy`" if key == "mel" else "")
                )
            frames = torch.as_tensor(frames, device=device).float()
            if frames.dim() == 2:
                frames = frames.unsqueeze(0)
            frames = frames.expand(n, -1, -1)
            try:
                feats = self._local(frames, user_p + length, "cond", cond.get("f0_hz"))
            except DataError as err:
                raise ConfigError(str(err)) from None
            feats = feats[..., user_p - kept :]
            pad = feats.new_zeros(n, feats.shape[1], ctx - kept)
            local = torch.cat([pad, feats], dim=-1)
        channels = (EXCITATION_CHANNELS if self.config.pitch_excitation else 0) + (
            NOTE_CLOCK_CHANNELS if self.config.note_clock else 0)
        if channels:  # computed span by span as the engine reads them (LocalFeatures)
            upsampled, onset = local, ctx - user_p  # the note starts at the prime's start

            def features(lo: int, hi: int) -> Tensor:
                parts = self._clock_features(cond.get("pitch"), n, lo, hi, onset)
                if upsampled is not None:  # a block past the end: cropped to its part
                    up = upsampled[..., lo:hi]
                    parts = [up] + [part[..., : up.shape[-1]] for part in parts]
                return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

            width = channels + (0 if upsampled is None else upsampled.shape[1])
            local = LocalFeatures(n, width, ctx + length, features)
        return SamplingPlan(prefix=prefix, g=g, local=local)

    def _clock_features(self, pitch: Any, n: int, lo: int, hi: int, onset: int) -> list[Tensor]:
        """The pitch excitation and note clock of sampling-timeline positions ``lo .. hi - 1``
        (``onset``: the position where the note starts) -> [excitation [n, 2, hi - lo]],
        [clock [n, 4, hi - lo]] as configured. A random-phase excitation runs through the
        silent/primed history too, as in training windows, with phase 0 at position 0; an
        onset-phase one and the clock start at the onset."""
        device = self.stack.out2.weight.device
        positions = torch.arange(lo, hi, device=device)[None].expand(n, -1)
        times = positions - onset
        parts = []
        if self.config.pitch_excitation:
            onset_phase = self.config.excitation_phase == "onset"
            parts.append(self._excitation(pitch, times if onset_phase else positions,
                                          random_phase=False))
        if self.config.note_clock:
            parts.append(self._note_clock(times))
        return parts

    def export_spec(self) -> Any:
        """One sample with the caches as state (:mod:`waveloom.models.wavenet_step`)."""
        from waveloom.models.wavenet_step import export_spec

        return export_spec(self)

    def example_batch(self, batch_size: int, length: int, seed: int = 0) -> Batch:
        """The base random batch plus a random mel or piano roll when the model reads one."""
        batch = super().example_batch(batch_size, length, seed)
        batch["instrument"] = batch["instrument"] % self.config.num_instruments
        if self.config.local != "none":
            g = torch.Generator().manual_seed(seed + 1)
            frames = max(1, length // self.config.local_hop)
            shape = (batch_size, self.config.local_channels, frames)
            if self.config.local == "roll":
                batch["roll"] = (torch.rand(shape, generator=g) < 0.03).float()
            elif self.config.local == "mel":
                batch["mel"] = torch.randn(shape, generator=g) - 4.0
            else:
                batch[self.config.local] = torch.randn(shape, generator=g)
        if self._needs_start:  # windows from before the onset to well into the note
            g = torch.Generator().manual_seed(seed + 2)
            batch["start"] = torch.randint(-length, 4 * length, (batch_size,), generator=g)
        return batch
