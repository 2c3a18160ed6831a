"""Bits per event of a symbolic model over whole held-out pieces, every event scored once.

Why windows: the model was trained on windows of ``context`` events and its relative
attention is only trained at distances below that, so a piece longer than ``context`` is
scored in overlapping windows instead of one long pass.

Policy (:func:`window_plan`): the sequence is ``[BOS] + piece``; the targets are the piece's
events (EOS is not scored, as for the n-gram). The first window feeds positions
``[0, context)`` and scores all its ``context`` targets; each next window starts ``stride``
later (default ``context // 2``) and scores only the targets the previous one did not, so every
event is scored exactly once and, after the first window, with at least ``context - stride``
events of context.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from waveloom.data.events import BOS, PAD
from waveloom.errors import ConfigError


def window_plan(length: int, context: int, stride: int) -> list[tuple[int, int, int]]:
    """Windows ``(start, first, end)`` over a sequence of ``length`` targets: the window feeds
    inputs ``[start, end)`` (input i predicts target i, the token at i + 1) and scores targets
    ``[first, end)``. Every target in ``[0, length)`` is scored by exactly one window."""
    if context < 1 or not 1 <= stride <= context:
        raise ConfigError(f"context={context}, stride={stride}: need 1 <= stride <= context")
    plan, end = [], 0
    while end < length:
        start = 0 if not plan else plan[-1][0] + stride
        first, end = end, min(start + context, length)
        plan.append((start, first, end))
    return plan


@torch.no_grad()
def event_bits(model, pieces: Iterable[np.ndarray], context: int, stride: int | None = None,
               batch_size: int = 16, device: torch.device | str = "cpu") -> tuple[float, int]:
    """(total bits, events scored) of ``model`` (logits ``[B, L, V]`` from tokens ``[B, L]``)
    over whole ``pieces`` (int tokens ``[T]`` each), windows as the module docstring says."""
    stride = stride or max(1, context // 2)
    rows: list[tuple[np.ndarray, np.ndarray, int, int]] = []
    for piece in pieces:
        seq = np.concatenate([[BOS], np.asarray(piece, np.int64)])
        for start, first, end in window_plan(len(seq) - 1, context, stride):
            rows.append((seq[start:end], seq[start + 1 : end + 1], first - start, end - start))
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for i in range(0, len(rows), batch_size):
            bits, n = _batch_bits(model, rows[i : i + batch_size], device)
            total, count = total + bits, count + n
    finally:
        model.train(was_training)
    return total, count


def _batch_bits(model, rows, device) -> tuple[float, int]:
    """Bits of the scored targets of ``rows`` (inputs, targets, first, end), padded together."""
    width = max(len(r[0]) for r in rows)
    inputs = torch.full((len(rows), width), PAD, dtype=torch.long)
    targets = torch.full((len(rows), width), PAD, dtype=torch.long)
    for j, (x, y, first, end) in enumerate(rows):
        inputs[j, : len(x)] = torch.from_numpy(x)
        targets[j, first:end] = torch.from_numpy(y[first:end])
    logits = model(inputs.to(device)).double()
    nll = F.cross_entropy(logits.transpose(1, 2), targets.to(device), ignore_index=PAD,
                          reduction="sum")
    return float(nll) / float(np.log(2.0)), int((targets != PAD).sum())


def symbolic_nll_report(model, cache, split: str, context: int, train_split: str = "train",
                        orders: Iterable[int] = (1, 2, 3, 4, 5), device="cpu",
                        max_pieces: int | None = None) -> dict:
    """The model's bits per event on ``split`` of a SymbolicCache beside Witten-Bell n-grams
    fitted on ``train_split`` (the same events): a JSON-ready dict."""
    from waveloom.errors import DataError
    from waveloom.evaluate.ngram import ngram_bits_per_event

    indices = list(cache.split_indices(split))[:max_pieces]
    if not indices:
        raise DataError(f"{cache.root}: split {split!r} has no pieces; splits: train, valid, "
                        "test (waveloom data symbolic)")
    pieces = [cache.piece(i) for i in indices]
    bits, count = event_bits(model, pieces, context, device=device)
    train = (cache.piece(i) for i in cache.split_indices(train_split))
    return {"split": split, "pieces": len(pieces), "events": count, "context": context,
            "stride": max(1, context // 2), "bits_per_event": bits / max(count, 1),
            "ngram_bits_per_event": ngram_bits_per_event(train, pieces, orders)}
