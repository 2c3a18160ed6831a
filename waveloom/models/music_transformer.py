"""The Music Transformer (Huang et al. 2018): a decoder-only Transformer over performance events.

Why a family of its own: it models *symbols* (the 391-token event vocabulary of
:mod:`waveloom.data.events`), not audio, so its data kind is ``"symbolic"``: the trainer opens
a :class:`~waveloom.data.symbolic.SymbolicCache` for it and its objective
(``"token_likelihood"``) serves :class:`~waveloom.data.token_dataset.TokenWindowDataset`
windows. Relative attention (the
skewed form, :mod:`waveloom.nn.relative_attention`) lets it learn timing patterns that recur at
any absolute position. The audio is left to a renderer (docs/compose.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from waveloom.config import ModelConfig, require_positive
from waveloom.data.events import BOS, PAD, VOCAB_SIZE
from waveloom.errors import ConfigError, DataError
from waveloom.models.base import Batch, Likelihood
from waveloom.nn.relative_attention import KVCache, MusicTransformerBlock


@dataclass
class MusicTransformerConfig(ModelConfig):
    """Hyper-parameters; the defaults are a small model (see configs/music_transformer/)."""

    d_model: int = 256
    n_layers: int = 6
    n_heads: int = 8
    d_ff: int = 1024
    max_distance: int = 2048  # relative distances beyond this share the last embedding
    dropout: float = 0.1  # on the residual branches
    attention_dropout: float = 0.0  # on the attention weights: costly on a CPU, see the docs

    def validate(self) -> None:
        require_positive(self, "d_model", "n_layers", "n_heads", "d_ff", "max_distance")
        if self.d_model % self.n_heads:
            raise ConfigError(f"model.d_model={self.d_model} must be a multiple of "
                              f"model.n_heads={self.n_heads}")
        for key in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"model.{key}={getattr(self, key)} must be in [0, 1)")


class MusicTransformer(Likelihood):
    """p(e) = prod_t p(e_t | e_<t) over event tokens; ``forward(tokens [B, L]) -> logits
    [B, L, VOCAB_SIZE]``."""

    config_class: ClassVar[type[ModelConfig]] = MusicTransformerConfig
    config: MusicTransformerConfig
    #: The trainer reads this to open a SymbolicCache (not an AudioCache) for this family.
    data_kind: ClassVar[str] = "symbolic"
    length_unit: ClassVar[str] = "events"

    def __init__(self, config: MusicTransformerConfig) -> None:
        super().__init__(config)
        c = config
        self.embed = nn.Embedding(VOCAB_SIZE, c.d_model)
        self.blocks = nn.ModuleList(
            MusicTransformerBlock(c.d_model, c.n_heads, c.max_distance, c.d_ff, c.dropout,
                                  c.attention_dropout)
            for _ in range(c.n_layers))
        self.norm = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, VOCAB_SIZE)
        self.scale = c.d_model ** 0.5

    def batch_keys(self) -> tuple[str, ...]:
        return ("tokens",)

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.embed(tokens) * self.scale
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))

    def prime(self, tokens: Tensor, capacity: int | None = None
              ) -> tuple[Tensor, list[KVCache]]:
        """:meth:`forward` over ``tokens`` ``[B, L]`` that also returns one KV cache per block,
        with room for ``capacity`` positions in all (the sampler's prompt + new events)."""
        x = self.embed(tokens) * self.scale
        caches = []
        for block in self.blocks:
            x, cache = block.prime(x, capacity)
            caches.append(cache)
        return self.head(self.norm(x)), caches

    def step(self, token: Tensor, caches: list[KVCache]) -> Tensor:
        """Logits ``[B, VOCAB_SIZE]`` of the event after ``token`` ``[B]``, which is appended to
        every block's cache: O(L) per event instead of a full forward's O(L^2)."""
        x = self.embed(token[:, None]) * self.scale
        for block, cache in zip(self.blocks, caches):
            x = block.step(x, cache)
        return self.head(self.norm(x))[:, 0]

    def _nll(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """(summed NLL in nats [B], non-PAD targets [B]) of ``batch['tokens']`` [B, L + 1]."""
        if "tokens" not in batch:
            raise DataError("music_transformer batch has no 'tokens'; train it on a symbolic "
                            "corpus (waveloom.data.symbolic.build_symbolic), not an audio cache")
        tokens = batch["tokens"]
        inputs, targets = tokens[:, :-1], tokens[:, 1:]
        logits = self(inputs).float()
        nll = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=PAD,
                              reduction="none")
        keep = targets != PAD
        return (nll * keep).sum(1), keep.sum(1)

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Mean cross-entropy in nats per (non-PAD) event, plus bits per event."""
        nll, count = self._nll(batch)
        loss = nll.sum() / count.sum().clamp_min(1)
        return {"loss": loss, "bits_per_event": loss / torch.log(torch.tensor(2.0))}

    def log_prob(self, batch: Batch) -> Tensor:
        """Log-likelihood in nats of each sequence's non-PAD targets, ``[B]``."""
        return -self._nll(batch)[0]

    def example_batch(self, batch_size: int, length: int, seed: int = 0) -> Batch:
        """Random event windows ``[B, length + 1]`` starting with BOS."""
        g = torch.Generator().manual_seed(seed)
        tokens = torch.randint(0, PAD, (batch_size, length + 1), generator=g)
        tokens[:, 0] = BOS
        return {"tokens": tokens}
