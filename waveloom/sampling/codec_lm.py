"""Sampling a codec token LM (:mod:`waveloom.models.codec_lm`): KV cache, classifier-free
guidance, top-k / top-p / temperature, continuation of a prime and windowed long outputs.

Guidance (Ho & Salimans 2022, as MusicGen uses it): the batch is run twice in one pass, with
the labels and with "no label"; the logits drawn from are ``u + cfg * (c - u)``. ``cfg = 1``
is the conditional model alone (one pass); larger values trade variety for adherence.

A piece longer than the model's ``context_frames`` is made window by window: each window is
primed with the last half of the one before (its codes, re-read through a fresh cache), so
memory and the cost per step stay bounded at any length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from waveloom.data import code_patterns
from waveloom.errors import ConfigError
from waveloom.sampling.events import draw, filtered

UNKNOWN = -1  # a code still to draw (known codes: the prime; pads: the delay's ramps)


@dataclass
class CodeSampling:
    """How to draw: ``cfg`` guidance scale (1: off), ``temperature`` (0: greedy), ``top_k``
    (0: all), ``top_p`` (1: all), ``seed``, ``progress`` (a tqdm bar over frames)."""

    cfg: float = 1.0
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    progress: bool = False

    def check(self, model: Any) -> None:
        if self.cfg < 0:
            raise ConfigError(f"--cfg {self.cfg}: must be >= 0 (1 is unguided)")
        if self.cfg != 1.0 and not model.conditioning_keys():
            raise ConfigError(f"--cfg {self.cfg}: this model takes no labels, so there is "
                              "nothing to guide; leave --cfg at 1")
        if self.temperature < 0 or self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ConfigError(f"temperature={self.temperature}, top_k={self.top_k}, "
                              f"top_p={self.top_p}: need >= 0, >= 0 and (0, 1]")


def _conditions(model: Any, n: int, cond: dict[str, Any], guided: bool) -> Tensor:
    """First-position inputs ``[n]`` (conditional), then ``[n]`` unconditional when guided."""
    c = model.condition(cond.get("instrument"), cond.get("pitch"), n)
    if not guided:
        return c
    null = model.condition(None, None, n)
    return torch.cat([c, null])


def _fill(model: Any, known: Tensor, cond: Tensor, opts: CodeSampling,
          generator: torch.Generator) -> Tensor:
    """Codes ``[n, K, T]`` with :data:`UNKNOWN` where a code is to be drawn -> all drawn."""
    n, k, _ = known.shape
    guided = opts.cfg != 1.0
    tokens = code_patterns.apply(known, model.config.pattern, model.pad)
    steps = tokens.shape[-1]
    unknown = (tokens == UNKNOWN).any(1)  # [n, S]
    first = int(unknown.float().argmax(1).min()) if bool(unknown.any()) else steps
    reps = 2 if guided else 1
    logits, caches = model.prime(tokens[..., :first].repeat(reps, 1, 1), cond, steps + 1)
    for s in range(first, steps):
        if guided:
            c, u = logits.chunk(2)
            logits = u + opts.cfg * (c - u)
        rows = filtered(logits.reshape(-1, logits.shape[-1]).float(), opts.top_k, opts.top_p)
        drawn = draw(rows, opts.temperature, generator).view(n, -1)
        column = tokens[..., s]
        tokens[..., s] = torch.where(column == UNKNOWN, drawn, column)
        if s + 1 < steps:
            logits = model.step(tokens[..., s].repeat(reps, 1), s, caches, cond)
    return code_patterns.revert(tokens, model.config.pattern, k)


@torch.no_grad()
def sample_codes(model: Any, n: int, frames: int, cond: dict[str, Any] | None = None,
                 prime: Tensor | None = None, options: CodeSampling | None = None) -> Tensor:
    """``n`` code sequences ``[n, K, P + frames]``: the prime's ``P`` frames (codes ``[n or 1,
    K, P]``), then ``frames`` drawn ones, labels ``cond`` (``instrument``, ``pitch``: ints or
    ``[n]``), drawn as ``options`` says. Deterministic for a seed."""
    opts = options or CodeSampling()
    opts.check(model)
    if n < 1 or frames < 1:
        raise ConfigError(f"n={n}, frames={frames}: both must be >= 1")
    k, device = model.config.n_q, model.start.device
    known = torch.full((n, k, frames), UNKNOWN, dtype=torch.long, device=device)
    if prime is not None:
        prime = torch.as_tensor(prime, device=device).long()
        if prime.dim() != 3 or prime.shape[1] != k or prime.shape[0] not in (1, n):
            raise ConfigError(f"prime codes of shape {tuple(prime.shape)}: expected "
                              f"[{n}, {k}, frames] from this LM's codec")
        known = torch.cat([prime.expand(n, -1, -1), known], 2)
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=device).manual_seed(int(opts.seed))
    cond_vec = _conditions(model, n, dict(cond or {}), opts.cfg != 1.0)
    window = int(model.config.context_frames)
    bar = tqdm(total=frames, unit="frame", desc="codes", disable=not opts.progress)
    try:
        out = _windows(model, known, cond_vec, opts, generator, bar, window)
    finally:
        bar.close()
        model.train(was_training)
    return out


def _windows(model: Any, known: Tensor, cond: Tensor, opts: CodeSampling,
             generator: torch.Generator, bar: Any, window: int) -> Tensor:
    """Fill ``known`` window by window (each primed by the last half of the one before)."""
    total = known.shape[-1]
    done = int((known != UNKNOWN).all(1).all(0).long().cumprod(0).sum())  # the prime's frames
    keep = window // 2
    while done < total:
        lo = max(0, min(done - keep, total - window))  # as much context as a window holds
        hi = min(total, lo + window)
        known[..., lo:hi] = _fill(model, known[..., lo:hi].clone(), cond, opts, generator)
        bar.update(hi - done)
        done = hi
    return known


@torch.no_grad()
def decode_codes(codec: Any, codes: Tensor, chunk_frames: int = 500) -> Tensor:
    """Codes ``[n, K, F]`` -> audio ``[n, F x hop]`` in [-1, 1], decoded ``chunk_frames`` at a
    time through the codec's streaming decoder (equal to offline; memory bounded at any F)."""
    from waveloom.models.codec import CodecStream

    stream = CodecStream(codec)
    pieces = [stream.decode(codes[..., lo:lo + chunk_frames])
              for lo in range(0, codes.shape[-1], chunk_frames)]
    return torch.cat(pieces, -1).clamp(-1, 1)
