"""An interpolated Witten-Bell n-gram over event tokens: the yardstick for a symbolic model's NLL.

Why: bits per event mean little alone. An n-gram (n = 1..5) fitted on the same train split and
scored on the same held-out events says how much of the model's gain is short-range statistics
(a 5-gram sees ~0.3 s of a chorale) and how much is longer structure.

Why Witten-Bell and not Kneser-Ney: both interpolate every order down to a uniform floor, so no
event ever has zero probability; Witten-Bell needs only counts and type counts per context
(no discount to tune, no continuation counts), and on a 391-token vocabulary with ~200k
training events the two are close. The recursion, for context h and its shortened h':

    P(w | h) = (c(h, w) + T(h) P(w | h')) / (c(h) + T(h))   if c(h) > 0, else P(w | h')
    P(w | ()) = (c(w) + T() / V) / (N + T())                  (interpolated with uniform 1/V)

with T(h) the number of distinct events seen after h. Each level is a proper distribution, so
the probabilities over the vocabulary sum to 1 (tested). A piece is framed as the Music
Transformer sees it: ``n - 1`` BOS tokens of context before its first event; EOS is not scored.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from waveloom.data.events import BOS, VOCAB_SIZE
from waveloom.errors import ConfigError


class WittenBell:
    """Counts of every order 1..``order`` (``order`` = n of the n-gram) over event tokens."""

    def __init__(self, order: int, vocab_size: int = VOCAB_SIZE) -> None:
        if not 1 <= order <= 8:
            raise ConfigError(f"n-gram order {order}: must be 1..8")
        self.order, self.vocab_size = int(order), int(vocab_size)
        # counts[k][context of length k][event] for k = 0 .. order - 1
        self.counts: list[dict[tuple, dict[int, int]]] = [
            defaultdict(lambda: defaultdict(int)) for _ in range(self.order)]
        self._totals: list[dict[tuple, tuple[int, int]]] = [{} for _ in range(self.order)]

    def fit(self, pieces: Iterable[np.ndarray]) -> WittenBell:
        """Count every event of every piece (int tokens ``[T]``) after its contexts."""
        for piece in pieces:
            seq = [BOS] * (self.order - 1) + [int(t) for t in piece]
            for i in range(self.order - 1, len(seq)):
                for k in range(self.order):
                    self.counts[k][tuple(seq[i - k : i])][seq[i]] += 1
        self._totals = [{h: (sum(c.values()), len(c)) for h, c in level.items()}
                        for level in self.counts]
        return self

    def _n(self, order: int | None) -> int:
        n = self.order if order is None else int(order)
        if not 1 <= n <= self.order:
            raise ConfigError(f"n-gram order {n}: this model was counted up to {self.order}")
        return n

    def prob(self, context: tuple, event: int, order: int | None = None) -> float:
        """P(event | the last ``n - 1`` tokens of ``context``), n = ``order`` (default: all
        the orders counted; a lower n uses only the lower counts: the same numbers as an
        n-gram fitted on its own, since a level's counts do not depend on the higher ones)."""
        n = self._n(order)
        context = tuple(context)[max(0, len(context) - (n - 1)) :] if n > 1 else ()
        p = 1.0 / self.vocab_size
        for k in range(len(context) + 1):  # from the empty context up to the longest
            h = context[len(context) - k :]
            total = self._totals[k].get(h)
            if total is None:
                continue  # unseen context: keep the lower order's estimate
            count, types = total
            p = (self.counts[k][h].get(event, 0) + types * p) / (count + types)
        return p

    def distribution(self, context: tuple, order: int | None = None) -> np.ndarray:
        """float64 ``[V]``: P(w | context) for every event w (sums to 1)."""
        return np.array([self.prob(context, w, order) for w in range(self.vocab_size)])

    def bits(self, pieces: Iterable[np.ndarray], order: int | None = None) -> tuple[float, int]:
        """(total bits, events scored) over whole pieces, each framed by BOS context."""
        n = self._n(order)
        total, count = 0.0, 0
        for piece in pieces:
            seq = [BOS] * (n - 1) + [int(t) for t in piece]
            for i in range(n - 1, len(seq)):
                total -= math.log2(self.prob(tuple(seq[i - n + 1 : i]), seq[i], n))
                count += 1
        return total, count


def ngram_bits_per_event(train: Iterable[np.ndarray], held_out: list[np.ndarray],
                         orders: Iterable[int] = (1, 2, 3, 4, 5)) -> dict[int, float]:
    """Bits per event on ``held_out`` of a Witten-Bell n-gram fitted on ``train``, per n (one
    count of the highest order serves them all)."""
    orders = [int(n) for n in orders]
    model = WittenBell(max(orders)).fit(train)
    result = {}
    for n in orders:
        bits, count = model.bits(held_out, n)
        result[n] = bits / max(count, 1)
    return result
