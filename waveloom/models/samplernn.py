"""SampleRNN (Mehri et al. 2017, arXiv:1612.07837): tiers of RNNs at different clock rates.

p(x) = prod_t p(x_t | x_<t, h) over 256-level quantised samples, like WaveNet, but the past is
summarised by recurrent state instead of a fixed receptive field, so the context is unbounded.

Tiers, top first, for ``frame_sizes = (16, 4)``::

    tier 1: GRU over frames of 16 samples  --linear upsampler: 16/4 = 4 vectors per frame-->
    tier 2: GRU over frames of  4 samples  --linear upsampler: 4 vectors per frame (1/sample)-->
    sample-level MLP over the last 4 samples' code embeddings -> 256-way softmax

A frame tier sees the *previous* frame of its own size (the values of its codes on the
companded axis, scaled to [-1, 1]) plus the tier above's vector for this frame; its output is
turned by one linear layer into ``ratio`` vectors, one per frame of the tier below (the paper's
learnt upsampling, equal to a transposed conv with kernel = stride = ratio). The MLP predicts
sample t from the embeddings of samples t-4..t-1 and the lowest tier's vector for t. Global
conditioning (pitch, instrument) is one vector per example added to every tier's input; the
optional pitch clock (:mod:`waveloom.nn.pitch_clock`) adds sample-rate features of the
predicted samples to the MLP and, per frame, to every tier.

Training is truncated backpropagation through time (``truncated_bptt``): the trainer feeds
consecutive chunks of one file to :meth:`SampleRNN.loss_chunk` and carries the RNN state (the
whole recurrent state: the chunks overlap by one top frame, which rebuilds every input).
Generation is stateful (:class:`Stepper`): each tier runs once per frame of its own, the MLP
once per sample. The layers are :mod:`waveloom.nn.tiers`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from waveloom.config import ModelConfig, SamplingOptions, require_positive
from waveloom.errors import ConfigError, DataError
from waveloom.models.base import Batch, Likelihood
from waveloom.models.plan import check_request, draw_uniforms
from waveloom.nn.conditioning import GlobalConditioning
from waveloom.nn.heads import CategoricalHead
from waveloom.nn.pitch_clock import (
    EXCITATION_CHANNELS,
    NOTE_CLOCK_CHANNELS,
    noisy_history,
    note_clock,
    pitch_excitation,
)
from waveloom.nn.tiers import FrameTier, SampleMLP

RNNS = ("gru", "lstm")
QUANTIZATIONS = ("mulaw", "linear")
ENGINES = ("auto", "torch")
SCORE_CHUNK = 16384  # samples per pass when scoring or priming a long sequence (bounds memory)

State = tuple[Any, ...]  # one entry per frame tier: GRU h, or LSTM (h, c); each [layers, B, H]


@dataclass
class SampleRNNConfig(ModelConfig):
    """Hyper-parameters of a SampleRNN; defaults are the paper's three-tier music model."""

    frame_sizes: tuple[int, ...] = (16, 4)  # samples per frame of each frame tier, top first
    rnn: str = "gru"  # gru | lstm
    rnn_layers: int = 1
    hidden: int = 1024  # units of every frame tier (its RNN and the vectors it passes down)
    mlp_hidden: int = 1024
    mlp_layers: int = 2  # ReLU layers of the sample-level MLP before its softmax layer
    embedding_dim: int = 256  # learnt embedding of each quantised input sample (MLP input)
    quantization: str = "mulaw"  # mulaw | linear (256 levels either way)
    learn_h0: bool = True  # a learnt initial state, used at the start of every file
    num_instruments: int = 16
    pitch_conditioning: bool = False
    instrument_conditioning: bool = False
    cond_dim: int = 32  # embedding width per global label
    cond_dropout: float = 0.0  # rate at which training hides a label (teaches "unknown")
    # The pitch clock (waveloom.nn.pitch_clock), as the note WaveNets have it: sin / cos of the
    # labelled pitch's phase (0 at the note's onset, so it runs on unbroken across the windows
    # of a TBPTT sequence) and a note-on gate with decays, per sample, to the MLP and, per
    # frame, to every tier. A SampleRNN told its pitch only as an embedding drifts off it
    # (2/24 notes on pitch at 20 CPU minutes, docs/samplernn.md).
    pitch_excitation: bool = False
    note_clock: bool = False
    input_noise: float = 0.0  # noise on the input history (x its RMS); targets stay clean
    sample_rate: int = 16000  # turns MIDI pitch into a period and the clock's taus into samples

    def validate(self) -> None:
        require_positive(
            self, "rnn_layers", "hidden", "mlp_hidden", "mlp_layers", "embedding_dim",
            "num_instruments", "cond_dim", "sample_rate")
        if self.input_noise < 0:
            raise ConfigError(f"model.input_noise={self.input_noise} must be >= 0")
        sizes = list(self.frame_sizes)
        if not sizes or any(s < 1 for s in sizes):
            raise ConfigError(f"model.frame_sizes={sizes} must be one or more integers >= 1")
        for upper, lower in zip(sizes, sizes[1:]):
            if upper <= lower or upper % lower:
                raise ConfigError(
                    f"model.frame_sizes={sizes}: each frame size must be a multiple of the "
                    f"next, larger than it (e.g. [16, 4])"
                )
        for name, value, allowed in (("rnn", self.rnn, RNNS),
                                     ("quantization", self.quantization, QUANTIZATIONS)):
            if value not in allowed:
                raise ConfigError(f"model.{name}={value!r}: use one of {', '.join(allowed)}")
        if not 0.0 <= self.cond_dropout < 1.0:
            raise ConfigError(f"model.cond_dropout={self.cond_dropout} must be in [0, 1)")


class LinearCategoricalHead(CategoricalHead):
    """The 256-way softmax over *linearly* quantised samples: bin i is
    ``[-1 + i/128, -1 + (i+1)/128)``, decoded at its centre (SampleRNN's 'linear' option)."""

    def encode(self, audio: Tensor) -> Tensor:
        return ((audio.clamp(-1.0, 1.0) + 1.0) * (self.levels / 2)).floor().long().clamp_(
            0, self.levels - 1)

    def decode(self, codes: Tensor) -> Tensor:
        return (codes.float() + 0.5) * (2.0 / self.levels) - 1.0


class SampleRNN(Likelihood):
    """A (conditional) multi-tier SampleRNN trained by truncated BPTT."""

    config_class: ClassVar[type[ModelConfig]] = SampleRNNConfig
    config: SampleRNNConfig
    truncated_bptt: ClassVar[bool] = True

    def __init__(self, config: SampleRNNConfig) -> None:
        super().__init__(config)
        c = config
        self.head = CategoricalHead() if c.quantization == "mulaw" else LinearCategoricalHead()
        self.levels = self.head.levels
        self.global_cond = (
            GlobalConditioning(c.cond_dim, c.num_instruments, pitch=c.pitch_conditioning,
                               instrument=c.instrument_conditioning, dropout=c.cond_dropout)
            if c.pitch_conditioning or c.instrument_conditioning else None
        )
        g_dim = 0 if self.global_cond is None else self.global_cond.out_dim
        #: Sample-rate feature channels (the pitch clock), 0 without.
        self.local_channels = ((EXCITATION_CHANNELS if c.pitch_excitation else 0)
                               + (NOTE_CLOCK_CHANNELS if c.note_clock else 0))
        sizes = list(c.frame_sizes)
        ratios = [u // l for u, l in zip(sizes, sizes[1:])] + [sizes[-1]]
        outs = [c.hidden] * (len(sizes) - 1) + [c.mlp_hidden]
        self.tiers = nn.ModuleList(
            FrameTier(f, r, c.hidden, o, c.rnn, c.rnn_layers, g_dim, c.learn_h0,
                      self.local_channels)
            for f, r, o in zip(sizes, ratios, outs)
        )
        self.mlp = SampleMLP(sizes[-1], self.levels, c.embedding_dim, c.mlp_hidden,
                             c.mlp_layers, g_dim, self.local_channels)

    # ------------------------------------------------------------------ contract

    @property
    def context(self) -> int:
        """One top frame: the first predicted frame's top-tier input is the frame before it."""
        return self.config.frame_sizes[0]

    def conditioning_keys(self) -> tuple[str, ...]:
        keys = () if self.global_cond is None else self.global_cond.keys()
        if self.config.pitch_excitation and "pitch" not in keys:
            keys = keys + ("pitch",)
        return keys

    def batch_keys(self) -> tuple[str, ...]:
        """The conditioning, plus each window's 'start' within its example when the pitch
        clock needs to know where the note's onset lies."""
        return self.conditioning_keys() + (("start",) if self.local_channels else ())

    def _features(self, pitch: Any, start: Any, width: int) -> Tensor | None:
        """The pitch clock of the ``width`` samples after the context, ``[B, width, L]``, for
        windows whose first sample lies ``start`` [B] samples after the note's onset (negative:
        before it); None when the model has none."""
        if not self.local_channels:
            return None
        if start is None:
            raise DataError("this SampleRNN has a pitch clock: the batch needs each window's "
                            "'start' sample within its example")
        device = self._weights_device()
        start = torch.as_tensor(start, device=device).reshape(-1, 1)
        times = start + self.context + torch.arange(width, device=device)
        parts = []
        if self.config.pitch_excitation:
            pitch = None if pitch is None else torch.as_tensor(pitch, device=device)
            parts.append(pitch_excitation(pitch, times, self.config.sample_rate,
                                          random_phase=False, onset_phase=True, device=device))
        if self.config.note_clock:
            parts.append(note_clock(times, self.config.sample_rate))
        return torch.cat(parts, dim=1).transpose(1, 2)

    def _weights_device(self) -> torch.device:
        return self.mlp.out.weight.device

    def _values(self, codes: Tensor) -> Tensor:
        """Codes -> frame-tier inputs in [-1, 1] (position on the quantiser's axis)."""
        return codes.float() * (2.0 / (self.levels - 1)) - 1.0

    def _global(self, source: dict[str, Any], n: int, dropout: bool) -> Tensor | None:
        if self.global_cond is None:
            return None
        labels = {k: None if source.get(k) is None
                  else torch.as_tensor(source[k], device=self._weights_device()).long()
                  for k in ("pitch", "instrument")}
        return self.global_cond(labels["pitch"], labels["instrument"], batch=n, dropout=dropout)

    def _run(self, audio: Tensor, g: Tensor | None, state: State | None, exact: bool,
             clock: tuple[Any, Any] = (None, None)) -> tuple[Tensor, Tensor, State]:
        """Teacher-forced pass: audio [B, context + W] -> (logits [B, 256, W], target codes
        [B, W], state after the last frame).

        W must be a multiple of the top frame size when ``exact`` (the state continues at a
        frame boundary); otherwise the end is padded with silence and the padding's outputs
        (and the state, then meaningless) are dropped. ``clock`` is (pitch, start) for the
        pitch clock (:meth:`_features`). In training the input history gets
        ``model.input_noise``; the targets stay clean.
        """
        ctx, sizes = self.context, self.config.frame_sizes
        width = audio.shape[-1] - ctx
        pad = -width % ctx
        if pad and exact:
            raise DataError(
                f"a SampleRNN chunk predicts {width} samples, not a multiple of its top frame "
                f"size {ctx} (model.frame_sizes[0]); make data.window a multiple of {ctx}"
            )
        audio = F.pad(audio, (0, pad)) if pad else audio
        targets = self.head.encode(audio[:, ctx : ctx + width])
        if self.training:
            audio = noisy_history(audio, self.config.input_noise)
        codes = self.head.encode(audio)
        values, b, w = self._values(codes), audio.shape[0], width + pad
        local = self._features(*clock, w)  # [B, w, L] or None
        above, new_state = None, []
        for k, (tier, size) in enumerate(zip(self.tiers, sizes)):
            frames = values[:, ctx - size : ctx - size + w].reshape(b, w // size, size)
            loc = None if local is None else local.reshape(b, w // size, -1)
            above, s = tier(frames, above, g, None if state is None else state[k], loc)
            new_state.append(s)
        logits = self.mlp(codes[:, ctx - sizes[-1] : ctx + w - 1], above, g, local)
        return logits[..., :width], targets, tuple(new_state)

    def _checked_audio(self, batch: Batch) -> Tensor:
        audio = batch["audio"]
        if audio.dim() != 2:
            raise DataError(f"batch['audio'] has shape {tuple(audio.shape)}; expected [B, T]")
        if audio.shape[-1] <= self.context:
            raise DataError(
                f"batch['audio'] has {audio.shape[-1]} samples but this SampleRNN needs its "
                f"context of {self.context} plus at least one more; raise data.window"
            )
        return audio

    def log_prob_chunk(self, batch: Batch, state: State | None) -> tuple[Tensor, State]:
        """Log-likelihood in nats [B, T - context] of one chunk continuing from ``state``
        (None: a file's start), and the state after it (not detached)."""
        audio = self._checked_audio(batch)
        g = self._global(batch, audio.shape[0], dropout=self.training)
        logits, targets, state = self._run(audio, g, state, exact=True,
                                           clock=(batch.get("pitch"), batch.get("start")))
        return self.head.log_prob(logits, targets), state

    def loss_chunk(self, batch: Batch, state: State | None) -> tuple[dict[str, Tensor], State]:
        """:meth:`loss` of one chunk of a file continuing from ``state`` -> (losses, state)."""
        logp, state = self.log_prob_chunk(batch, state)
        nll = -logp.mean()
        return {"loss": nll, "bits_per_sample": nll.detach() / math.log(2.0)}, state

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Mean NLL in nats per predicted sample (and bits/sample), from a file's start state."""
        audio = self._checked_audio(batch)
        g = self._global(batch, audio.shape[0], dropout=self.training)
        logits, targets, _ = self._run(audio, g, None, exact=False,
                                       clock=(batch.get("pitch"), batch.get("start")))
        nll = -self.head.log_prob(logits, targets).mean()
        return {"loss": nll, "bits_per_sample": nll.detach() / math.log(2.0)}

    def _scan(self, audio: Tensor, g: Tensor | None,
              clock: tuple[Any, Any] = (None, None)) -> tuple[Tensor, State]:
        """Teacher-forced log-probs [B, T - context] of a sequence of any length from the start
        state, in passes of ~SCORE_CHUNK samples with the state carried: equal to one pass.
        ``clock`` is (pitch, the sequence's first sample's time since the onset)."""
        ctx, (pitch, first) = self.context, clock
        step = max(ctx, SCORE_CHUNK - SCORE_CHUNK % ctx)
        width, state, out = audio.shape[-1] - ctx, None, []
        for start in range(0, width, step):
            piece = audio[:, start : start + ctx + step]
            at = None if first is None else torch.as_tensor(first).reshape(-1) + start
            logits, targets, state = self._run(piece, g, state, exact=False, clock=(pitch, at))
            out.append(self.head.log_prob(logits, targets))
        return torch.cat(out, dim=1), state

    def log_prob(self, batch: Batch) -> Tensor:
        """Log-likelihood in nats of each of the last ``T - context`` samples: [B, T - ctx],
        from a file's start state; any length (long inputs are scored in state-carrying
        passes, so memory stays bounded and nothing is truncated)."""
        audio = self._checked_audio(batch)
        g = self._global(batch, audio.shape[0], dropout=self.training)
        return self._scan(audio, g, (batch.get("pitch"), batch.get("start")))[0]

    # ------------------------------------------------------------------ sampling

    def _sampling_inputs(self, n: int, cond: dict[str, Any]) -> tuple[Tensor | None, Tensor,
                                                                     State | None, int]:
        """(global vector, history codes [n, context], state, the first new sample's time
        since the note's onset) from the user's ``cond``.

        A prime (``cond['prime']`` [n, P] or [P] audio) is left-padded with silence to whole
        top frames and run teacher-forced, so sampling continues from its exact state; its
        first sample is the note's onset.
        """
        device = self._weights_device()
        g = None
        if self.global_cond is not None:
            tensors = {k: None if cond.get(k) is None else torch.as_tensor(cond[k]).long()
                       .reshape(-1) for k in ("pitch", "instrument")}
            problem = self.global_cond.check(tensors["pitch"], tensors["instrument"])
            if problem:
                raise ConfigError(f"cond: {problem}")
            for k, v in tensors.items():
                if v is not None and v.numel() not in (1, n):
                    raise ConfigError(f"cond[{k!r}] has {v.numel()} values for n={n} samples")
            g = self._global(tensors, n, dropout=False)
        ctx, prime = self.context, cond.get("prime")
        if prime is None:
            silence = self.head.encode(torch.zeros((), device=device))
            return g, silence.expand(n, ctx).contiguous(), None, 0
        prime = torch.as_tensor(prime, dtype=torch.float32, device=device)
        prime = prime.unsqueeze(0) if prime.dim() == 1 else prime
        if prime.dim() != 2 or prime.shape[0] not in (1, n) or prime.shape[1] == 0:
            raise ConfigError(f"cond['prime'] has shape {tuple(prime.shape)}; expected "
                              f"[{n}, samples]")
        pad = ctx + (-prime.shape[1] % ctx)
        audio = F.pad(prime.expand(n, -1), (pad, 0))
        _, state = self._scan(audio, g, (cond.get("pitch"), torch.full((n,), -pad)))
        return g, self.head.encode(audio[:, -ctx:]), state, prime.shape[1]

    @torch.no_grad()
    def generate(self, n: int, length: int, cond: dict[str, Any] | None = None,
                 options: SamplingOptions | None = None) -> Tensor:
        """``n`` new waveforms [n, length] in [-1, 1], continuing ``cond['prime']`` if given.

        Stateful: each tier steps once per frame of its own and the MLP once per sample, so
        nothing of the past is recomputed. The same ``options.seed`` gives identical output
        (uniforms drawn up front on the CPU, inverse-CDF draws, as for WaveNet). Engine 'auto'
        runs the C kernel on a CPU (:mod:`~waveloom.models.samplernn_kernel`, streams split
        over ``--threads``; the numpy stepper where no C compiler exists), the same codes as
        the torch stepper but for float rounding at a CDF boundary, and the torch one on a
        GPU; 'torch' always the torch one; the WaveNet engines do not apply.
        """
        options = options or SamplingOptions()
        if options.engine not in ENGINES:
            raise ConfigError(f"--engine {options.engine}: SampleRNN samples with plain torch "
                              "only; use --engine auto or torch")
        if options.weights != "float32":
            raise ConfigError(f"--weights {options.weights}: needs the WaveNet fast engine; "
                              "SampleRNN samples in float32")
        check_request(n, length, options.temperature)
        cond = dict(cond or {})
        g, history, state, first = self._sampling_inputs(n, cond)
        pitch = cond.get("pitch")
        local = self._features(None if pitch is None else torch.as_tensor(pitch).reshape(-1),
                               torch.full((n,), first - self.context),
                               length + (-length % self.context))  # whole top frames
        uniforms = draw_uniforms(options.seed, length, n, 1)
        bar = tqdm(range(length), disable=not options.progress, unit="sample", desc="sampling")
        if options.engine == "torch" or self._weights_device().type != "cpu":
            stepper = Stepper(self, g, history, state, length, local)
            uniforms = uniforms.to(self._weights_device())
            for t in bar:
                stepper.push(self.head.sample(stepper.logits(), uniforms[t],
                                              options.temperature))
            return self.head.decode(stepper.codes()).clamp(-1.0, 1.0)
        from waveloom.device import chosen_threads, cpu_cores
        from waveloom.models.samplernn_kernel import sample_codes

        codes = sample_codes(self, g, history, state, length, local,
                             uniforms[:, :, 0].numpy(), options.temperature,
                             chosen_threads() or cpu_cores(), bar.update)
        bar.close()
        codes = torch.from_numpy(codes)
        return self.head.decode(codes).clamp(-1.0, 1.0)

    def example_batch(self, batch_size: int, length: int, seed: int = 0) -> Batch:
        batch = super().example_batch(batch_size, length, seed)
        batch["instrument"] = batch["instrument"] % self.config.num_instruments
        if self.local_channels:
            g = torch.Generator().manual_seed(seed)
            batch["start"] = torch.randint(-length, 4 * length, (batch_size,), generator=g)
        return batch


class Stepper:
    """SampleRNN one sample at a time, from a history of ``context`` codes and a tier state.

    ``logits()`` gives the distribution of the next sample (running every tier whose frame
    starts here, with inputs = the codes so far), ``push(codes)`` appends the drawn (or, in
    tests, the true) codes. Time 0 is a top-frame boundary, as after :meth:`SampleRNN._run`.
    """

    def __init__(self, model: SampleRNN, g: Tensor | None, history: Tensor,
                 state: State | None, length: int, local: Tensor | None = None) -> None:
        # local: the pitch clock [n, length rounded up to whole top frames, L], or None
        self.model, self.g, self.t, self.local = model, g, 0, local
        ctx, n = model.context, history.shape[0]
        self.buf = torch.empty(n, ctx + length, dtype=torch.long, device=history.device)
        self.buf[:, :ctx] = history
        self.state = list(state) if state is not None else [None] * len(model.tiers)
        self.vectors: list[Tensor | None] = [None] * len(model.tiers)
        mlp = model.mlp
        self.table = mlp.step_table()
        self.mlp_bias = mlp.input.bias if mlp.global_proj is None else (
            mlp.input.bias + mlp.global_proj(g))
        self.g_bias = [None if tier.global_proj is None else tier.global_proj(g)
                       for tier in model.tiers]

    def logits(self) -> Tensor:
        m, t, ctx = self.model, self.t, self.model.context
        sizes = m.config.frame_sizes
        for k, (tier, size) in enumerate(zip(m.tiers, sizes)):
            if t % size == 0:
                frame = m._values(self.buf[:, ctx + t - size : ctx + t])
                above = None if k == 0 else self.vectors[k - 1][:, (t % sizes[k - 1]) // size]
                loc = None if self.local is None else self.local[:, t : t + size].reshape(
                    self.local.shape[0], -1)
                self.vectors[k], self.state[k] = tier.step(frame, above, self.g_bias[k],
                                                           self.state[k], loc)
        last = sizes[-1]
        if t % last == 0 and self.local is not None:
            # the MLP's pitch-clock term for this lowest frame's samples, once per frame
            self.vectors[-1] = self.vectors[-1] + m.mlp.local_proj(self.local[:, t : t + last])
        return m.mlp.step(self.table, self.buf[:, ctx + t - last : ctx + t],
                          self.vectors[-1][:, t % last], self.mlp_bias)

    def push(self, codes: Tensor) -> None:
        self.buf[:, self.model.context + self.t] = codes
        self.t += 1

    def codes(self) -> Tensor:
        """The pushed codes [n, t]."""
        return self.buf[:, self.model.context : self.model.context + self.t]
