"""What the autoencoder families share: frame-rate codes and where ``generate`` gets them.

An autoencoder here maps audio [B, T] to codes [B, D, ceil(T / hop)] (frame ``k`` summarises
samples ``[k*hop, (k+1)*hop)``) and back. ``generate`` is the contract's way in for the trainer,
``waveloom generate`` and ``evaluate``; for a model without a prior it decodes, in order of
preference,

1. ``cond['embedding']`` [n, D, frames] (or [D, frames], shared by all n): a given code;
2. ``cond['audio']`` [n, T] (or [T]): a reconstruction of that audio;
3. a code drawn from the Gaussian fitted to the training codes (:class:`~waveloom.nn.encoder.
   CodeStatistics`), held constant over time: an "average" note for the given labels.

A decoder that continues audio (``cond['prime']``, ``waveloom generate --prime``; the NSynth
AE) decodes :meth:`CodeAutoencoder.continued_codes`: the prime's own code, then its last whole
frame held.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from waveloom.errors import ConfigError
from waveloom.models.base import Autoencoder
from waveloom.nn.encoder import CodeStatistics


class CodeAutoencoder(Autoencoder):
    """Base of the autoencoder families: ``hop``, ``embedding_dim`` and code statistics.

    Subclasses set ``self.code_stats = CodeStatistics(embedding_dim)`` and implement
    ``encode`` / ``decode``; they call :meth:`track_codes` on training batches.
    """

    code_stats: CodeStatistics

    @property
    def hop(self) -> int:
        """Samples per code frame."""
        return int(self.config.hop)

    @property
    def embedding_dim(self) -> int:
        return int(self.config.embedding_dim)

    def frames_for(self, length: int) -> int:
        """Code frames covering ``length`` samples: ``ceil(length / hop)``."""
        return -(-int(length) // self.hop)

    def track_codes(self, z: Tensor) -> None:
        """Fold training codes into the statistics ``generate`` draws from (training only)."""
        if self.training:
            self.code_stats.update(z)

    def check_codes(self, z: Any, n: int | None = None, where: str = "embedding") -> Tensor:
        """A code array -> float tensor [n, D, frames] on the model's device, or a one-line
        :class:`ConfigError` naming the expected shape."""
        device = self.code_stats.mean.device
        z = torch.as_tensor(z, dtype=torch.float32, device=device)
        shape = tuple(z.shape)
        if z.dim() == 2:
            z = z.unsqueeze(0)
        d = self.embedding_dim
        if z.dim() != 3 or z.shape[1] != d or z.shape[2] < 1:
            raise ConfigError(
                f"{where} has shape {shape}; this model's codes are [{d}, frames] "
                f"(or [n, {d}, frames])"
            )
        if n is not None:
            if z.shape[0] not in (1, n):
                raise ConfigError(f"{where} holds {z.shape[0]} codes for n={n} outputs")
            z = z.expand(n, -1, -1)
        if not torch.isfinite(z).all():
            raise ConfigError(f"{where} contains NaN or infinite values")
        return z

    def codes_for(
        self, n: int, length: int, cond: dict[str, Any] | None, seed: int | None
    ) -> Tensor:
        """The codes [n, D, frames] that ``generate`` decodes (see the module docstring)."""
        cond = cond or {}
        if cond.get("embedding") is not None:
            return self.check_codes(cond["embedding"], n, "cond['embedding']")
        if cond.get("audio") is not None:
            return self._encoded(cond["audio"], n, "audio")[1].expand(n, -1, -1)
        return self.code_stats.sample(n, self.frames_for(length), seed)

    def _encoded(self, audio: Any, n: int, key: str) -> tuple[Tensor, Tensor]:
        """``cond[key]`` audio [n or 1, T] (or [T]) -> (the audio [., T], its codes [., D, F]),
        or a one-line :class:`ConfigError` naming the key and the shape expected."""
        audio = torch.as_tensor(audio, dtype=torch.float32)
        audio = audio.unsqueeze(0) if audio.dim() == 1 else audio
        if audio.dim() != 2 or audio.shape[0] not in (1, n) or audio.shape[-1] == 0:
            raise ConfigError(f"cond['{key}'] has shape {tuple(audio.shape)}; expected "
                              f"[{n}, samples]")
        with torch.no_grad():
            return audio, self.encode(audio.to(self.code_stats.mean.device))

    def continued_codes(self, n: int, length: int, prime: Any) -> Tensor:
        """Codes [n, D, frames] for continuing ``prime`` [n or 1, P] (or [P]) by ``length``
        samples, aligned with the prime's first sample: the prime's own code, then its last
        whole frame held to the end (a note continued keeps the timbre it had; the partial
        last frame averages the prime's end with zero padding, so it is not the one held)."""
        audio, z = self._encoded(prime, n, "prime")
        whole = max(0, audio.shape[-1] // self.hop - 1)
        extra = max(0, self.frames_for(audio.shape[-1] + length) - z.shape[-1])
        z = torch.cat([z, z[..., whole : whole + 1].expand(-1, -1, extra)], dim=-1)
        return z.expand(n, -1, -1)
