"""Drawing performance events from a Music Transformer, on its KV caches.

Why a sampler of its own: the audio engines (``sampling.sample``) step a WaveNet-like stack
sample by sample; an event model instead primes one KV cache per block on its prompt
(``model.prime``) and then costs one cached step per event (``model.step``). Filtering is the
usual top-k / nucleus (top-p) / temperature; ``temperature=0`` is greedy (argmax), which the
tests use to check the cached path against full forwards.

:func:`compose_events` is the call for whole pieces (``waveloom generate`` on a symbolic
checkpoint, ``waveloom compose``): a length in seconds or events, an optional MIDI prime, one
token array per piece.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from torch import Tensor

from waveloom.data.events import BOS, EOS, PAD, STEP, TIME_SHIFT, VELOCITY
from waveloom.errors import ConfigError


def _check(n: int, length: int, top_k: int, top_p: float, temperature: float) -> None:
    if n <= 0 or length <= 0:
        raise ConfigError(f"n={n}, length={length}: both must be > 0 (sequences, events)")
    if top_k < 0:
        raise ConfigError(f"top_k={top_k}: must be >= 0 (0 keeps every event)")
    if not 0.0 < top_p <= 1.0:
        raise ConfigError(f"top_p={top_p}: must be in (0, 1] (1 keeps every event)")
    if temperature < 0:
        raise ConfigError(f"temperature={temperature}: must be >= 0 (0 is greedy)")


def filtered(logits: Tensor, top_k: int, top_p: float) -> Tensor:
    """``logits`` ``[B, V]`` with every event outside the top ``top_k`` (0: all) and outside
    the smallest set of probability mass >= ``top_p`` set to -inf (the best is always kept)."""
    if top_k:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        ordered, order = torch.sort(logits, dim=-1, descending=True)
        mass = torch.softmax(ordered, -1).cumsum(-1)
        drop = mass - torch.softmax(ordered, -1) >= top_p  # mass *before* each event
        logits = logits.scatter(-1, order, ordered.masked_fill(drop, float("-inf")))
    return logits


def draw(logits: Tensor, temperature: float, generator: torch.Generator) -> Tensor:
    """One token per row of ``logits`` ``[B, V]`` at ``temperature`` (0: the argmax)."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, -1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def _stream(model, prompt: Tensor, capacity: int, top_k: int, top_p: float,
            temperature: float, generator: torch.Generator):
    """Yield ``(token [n], done [n])`` one event at a time after ``prompt`` ``[n, P]`` (the
    caches hold ``capacity`` positions); a sequence that emitted EOS yields PAD from then on.
    The caller puts the model in eval mode and stops after at most ``capacity - P`` events."""
    logits, caches = model.prime(prompt, capacity)
    logits = logits[:, -1]
    done = torch.zeros(prompt.shape[0], dtype=torch.bool, device=prompt.device)
    while True:
        token = draw(filtered(logits, top_k, top_p), temperature, generator)
        token = token.masked_fill(done, PAD)
        done = done | (token == EOS)
        yield token, done
        logits = model.step(token, caches)


@torch.no_grad()
def sample_tokens(model, n: int, length: int, top_k: int = 0, top_p: float = 1.0,
                  temperature: float = 1.0, seed: int = 0,
                  prompt: Tensor | None = None) -> Tensor:
    """``n`` event sequences ``[n, length]`` (int64) drawn after ``prompt`` ``[n, P]`` (default
    a lone BOS). A sequence that emits EOS is PAD from then on. Same seed -> same events."""
    _check(n, length, top_k, top_p, temperature)
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(int(seed))
    if prompt is None:
        prompt = torch.full((n, 1), BOS, dtype=torch.long, device=device)
    prompt = prompt.to(device)
    was_training = model.training
    model.eval()
    try:
        stream = _stream(model, prompt, prompt.shape[1] + length, top_k, top_p, temperature,
                         generator)
        out = [token for token, _ in itertools.islice(stream, length)]
    finally:
        model.train(was_training)
    return torch.stack(out, 1)


#: Events drawn per second asked for, at most, when a model never reaches the time asked:
#: 4 chorale voices make ~10 events a second, fast piano ~100; 200 bounds a model that
#: emits no time shifts.
MAX_EVENTS_PER_SECOND = 200


def _seconds_of(token: Tensor) -> Tensor:
    """Seconds each token ``[n]`` moves time on (0 for all but TIME_SHIFT)."""
    shift = (token >= TIME_SHIFT) & (token < VELOCITY)
    return torch.where(shift, (token - TIME_SHIFT + 1).double() * STEP, 0.0)


@torch.no_grad()
def compose_events(model, seconds: float | None = 30.0, prime=None, temperature: float = 1.0,
                   top_k: int = 0, top_p: float = 1.0, seed: int = 0, *, n: int = 1,
                   events: int | None = None) -> list[np.ndarray]:
    """``n`` pieces of event tokens from a symbolic model (``model.prime`` / ``model.step``).

    Args:
        model: a symbolic family (e.g. ``music_transformer``), on any device.
        seconds: stop a piece once its new TIME_SHIFTs add up to this (s); None: use ``events``.
        prime: tokens ``[P]`` (e.g. ``midi_to_events(path)``) that the pieces continue, or None.
        temperature: > 0 softens (> 1) or sharpens (< 1) the distribution; 0 is greedy.
        top_k: keep the k likeliest events (0: all); top_p: the nucleus of this mass (1: all).
        seed: the same seed (and arguments) gives the same tokens, bitwise.
        n: pieces drawn together in one batch; events: stop after this many new events
            (with ``seconds`` too, whichever comes first).

    Returns one int64 array per piece: the prime's events, then the new ones up to (not
    including) an EOS, no BOS/PAD; :func:`waveloom.data.events.events_to_midi` makes it MIDI.
    """
    if seconds is None and events is None:
        raise ConfigError("compose_events: give seconds or events (how long a piece is)")
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"seconds={seconds}: must be a finite number > 0")
    limit = events if events is not None else math.ceil(seconds * MAX_EVENTS_PER_SECOND)
    _check(n, limit, top_k, top_p, temperature)
    device = next(model.parameters()).device
    head = np.asarray([] if prime is None else prime, np.int64).reshape(-1)
    prompt = torch.as_tensor(np.concatenate([[BOS], head]), device=device).repeat(n, 1)
    generator = torch.Generator(device).manual_seed(int(seed))
    was_training, out = model.training, []
    elapsed = torch.zeros(n, dtype=torch.float64, device=device)
    model.eval()
    try:
        stream = _stream(model, prompt, prompt.shape[1] + limit, top_k, top_p, temperature,
                         generator)
        stopped = torch.zeros(n, dtype=torch.bool, device=device)
        for token, done in itertools.islice(stream, limit):
            token = token.masked_fill(stopped, PAD)  # a finished piece draws on, unkept
            out.append(token)
            elapsed += _seconds_of(token)
            stopped = stopped | done
            if seconds is not None:
                stopped = stopped | (elapsed >= seconds - 1e-9)
            if bool(stopped.all()):
                break
    finally:
        model.train(was_training)
    return [np.concatenate([head, _trimmed(row)]) for row in torch.stack(out, 1).cpu()]


def _trimmed(row: Tensor) -> np.ndarray:
    """New tokens ``[T]`` of one piece up to (not including) its EOS, PAD dropped."""
    tokens = row.numpy()
    ends = np.flatnonzero(tokens == EOS)
    tokens = tokens[: ends[0]] if len(ends) else tokens
    return tokens[tokens != PAD].astype(np.int64)
