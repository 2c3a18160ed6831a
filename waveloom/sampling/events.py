"""Drawing performance events from a Music Transformer, on its KV caches.

Why a sampler of its own: the audio engines (``sampling.sample``) step a WaveNet-like stack
sample by sample; an event model instead primes one KV cache per block on its prompt
(``model.prime``) and then costs one cached step per event (``model.step``). Filtering is the
usual top-k / nucleus (top-p) / temperature; ``temperature=0`` is greedy (argmax), which the
tests use to check the cached path against full forwards.
"""

from __future__ import annotations

import torch
from torch import Tensor

from waveloom.data.events import BOS, EOS, PAD
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


def _draw(logits: Tensor, temperature: float, generator: torch.Generator) -> Tensor:
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, -1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


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
    was_training = model.training
    model.eval()
    try:
        logits, caches = model.prime(prompt.to(device), prompt.shape[1] + length)
        logits, out = logits[:, -1], []
        done = torch.zeros(n, dtype=torch.bool, device=device)
        for _ in range(length):
            token = _draw(filtered(logits, top_k, top_p), temperature, generator)
            token = token.masked_fill(done, PAD)
            out.append(token)
            done |= token == EOS
            logits = model.step(token, caches)
    finally:
        model.train(was_training)
    return torch.stack(out, 1)
