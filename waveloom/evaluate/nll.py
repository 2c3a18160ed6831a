"""Negative log-likelihood in bits per sample, next to general-purpose compressors.

A likelihood model *is* a compressor (arithmetic coding turns -log2 p into bits), so the honest
yardstick for its NLL is what FLAC and xz need for the very same 8-bit mu-law stream. If the
model cannot beat xz, it has not learnt much about audio.

NLL is teacher-forced over whole examples: each example is scored in chunks of ``chunk`` samples,
each chunk preceded by the model's full receptive field (zeros before the start of the example),
so the result equals one pass over the whole example with no truncation of context. A
recurrent model (``truncated_bptt``) carries its whole past in its state, so each of its
examples is scored in one ``log_prob`` call (the model bounds its own memory) from the start.
"""

from __future__ import annotations

import io
import lzma
import math
import sys
from collections.abc import Iterable

import numpy as np
import soundfile as sf
import torch
from tqdm.auto import tqdm

from waveloom.audio.mulaw import quantize
from waveloom.errors import DataError


@torch.no_grad()
def model_nll_bits(
    model,
    clips: Iterable[np.ndarray],
    *,
    chunk: int = 16000,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    cond: Iterable[dict[str, int]] | None = None,
    total: int | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """Total and per-sample NLL (bits) of ``model`` over ``clips`` (float32 [T] arrays).

    ``cond`` yields each clip's scalar conditioning (e.g. ``{'pitch': 60, 'instrument': 3}``).
    """
    context = int(model.context)
    keys = model.batch_keys()
    if getattr(model, "truncated_bptt", False):
        chunk = sys.maxsize  # one chunk per clip: restarting a recurrent state would truncate
    pending: list[tuple[np.ndarray, dict[str, int]]] = []
    total_nats, total_samples = 0.0, 0
    cond_iter = iter(cond) if cond is not None else None

    def flush() -> None:
        nonlocal total_nats, total_samples
        if not pending:
            return
        audio = torch.from_numpy(np.stack([p[0] for p in pending])).to(device)
        batch = {"audio": audio}
        for key in keys:
            if key in ("mel", "roll"):
                raise NotImplementedError(
                    f"NLL over cache clips with {key!r} conditioning is not wired yet"
                )
            batch[key] = torch.tensor([p[1].get(key, -1) for p in pending], device=device)
        logp = model.log_prob(batch)  # [B, chunk] nats
        total_nats += float(-logp.double().sum())
        total_samples += logp.numel()
        pending.clear()

    bar = tqdm(total=total, desc="nll", unit="clip", disable=not progress)
    for clip in clips:
        c = next(cond_iter) if cond_iter is not None else {}
        padded = np.concatenate([np.zeros(context, np.float32), clip.astype(np.float32)])
        n_chunks = math.ceil(len(clip) / chunk)
        for k in range(n_chunks):
            start = k * chunk
            piece = padded[start : start + context + chunk]
            c_k = {**c, "start": start - context}  # window start within the clip
            if len(piece) < context + chunk:  # the last, short chunk: score it alone
                flush()
                audio = torch.from_numpy(piece[None]).to(device)
                batch = {"audio": audio}
                for key in keys:
                    batch[key] = torch.tensor([c_k.get(key, -1)], device=device)
                logp = model.log_prob(batch)
                total_nats += float(-logp.double().sum())
                total_samples += logp.numel()
                continue
            pending.append((piece, c_k))
            if len(pending) == batch_size:
                flush()
        bar.update(1)
    flush()
    bar.close()
    if not math.isfinite(total_nats):  # NaN/inf weights or inputs: say so, not a JSON error
        raise DataError(f"nll: the model's log-likelihood is {total_nats}, not finite; its "
                        "weights or the clips hold NaN/inf (use an earlier checkpoint)")
    bits = total_nats / math.log(2)
    return {
        "bits_per_sample": bits / max(1, total_samples),
        "total_bits": bits,
        "samples": total_samples,
    }


def compressor_bits(clips: Iterable[np.ndarray], sample_rate: int) -> dict[str, float]:
    """Bits per sample that FLAC (level 8) and xz (preset 9e) need for the 8-bit mu-law codes.

    All clips are concatenated into one stream per compressor, so container headers are paid
    once, which is the compressors' best case.
    """
    codes = np.concatenate([quantize(c).astype(np.int16) - 128 for c in clips]).astype(np.int8)
    n = len(codes)
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", samplerate=sample_rate, channels=1, format="FLAC",
                      subtype="PCM_S8") as f:
        f.write(codes.astype(np.int16) * 256)  # int16 carrier; the file stores 8-bit samples
    flac_bits = len(buf.getvalue()) * 8
    xz_bits = len(lzma.compress(codes.tobytes(), preset=9 | lzma.PRESET_EXTREME)) * 8
    return {
        "raw_bits_per_sample": 8.0,
        "flac_bits_per_sample": flac_bits / max(1, n),
        "xz_bits_per_sample": xz_bits / max(1, n),
        "samples": n,
    }


def code_compressor_bits(codes: Iterable[np.ndarray]) -> dict[str, float]:
    """Bits per code that xz (preset 9e) needs for a code stream (ints ``[T]`` per example,
    all concatenated, one byte per code when they fit, else two): the general-purpose
    baseline for a prior over learnt codes, as FLAC/xz on mu-law are for a waveform model."""
    stream = np.concatenate([np.asarray(c, dtype=np.int64) for c in codes])
    width = np.uint8 if stream.size == 0 or stream.max() < 256 else np.uint16
    raw = stream.astype(width).tobytes()
    xz_bits = len(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME)) * 8
    n = max(1, len(stream))
    return {"raw_bits_per_sample": 8.0 * np.dtype(width).itemsize,
            "xz_bits_per_sample": xz_bits / n, "samples": len(stream)}

