"""Composing a piece of a given length with a Music Transformer: events until S seconds.

The events come from :func:`waveloom.sampling.events.compose_events`, the one sampler of the
symbolic families (KV cache, top-k / top-p / temperature), which stops a piece once its time
shifts reach ``seconds``. What this module adds for ``waveloom compose``: a piece the model ends
early (an EOS) is continued from everything before it, with the next seed, up to
:data:`MAX_ROUNDS` times; and the result is cut at exactly ``seconds`` (the last TIME_SHIFT
shortened), so notes still sounding there end at the cut. Same seed -> the same events.
"""

from __future__ import annotations

import numpy as np

from waveloom.data.events import STEP, TIME_SHIFT, VELOCITY
from waveloom.errors import ConfigError

MAX_ROUNDS = 8  # pieces ended early (EOS) are continued at most this often


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
    from waveloom.sampling.events import compose_events

    for k in range(MAX_ROUNDS):
        need = seconds - duration(history)
        if need <= 0:
            break
        history = compose_events(model, need, history, temperature, top_k, top_p, seed + k)[0]
    notes = []
    if duration(history) < seconds:
        notes.append(f"the model ended the piece at {duration(history):.1f} s after "
                     f"{MAX_ROUNDS} rounds, short of {seconds:g} s")
    return cut_at(history, seconds), notes
