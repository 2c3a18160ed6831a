"""Held-out NLL per event of a Music Transformer beside n-gram baselines (issue #23 part 2).

Both models score the same events: every piece of ``--split`` framed ``BOS tokens EOS``, every
token after BOS scored once.

* The Music Transformer reads windows of its training length ``L`` (``data.window``) with a
  stride of ``L / 2``: the first window scores all its tokens, each later one only its second
  half, so every scored token has at least ``L / 2`` tokens of context (or the whole piece so
  far).
* The n-grams (orders 1..5) are interpolated Witten-Bell models over the 391 tokens, counted on
  the ``train`` split and backing off to the uniform distribution, so every token has a
  probability above zero and every context's distribution sums to one (tested).

    python benchmarks/symbolic_nll.py runs/mt-chorales/model.safetensors cache/sym-chorales

Prints bits per event for the model and each n-gram on ``valid`` and ``test``.
"""

from __future__ import annotations

import argparse
import math
from collections import Counter, defaultdict

import numpy as np
import torch

from waveloom.data.events import BOS, EOS, VOCAB_SIZE
from waveloom.data.symbolic import SymbolicCache


def framed(cache: SymbolicCache, split: str) -> list[np.ndarray]:
    return [np.concatenate([[BOS], cache.piece(int(i)), [EOS]]) for i in
            cache.split_indices(split)]


class WittenBell:
    """Interpolated Witten-Bell n-gram of order ``n`` over ``VOCAB_SIZE`` tokens."""

    def __init__(self, pieces: list[np.ndarray], n: int):
        self.n = n
        self.counts: dict[tuple, Counter] = defaultdict(Counter)
        for piece in pieces:
            seq = [int(t) for t in piece]
            for i in range(1, len(seq)):
                for k in range(n):  # context lengths 0 .. n-1
                    if i - k < 0:
                        break
                    self.counts[tuple(seq[i - k : i])][seq[i]] += 1

    def prob(self, context: tuple, token: int) -> float:
        p = 1.0 / VOCAB_SIZE
        for k in range(min(len(context), self.n - 1) + 1):
            h = context[len(context) - k :] if k else ()
            c = self.counts.get(h)
            if not c:
                break
            total, types = sum(c.values()), len(c)
            p = (c[token] + types * p) / (total + types)
        return p

    def bits(self, pieces: list[np.ndarray]) -> tuple[float, int]:
        total, count = 0.0, 0
        for piece in pieces:
            seq = [int(t) for t in piece]
            for i in range(1, len(seq)):
                total -= math.log2(self.prob(tuple(seq[max(0, i - self.n + 1) : i]), seq[i]))
                count += 1
        return total / count, count


@torch.no_grad()
def model_bits(model, pieces: list[np.ndarray], window: int) -> tuple[float, int]:
    total, count, half = 0.0, 0, window // 2
    for piece in pieces:
        t = torch.as_tensor(piece)
        for start in range(0, max(len(piece) - 1, 1), half):
            chunk = t[start : start + window + 1][None]
            nll = -torch.log_softmax(model(chunk[:, :-1]).float(), -1).gather(
                -1, chunk[:, 1:, None])[0, :, 0]
            keep = nll if start == 0 else nll[half:]
            total += float(keep.sum()) / math.log(2)
            count += len(keep)
            if start + window + 1 >= len(piece):
                break
    return total / count, count


def main(argv: list[str] | None = None) -> int:
    from waveloom.models.load import load_checkpoint

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("corpus")
    ap.add_argument("--splits", default="valid,test")
    ap.add_argument("--max-order", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cache = SymbolicCache(args.corpus)
    model, run = load_checkpoint(args.checkpoint)
    train = framed(cache, "train")
    grams = {n: WittenBell(train, n) for n in range(1, args.max_order + 1)}
    splits = args.splits.split(",")
    print("| model | " + " | ".join(f"{s} bits/event" for s in splits) + " |")
    print("|---|" + "---:|" * len(splits))
    rows = {"Music Transformer": [model_bits(model.eval(), framed(cache, s),
                                            run.data.window) for s in splits]}
    for n, gram in grams.items():
        rows[f"{n}-gram (Witten-Bell)"] = [gram.bits(framed(cache, s)) for s in splits]
    for name, cells in rows.items():
        print(f"| {name} | " + " | ".join(f"{b:.3f} ({c} events)" for b, c in cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
