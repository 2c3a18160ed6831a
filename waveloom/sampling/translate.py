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
    """Audio ``[n, T]`` (the model's rate) -> ``[n, T]`` in domain ``domain``. A translator
    with ``model.f0_excitation`` also hands its decoder the input's tracked f0."""
    options = options or SamplingOptions(progress=False)
    model.eval()
    decoder = model.decoder(domain)
    audio = audio.to(next(model.parameters()).device)
    cond = {"latent": model.encode(audio)}
    f0 = model.source_f0(audio)  # the input's melody, when the decoders have a source
    if f0 is not None:
        cond["f0_hz"] = f0
    return sample(decoder, audio.shape[0], audio.shape[-1], cond, options)
