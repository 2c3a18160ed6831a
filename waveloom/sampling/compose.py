"""Composing a piece of a given length with a Music Transformer: events until S seconds.

Why not one call of :func:`waveloom.sampling.events.sample_tokens`: it draws a fixed number of
events, and how many events a second of music takes depends on the model and the piece (about
15-20 for chorales). So events are drawn in rounds, each sized from the rate measured so far,
each continuing from everything before it (the prompt is re-primed: one full pass, cheap next
to the per-event steps); the result is cut at exactly ``seconds`` (a last partial TIME_SHIFT),
and notes still sounding there end at the cut. An EOS ends a round early; the next round goes
on from the events before it, with the next seed. Same seed -> the same events.

(The symbolic ``generate`` verb has its own sampler; the two meet when the branches merge.)
"""

from __future__ import annotations

import numpy as np
import torch

from waveloom.data.events import BOS, EOS, PAD, STEP, TIME_SHIFT, VELOCITY
from waveloom.errors import ConfigError

DEFAULT_RATE = 16.0  # events per second before any is drawn (chorales: ~15-20)
MAX_ROUNDS = 8  # rounds of drawing before giving up on reaching the length
MAX_CHUNK = 4096  # events in one round at most


def _shift_steps(tokens: np.ndarray) -> np.ndarray:
    """10-ms steps each token moves time by (0 for every token but TIME_SHIFT)."""
    is_shift = (tokens >= TIME_SHIFT) & (tokens < VELOCITY)
    return np.where(is_shift, tokens - TIME_SHIFT + 1, 0)


def duration(tokens: np.ndarray) -> float:
    """Seconds the events span (the sum of their time shifts)."""
    return float(_shift_steps(np.asarray(tokens, np.int64)).sum()) * STEP


def cut_at(tokens: np.ndarray, seconds: float) -> np.ndarray:
    """``tokens`` up to exactly ``seconds``: the shift crossing it is shortened to land there,
    and nothing after it is kept (nor an event at exactly ``seconds``)."""
    tokens = np.asarray(tokens, np.int64)
    limit = int(round(seconds / STEP))
    clock = np.cumsum(_shift_steps(tokens))
    reach = np.flatnonzero(clock >= limit)
    if len(reach) == 0:
        return tokens
    i = int(reach[0])
    if clock[i] == limit:  # an event at exactly ``seconds`` belongs to what comes after
        return tokens[: i + 1]
    rest = limit - (int(clock[i - 1]) if i else 0)
    return np.concatenate([tokens[:i], [TIME_SHIFT + rest - 1] if rest > 0 else []]
                          ).astype(np.int64)


def _round(model, history: np.ndarray, length: int, seed: int, temperature: float,
           top_k: int, top_p: float) -> np.ndarray:
    """One round: ``length`` events after BOS + ``history``, cut at an EOS (PAD dropped)."""
    from waveloom.sampling.events import sample_tokens

    device = next(model.parameters()).device
    prompt = torch.from_numpy(np.concatenate([[BOS], history]).astype(np.int64))[None]
    drawn = sample_tokens(model, 1, length, top_k=top_k, top_p=top_p, temperature=temperature,
                          seed=seed, prompt=prompt.to(device))[0].cpu().numpy()
    end = np.flatnonzero(drawn == EOS)
    drawn = drawn[: int(end[0])] if len(end) else drawn
    return drawn[drawn != PAD]


def compose_tokens(model, seconds: float, prime: np.ndarray | None = None, *, seed: int = 0,
                   temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0
                   ) -> tuple[np.ndarray, list[str]]:
    """Event tokens int64 ``[T]`` spanning ``seconds`` (the ``prime`` events first), and notes
    to print (a model that keeps ending the piece early). See the module docstring."""
    if not seconds > 0:
        raise ConfigError(f"seconds={seconds}: must be > 0")
    history = np.asarray([] if prime is None else prime, np.int64)
    if duration(history) >= seconds:
        raise ConfigError(f"the prime lasts {duration(history):.1f} s, not shorter than the "
                          f"{seconds:g} s asked for; ask for more seconds or a shorter prime")
    rate = len(history) / duration(history) if duration(history) > 0 else DEFAULT_RATE
    for k in range(MAX_ROUNDS):
        need = seconds - duration(history)
        if need <= 0:
            break
        length = int(min(MAX_CHUNK, max(32, need * rate * 1.25 + 16)))
        drawn = _round(model, history, length, seed + k, temperature, top_k, top_p)
        if duration(drawn) > 0:
            rate = max(1.0, len(drawn) / duration(drawn))
        history = np.concatenate([history, drawn])
    notes = []
    if duration(history) < seconds:
        notes.append(f"the model ended the piece at {duration(history):.1f} s after "
                     f"{MAX_ROUNDS} rounds, short of {seconds:g} s")
    return cut_at(history, seconds), notes
