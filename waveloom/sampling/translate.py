"""Translating audio into another domain with a :class:`~waveloom.models.translator.Translator`:
encode it, then sample the target domain's WaveNet decoder conditioned on the latent, on any
of the WaveNet engines (the fast C engine on a CPU; several clips are one batch)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from waveloom.config import SamplingOptions
from waveloom.sampling.sample import sample


@torch.no_grad()
def translate(model: Any, audio: Tensor, domain: int,
              options: SamplingOptions | None = None) -> Tensor:
    """Audio ``[n, T]`` (the model's rate) -> ``[n, T]`` in domain ``domain``."""
    options = options or SamplingOptions(progress=False)
    model.eval()
    decoder = model.decoder(domain)
    z = model.encode(audio.to(next(model.parameters()).device))
    return sample(decoder, audio.shape[0], audio.shape[-1], {"latent": z}, options)
