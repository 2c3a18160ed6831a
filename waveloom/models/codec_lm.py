"""A token language model over neural-codec codes (the MusicGen line, Copet et al. 2023).

A codec (:mod:`waveloom.models.codec`) turns audio into ``K`` parallel streams of codes at
its frame rate (50 Hz for strides 2 x 4 x 5 x 8 at 16 kHz). This decoder-only Transformer
predicts them, reading and writing the streams in one of the patterns of
:mod:`waveloom.data.code_patterns`:

* ``delay`` (MusicGen's choice): a step holds codebook k of frame ``s - k``; the K embeddings
  of a step are summed into one position and K heads predict the next step's K codes at once;
* ``parallel``: a step is a whole frame (the K codes of a frame cannot see each other);
* ``flattened``: one code per step (K times the steps; exact autoregression).

Conditioning (instrument, pitch) enters as the first position (a learned start vector plus
the labels' embeddings), and with ``cond_every_step`` is also added to every step's input; in
training it is replaced by a learned "no label" embedding with
probability ``cond_dropout``, so one model gives both p(x | c) and p(x), which is what
classifier-free guidance mixes at sampling (:mod:`waveloom.sampling.codec_lm`). The attention
is the Music Transformer's relative attention (:mod:`waveloom.nn.relative_attention`):
motifs recur at any frame, and its KV cache makes a step O(L).

Training data is a code cache (``waveloom encode-codes CODEC --data CACHE``; stored as in
:mod:`waveloom.data.codec_codes`). ``data.window`` is in stored codes: a window of ``W``
holds ``(W + 1) // K - 1`` whole frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from waveloom.config import ModelConfig, require_positive
from waveloom.data import code_patterns
from waveloom.data.codec_codes import check_fits, frames_from_stored
from waveloom.data.prepare import SCALE
from waveloom.errors import ConfigError, DataError
from waveloom.models.base import Batch, Likelihood
from waveloom.nn.relative_attention import KVCache, MusicTransformerBlock

NO_PITCH = 128  # the pitch embedding's "no label" row (MIDI pitches are 0..127)


@dataclass
class CodecLMConfig(ModelConfig):
    """Hyper-parameters; the defaults are a small LM over a 12 x 1024 codec."""

    n_q: int = 12  # codebooks the LM models (the codec's first n_q: its bitrate)
    codebook_size: int = 1024
    pattern: str = "delay"
    d_model: int = 256
    n_layers: int = 6
    n_heads: int = 8
    d_ff: int = 1024
    max_distance: int = 512  # steps; farther share the last relative embedding
    dropout: float = 0.1
    instrument_conditioning: bool = True
    pitch_conditioning: bool = True
    num_instruments: int = 16
    cond_dropout: float = 0.15  # classifier-free guidance's share of unconditioned examples
    #: Add the labels' vector to every step's input too, not only the first position: a
    #: prefix alone is one key among hundreds that attention must keep finding, and the
    #: notes' pitch drifted a semitone (docs/codec_lm.md, session 29).
    cond_every_step: bool = False
    frame_rate: float = 50.0  # codec frames per second (for --seconds)
    context_frames: int = 250  # frames a sampling window holds (longer: windowed continuation)
    codec: str = ""  # the codec checkpoint that decodes the codes (generate needs it)
    codec_fingerprint: str = ""  # its codebooks' hash: another codec is refused

    def validate(self) -> None:
        require_positive(self, "n_q", "codebook_size", "d_model", "n_layers", "n_heads", "d_ff",
                         "max_distance", "num_instruments", "frame_rate", "context_frames")
        code_patterns.steps(self.pattern, 1, 1)  # a bad pattern name fails here
        check_fits(self.n_q, self.codebook_size)
        if self.d_model % self.n_heads:
            raise ConfigError(f"model.d_model={self.d_model} must be a multiple of "
                              f"model.n_heads={self.n_heads}")
        for key in ("dropout", "cond_dropout"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"model.{key}={getattr(self, key)} must be in [0, 1)")
        if self.context_frames < 2:
            raise ConfigError("model.context_frames must be >= 2 (windowed continuation keeps "
                              "half of it)")

    def adopt_cache(self, info: dict, root: object) -> None:
        """Refuse a cache that is not codes of a codec of this shape (before training starts);
        record the codec that wrote it in ``codec`` when unset (``generate`` decodes with it)."""
        codec = (info.get("codes") or {}).get("codec")
        if not codec:
            raise ConfigError(f"{root}: not a codec code cache; make one with `waveloom "
                              "encode-codes CODEC --data CACHE --out CODES`")
        for key in ("n_q", "codebook_size"):
            if int(codec[key]) != int(getattr(self, key)):
                raise ConfigError(f"{root} holds codes of a codec with {key}={codec[key]}; "
                                  f"pass model.{key}={codec[key]}")
        if abs(float(codec["frame_rate"]) - self.frame_rate) > 1e-6:
            raise ConfigError(f"{root}: the codec runs at {codec['frame_rate']} frames/s; pass "
                              f"model.frame_rate={codec['frame_rate']}")
        if not self.codec:
            self.codec = str(codec["checkpoint"])
        if not self.codec_fingerprint:
            self.codec_fingerprint = str(codec["fingerprint"])


class CodecLM(Likelihood):
    """p(codes | labels) = prod_s p(step_s | steps_<s, labels); ``forward(tokens [B, S', S],
    cond [B, D]) -> logits [B, S', S, C]`` (S' streams per step: K, or 1 when flattened)."""

    config_class: ClassVar[type[ModelConfig]] = CodecLMConfig
    config: CodecLMConfig
    #: Its samples are codes; audio needs the codec too (waveloom.sampling.codec_lm).
    generates_audio: ClassVar[bool] = False
    #: What ``generate`` draws: codes that the codec of ``config.codec`` decodes.
    output_kind: ClassVar[str] = "codec_codes"
    length_unit: ClassVar[str] = "frames"

    def __init__(self, config: CodecLMConfig) -> None:
        super().__init__(config)
        c = config
        self.vocab = c.codebook_size + 1  # the codes and the pad (no code / delay ramp)
        self.embed = nn.Embedding(c.n_q * self.vocab, c.d_model)
        self.start = nn.Parameter(torch.zeros(c.d_model))
        self.instrument = (nn.Embedding(c.num_instruments + 1, c.d_model)
                           if c.instrument_conditioning else None)
        self.pitch = nn.Embedding(NO_PITCH + 1, c.d_model) if c.pitch_conditioning else None
        self.blocks = nn.ModuleList(
            MusicTransformerBlock(c.d_model, c.n_heads, c.max_distance, c.d_ff, c.dropout)
            for _ in range(c.n_layers))
        self.norm = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.n_q * c.codebook_size)

    # ------------------------------------------------------------------ layout

    @property
    def pad(self) -> int:
        return int(self.config.codebook_size)

    @property
    def streams(self) -> int:
        return 1 if self.config.pattern == "flattened" else int(self.config.n_q)

    def conditioning_keys(self) -> tuple[str, ...]:
        keys = ("instrument",) if self.instrument is not None else ()
        return keys + (("pitch",) if self.pitch is not None else ())

    def frames_in(self, window: int) -> int:
        """Whole frames a window of ``window`` stored codes always holds."""
        return (window + 1) // self.config.n_q - 1

    def _codebooks(self, first_step: int, steps: int, device: torch.device) -> Tensor:
        """The codebook of each (stream, step) ``[S', S]``: stream k, or step mod K."""
        k = self.config.n_q
        if self.config.pattern == "flattened":
            return ((first_step + torch.arange(steps, device=device)) % k)[None]
        return torch.arange(k, device=device)[:, None].expand(k, steps)

    # ------------------------------------------------------------------ network

    def condition(self, instrument: Tensor | None, pitch: Tensor | None, batch: int,
                  drop: Tensor | None = None) -> Tensor:
        """The first position's input ``[B, D]``: start vector + label embeddings; a missing
        label (None, or negative: unknown in the cache) and ``drop`` [B] bool use "no label"."""
        device = self.start.device
        out = self.start.expand(batch, -1)
        for table, labels, null in ((self.instrument, instrument, self.config.num_instruments),
                                    (self.pitch, pitch, NO_PITCH)):
            if table is None:
                continue
            ids = torch.full((batch,), null, device=device, dtype=torch.long)
            if labels is not None:
                labels = torch.as_tensor(labels, device=device).long().expand(batch)
                if int(labels.max()) > null - 1:
                    raise ConfigError(f"label {int(labels.max())} is out of range: this model "
                                      f"knows 0..{null - 1}")
                ids = torch.where(labels >= 0, labels, ids)
            if drop is not None:
                ids = ids.masked_fill(drop, null)
            out = out + table(ids)
        return out

    def _embed_steps(self, tokens: Tensor, first_step: int, cond: Tensor | None = None
                     ) -> Tensor:
        """Tokens ``[B, S', S]`` -> summed embeddings ``[B, S, D]`` (plus ``cond`` ``[B, D]``
        on every step when the model conditions every step)."""
        ids = self._codebooks(first_step, tokens.shape[-1], tokens.device) * self.vocab + tokens
        x = self.embed(ids).sum(1)
        if self.config.cond_every_step:
            if cond is None:
                raise ConfigError("this codec LM conditions every step: pass its condition "
                                  "vector to step()")
            x = x + cond[:, None]
        return x

    def _logits(self, h: Tensor, first_step: int) -> Tensor:
        """Hidden states ``[B, S, D]`` predicting steps ``first_step..`` -> ``[B, S', S, C]``."""
        b, s, _ = h.shape
        c = self.config
        out = self.head(self.norm(h)).view(b, s, c.n_q, c.codebook_size).transpose(1, 2)
        if c.pattern != "flattened":
            return out
        which = self._codebooks(first_step, s, h.device)[0]  # [S]
        index = which.view(1, 1, s, 1).expand(b, 1, s, c.codebook_size)
        return out.gather(1, index)

    def forward(self, tokens: Tensor, cond: Tensor) -> Tensor:
        """Logits of every step of ``tokens`` ``[B, S', S]`` from ``cond`` and the steps
        before it (teacher forcing): ``[B, S', S, C]``."""
        x = torch.cat([cond[:, None], self._embed_steps(tokens[..., :-1], 0, cond)], 1)
        for block in self.blocks:
            x = block(x)
        return self._logits(x, 0)

    def prime(self, tokens: Tensor, cond: Tensor, capacity: int
              ) -> tuple[Tensor, list[KVCache]]:
        """The logits ``[B, S', C]`` of step ``P`` after ``cond`` and ``tokens`` ``[B, S', P]``
        (P may be 0), and the KV caches (room for ``capacity`` positions)."""
        x = torch.cat([cond[:, None], self._embed_steps(tokens, 0, cond)], 1)
        caches = []
        for block in self.blocks:
            x, cache = block.prime(x, capacity)
            caches.append(cache)
        return self._logits(x[:, -1:], tokens.shape[-1])[:, :, 0], caches

    def step(self, tokens: Tensor, step: int, caches: list[KVCache],
             cond: Tensor | None = None) -> Tensor:
        """Append step ``step``'s tokens ``[B, S']``; return step ``step + 1``'s logits
        (``cond`` ``[B, D]``, the one given to :meth:`prime`, is needed when the model
        conditions every step)."""
        x = self._embed_steps(tokens[..., None], step, cond)
        for block, cache in zip(self.blocks, caches):
            x = block.step(x, cache)
        return self._logits(x, step + 1)[:, :, 0]

    # ------------------------------------------------------------------ training

    def _tokens(self, batch: Batch) -> Tensor:
        """The batch's windows (code-cache floats ``[B, W]``) -> pattern tokens [B, S', S]."""
        audio = batch["audio"]
        if audio.dim() != 2:
            raise DataError(f"batch['audio'] has shape {tuple(audio.shape)}; expected [B, W]")
        if audio.numel() and float(audio.min()) < 0:
            raise DataError("the batch holds negative values: it is audio, not a code cache "
                            "(make one with `waveloom encode-codes CODEC --data CACHE`)")
        raw = torch.round(audio.float() * SCALE).long()
        frames = self.frames_in(audio.shape[-1])
        if frames < 1:
            raise DataError(f"data.window={audio.shape[-1]} holds no whole frame of "
                            f"{self.config.n_q} codebooks; raise data.window")
        codes = frames_from_stored(raw, self.config.n_q, self.config.codebook_size, frames)
        return code_patterns.apply(codes, self.config.pattern, self.pad)

    def _nll(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """(NLL in nats ``[B, S', S]``, keep mask) of the batch's codes (pads left out)."""
        tokens = self._tokens(batch)
        b = tokens.shape[0]
        drop = None
        if self.training and self.config.cond_dropout > 0:
            drop = torch.rand(b, device=tokens.device) < self.config.cond_dropout
        cond = self.condition(batch.get("instrument"), batch.get("pitch"), b, drop)
        logits = self(tokens, cond).float()
        keep = tokens != self.pad
        nll = F.cross_entropy(logits.permute(0, 3, 1, 2), tokens.clamp(max=self.pad - 1),
                              reduction="none")
        return nll * keep, keep

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Mean cross-entropy in nats per (non-pad) code, plus bits per code."""
        nll, keep = self._nll(batch)
        loss = nll.sum() / keep.sum().clamp_min(1)
        return {"loss": loss, "bits_per_code": loss.detach() / math.log(2.0)}

    def log_prob(self, batch: Batch) -> Tensor:
        """Log-likelihood in nats of each predicted code ``[B, S' x S]`` (pads score 0)."""
        nll, _ = self._nll(batch)
        return -nll.flatten(1)

    def example_batch(self, batch_size: int, length: int, seed: int = 0) -> Batch:
        """Random tagged codes ``[B, length]`` (windows start mid-frame, the first example
        with a few "no code" values), as a code cache serves them."""
        from waveloom.data.codec_codes import stored_from_codes

        g = torch.Generator().manual_seed(seed)
        k, c = self.config.n_q, self.config.codebook_size
        frames = length // k + 2
        rows = []
        for _ in range(batch_size):
            codes = torch.randint(0, c, (k, frames), generator=g)
            stored = torch.from_numpy(stored_from_codes(codes, c).astype("int64"))
            start = int(torch.randint(0, k, (1,), generator=g))
            rows.append(stored[start:start + length])
        raw = torch.stack(rows)
        raw[0, : min(3, length)] = 0
        return {"audio": raw.float() / SCALE,
                "pitch": torch.randint(24, 96, (batch_size,), generator=g),
                "instrument": torch.randint(0, self.config.num_instruments, (batch_size,),
                                            generator=g)}
