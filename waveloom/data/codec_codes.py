"""K-codebook codec codes stored in an ordinary one-channel cache, and read back as frames.

Why not a new cache kind: the trainer, the windowing, the splits, the labels, DDP and resume all
work on a prepared cache of int16 "samples" (:mod:`waveloom.data.prepare`), and ADA codes
already live there (:mod:`waveloom.models.codes`). A codec frame holds ``K`` codes, so the
frames are stored one after another, codebook-major within a frame (the ``flattened``
pattern), at ``frame_rate x K`` "samples" per second, each code *tagged* with its codebook:

    stored = 1 + k * C + code        (k in 0..K-1, code in 0..C-1; 0 = no code)

The tag is what makes a window readable: the trainer cuts windows at any sample, so a window
usually starts inside a frame; the first stored value says which codebook it is, hence where
the next frame starts (:func:`frames_from_stored`). ``K x C`` must fit int16: 32 codebooks of
1024 at most.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from waveloom.data.prepare import SCALE
from waveloom.errors import DataError


def check_fits(n_q: int, codebook_size: int) -> None:
    """Refuse a codec whose tagged codes would overflow int16."""
    if n_q * codebook_size >= SCALE:
        raise DataError(f"{n_q} codebooks of {codebook_size} do not fit a code cache "
                        f"(n_q x codebook_size must be < {SCALE})")


def stored_from_codes(codes: Tensor | np.ndarray, codebook_size: int) -> np.ndarray:
    """Codes ``[K, T]`` (ints in ``[0, C)``) -> tagged int16 ``[T * K]``, frame after frame."""
    codes = torch.as_tensor(codes).long()
    k = codes.shape[0]
    check_fits(k, codebook_size)
    tags = torch.arange(k)[:, None] * codebook_size
    return (1 + tags + codes).T.reshape(-1).numpy().astype("<i2")


def frames_from_stored(raw: Tensor, n_q: int, codebook_size: int, frames: int) -> Tensor:
    """Tagged windows ``[B, W]`` (long, 0 = no code) -> codes ``[B, K, frames]`` long, with
    ``codebook_size`` (the pad id) where there is no code.

    Each row is realigned on its first whole frame (rows may start at different codebooks);
    ``W >= (frames + 1) * K - 1`` guarantees ``frames`` whole frames after it. Raises
    :class:`DataError` for values a codec of this shape cannot have written.
    """
    b, width = raw.shape
    k, c = n_q, codebook_size
    if width < (frames + 1) * k - 1:
        raise DataError(f"a window of {width} codes holds fewer than {frames} whole frames of "
                        f"{k} codebooks; raise data.window to at least {(frames + 1) * k - 1}")
    if raw.numel() and (int(raw.min()) < 0 or int(raw.max()) > k * c):
        raise DataError(f"the batch holds values outside 0..{k * c}: not a code cache of a "
                        f"{k} x {c} codec (re-run `waveloom encode-codes` with its codec)")
    tag = torch.where(raw > 0, (raw - 1) // c, torch.zeros_like(raw))
    position = torch.arange(width, device=raw.device).expand(b, width)
    first = torch.where(raw > 0, position, torch.full_like(position, width)).min(1).values
    first_tag = tag.gather(1, first.clamp(max=width - 1)[:, None])[:, 0]
    phase = torch.where(first < width, (first - first_tag) % k, torch.zeros_like(first))
    index = phase[:, None] + torch.arange(frames * k, device=raw.device)
    picked = raw.gather(1, index).view(b, frames, k).transpose(1, 2)
    expected_tag = torch.arange(k, device=raw.device)[None, :, None]
    code = (picked - 1) - expected_tag * c
    valid = (picked > 0) & (code >= 0) & (code < c)
    if bool(((picked > 0) & ~valid).any()):
        raise DataError("a frame of the batch mixes codebooks: the cache was not written "
                        "frame by frame by `waveloom encode-codes` (or n_q is wrong)")
    return torch.where(valid, code, torch.full_like(code, c))
