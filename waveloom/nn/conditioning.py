"""Conditioning inputs: label embeddings (global) and frame-to-sample upsamplers (local).

*Global* conditioning is one vector per example ([B, G]) that every layer adds to its gates,
e.g. the note's pitch and the instrument. *Local* conditioning is a feature sequence at frame
rate (a mel spectrogram or a piano roll, [B, C, frames]) that must be brought to the sample
rate ([B, C, frames * hop]) before the network adds it at every sample.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PITCHES = 128  # MIDI 0..127


class GlobalConditioning(nn.Module):
    """Pitch and instrument labels -> one conditioning vector per example [B, G].

    Each enabled label has its own embedding table of ``dim`` columns; the vectors are
    concatenated (``out_dim = dim * #labels``), so every layer's projection can weigh pitch and
    instrument independently. A label of -1 means *unknown* and maps to a learnt extra row; with
    ``dropout > 0`` training replaces labels by -1 at that rate, which teaches the unknown row
    the label-marginal (so a user may leave a label out at generation time).
    """

    def __init__(
        self,
        dim: int,
        num_instruments: int,
        pitch: bool = True,
        instrument: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not (pitch or instrument):
            raise ValueError("GlobalConditioning needs pitch and/or instrument enabled")
        if dim <= 0 or num_instruments <= 0:
            raise ValueError(f"dim={dim} and num_instruments={num_instruments} must be > 0")
        self.num_instruments = num_instruments
        self.dropout = dropout
        # Row PITCHES (resp. num_instruments) is the "unknown" label.
        self.pitch = nn.Embedding(PITCHES + 1, dim) if pitch else None
        self.instrument = nn.Embedding(num_instruments + 1, dim) if instrument else None
        self.out_dim = dim * (int(pitch) + int(instrument))

    def keys(self) -> tuple[str, ...]:
        """Batch keys read: a subset of ('pitch', 'instrument')."""
        return tuple(k for k in ("pitch", "instrument") if getattr(self, k) is not None)

    def _lookup(
        self, table: nn.Embedding, labels: Tensor | None, batch: int, dropout: bool
    ) -> Tensor:
        unknown = table.num_embeddings - 1
        if labels is None:
            labels = torch.full((batch,), -1, dtype=torch.long, device=table.weight.device)
        labels = labels.to(table.weight.device).long().reshape(-1)
        if labels.numel() == 1 and batch > 1:
            labels = labels.expand(batch)
        if dropout and self.dropout > 0:
            drop = torch.rand(labels.shape, device=labels.device) < self.dropout
            labels = labels.masked_fill(drop, -1)
        labels = torch.where(labels < 0, torch.full_like(labels, unknown), labels)
        return table(labels)

    def forward(
        self,
        pitch: Tensor | None = None,
        instrument: Tensor | None = None,
        batch: int = 1,
        dropout: bool = False,
    ) -> Tensor:
        """``pitch`` [B] MIDI (-1 unknown), ``instrument`` [B] id (-1 unknown) -> [B, out_dim].

        A missing label is treated as unknown for all ``batch`` examples. ``dropout`` applies
        the label dropout (the training loss asks for it; sampling never does). Out-of-range labels
        raise IndexError from the embedding; user-facing code validates them first
        (:meth:`check`).
        """
        for labels in (pitch, instrument):
            if labels is not None:
                batch = max(batch, labels.numel())
        parts = []
        if self.pitch is not None:
            parts.append(self._lookup(self.pitch, pitch, batch, dropout))
        if self.instrument is not None:
            parts.append(self._lookup(self.instrument, instrument, batch, dropout))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def check(self, pitch: Tensor | None, instrument: Tensor | None) -> str | None:
        """A one-line complaint about out-of-range labels, or None if they are usable."""
        if pitch is not None and self.pitch is not None and pitch.numel():
            lo, hi = int(pitch.min()), int(pitch.max())
            if lo < -1 or hi >= PITCHES:
                return f"pitch {hi if hi >= PITCHES else lo} is not a MIDI pitch 0..127 (or -1)"
        if instrument is not None and self.instrument is not None and instrument.numel():
            lo, hi = int(instrument.min()), int(instrument.max())
            if lo < -1 or hi >= self.num_instruments:
                bad = hi if hi >= self.num_instruments else lo
                return (
                    f"instrument {bad} is outside 0..{self.num_instruments - 1} "
                    f"(model.num_instruments={self.num_instruments}; -1 means unknown)"
                )
        return None


class UpsampleConditioning(nn.Module):
    """Frame-rate features [B, C, frames] -> sample-rate features [B, C, frames * hop].

    A stack of transposed 1-D convolutions, one per factor (``hop = prod(factors)``), each with
    ``kernel_size == stride == factor`` so the output length is exact and the alignment is
    strict: **frame k conditions exactly samples [k*hop, (k+1)*hop)** and nothing else. That is
    the alignment of a piano roll (frame k = what sounds from sample k*hop on) and of a mel
    frame computed from the hop starting at k*hop; a roll onset therefore lands on the right
    sample and the upsampler adds no latency. The stack is linear (a learnt per-sub-position
    interpolation; the WaveNet's gates supply the non-linearity) and starts as nearest-neighbour
    repetition, so at initialisation every sample sees its frame's values unchanged (a leaky
    ReLU in between would distort the negative values of a log-mel).
    """

    def __init__(self, channels: int, factors: tuple[int, ...] | list[int]) -> None:
        super().__init__()
        factors = tuple(int(f) for f in factors)
        if not factors or any(f < 1 for f in factors):
            raise ValueError(f"upsample factors {factors} must be a non-empty list of ints >= 1")
        self.channels = channels
        self.factors = factors
        self.hop = math.prod(factors)
        self.layers = nn.ModuleList(
            nn.ConvTranspose1d(channels, channels, kernel_size=f, stride=f) for f in factors
        )
        with torch.no_grad():
            for layer in self.layers:
                # ConvTranspose1d weight [C_in, C_out, f]: the identity at every sub-position.
                layer.weight.copy_(torch.eye(channels).unsqueeze(-1).expand_as(layer.weight))
                layer.bias.zero_()

    def forward(self, frames: Tensor, length: int | None = None) -> Tensor:
        """``frames`` [B, C, F] -> [B, C, length] (default ``F * hop``).

        If ``length`` exceeds ``F * hop`` by less than one hop (a trailing partial frame), the
        last frame is repeated; otherwise the output is cropped to ``length``.
        """
        n_frames = frames.shape[-1]
        if length is not None:
            needed = -(-length // self.hop)
            if needed > n_frames:
                if needed - n_frames > 1:
                    raise ValueError(
                        f"{n_frames} frames cover {n_frames * self.hop} samples, "
                        f"{length} were asked for"
                    )
                frames = F.pad(frames, (0, needed - n_frames), mode="replicate")
        x = frames
        for layer in self.layers:
            x = layer(x)
        return x if length is None else x[..., :length]
