"""Sequences of discrete codes as training data, and the head that predicts them.

A level of a hierarchy (:mod:`waveloom.models.ada`) turns audio into codes; the next level up
and the prior (:mod:`waveloom.models.code_prior`) are trained on those codes. Rather than a
second data pipeline, codes are stored in an ordinary prepared cache (``waveloom
encode-codes``): the int16 "sample" ``s`` holds code ``s - 1`` and 0 means *no code* (what the
cache reads before an example's start or past its end). ``data.sample_rate`` of such a cache is
the code rate (audio rate / hop), so the trainer, the windowing, DDP and resume work unchanged.

A model reading codes maps 0 to a *pad token* (index K, one past the last code): its history
before a piece starts is pad tokens in training and in sampling alike, and pad targets are left
out of the loss.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from waveloom.data.prepare import SCALE
from waveloom.errors import DataError
from waveloom.nn.heads import CategoricalHead

MAX_CODEBOOK = SCALE - 1  # int16 stores code + 1


def codes_to_samples(codes: Tensor | np.ndarray) -> Tensor:
    """Codes ``[..., T]`` long -> the float "audio" a code cache holds: ``(code + 1) / SCALE``."""
    codes = torch.as_tensor(codes).long()
    return (codes + 1).float() / SCALE


def tokens_from_samples(audio: Tensor, codebook_size: int) -> Tensor:
    """Code-cache values ``[B, T]`` float -> tokens ``[B, T]`` long: codes, and ``K`` for pad.

    Raises :class:`DataError` when the cache holds a code the model does not know (a cache
    encoded by a level with a larger codebook)."""
    raw = torch.round(audio.float() * SCALE).long()
    if raw.numel() and int(raw.max()) > codebook_size:
        raise DataError(
            f"the batch holds code {int(raw.max()) - 1} but this model reads "
            f"{codebook_size} codes; set model.input_codebook (or codebook_size) to the "
            "codebook size of the level that encoded the cache"
        )
    if raw.numel() and int(raw.min()) < 0:
        raise DataError("the batch holds negative values: it is audio, not a code cache "
                        "(make one with `waveloom encode-codes`)")
    return torch.where(raw > 0, raw - 1, torch.full_like(raw, codebook_size))


def random_code_samples(batch: int, length: int, codebook_size: int, seed: int) -> Tensor:
    """A random code-cache batch ``[batch, length]`` (for tests and ``example_batch``):
    random codes, the first few positions of the first example pad."""
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, codebook_size, (batch, length), generator=g)
    samples = codes_to_samples(codes)
    samples[0, : min(4, length)] = 0.0
    return samples


class CodeHead(CategoricalHead):
    """A K-way softmax whose output space is the codes themselves (no mu-law).

    ``encode``/``decode``/``input_codes`` are identities, so the sampling engines (which read
    ``levels`` and ``input_codes``) draw codes and feed them straight back as tokens.
    """

    def __init__(self, codebook_size: int) -> None:
        super().__init__()
        self.levels = codebook_size
        self.num_params = codebook_size

    def encode(self, audio: Tensor) -> Tensor:
        return audio.long()

    def decode(self, codes: Tensor) -> Tensor:
        return codes

    def input_codes(self, codes: Tensor) -> Tensor:
        return codes


def masked_nll(log_probs: Tensor, targets: Tensor, pad: int) -> tuple[Tensor, Tensor]:
    """Mean negative log-likelihood over non-pad targets -> (nll, number of scored targets).

    ``log_probs`` [B, T] are the head's log-probabilities of ``targets`` [B, T] (pad targets
    having been clamped to a valid code first)."""
    keep = (targets != pad).float()
    count = keep.sum()
    return -(log_probs * keep).sum() / count.clamp(min=1.0), count
