"""``waveloom encode | decode`` with a codec checkpoint: discrete codes as files.

* encode: ``NAME.npy`` (int16 ``[k, frames]``: k codebooks, one frame per ``hop`` samples) and
  ``NAME.json`` (which codec wrote it: its codebooks' fingerprint, hop, rate, bandwidth);
* decode: ``NAME.wav`` and a spectrogram ``NAME.png`` per code file; codes whose sidecar names
  another codec, or whose shape or values this codec cannot read, are refused in one line.

Why a sidecar: an ``.npy`` of ints fits any codec with as many codebooks, and decoding another
codec's codes gives noise without an error. The fingerprint is a hash of the codebooks, so two
checkpoints of one config trained apart still differ.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from waveloom.errors import DataError


def fingerprint(model: Any) -> str:
    """12 hex digits of SHA-1 over the codec's codebook tensors."""
    digest = hashlib.sha1()
    for name, tensor in sorted(model.generator.quantizer.state_dict().items()):
        if name.endswith("embed"):
            digest.update(tensor.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()[:12]


def encode_to_files(model: Any, run: Any, clips: list[tuple[Path, str, torch.Tensor]],
                    out: Path, bandwidth: float | None) -> list[Path]:
    """Each (source, stem, audio [T]) -> ``out/stem.npy`` (int16 [k, frames]) + ``.json``."""
    k = model.codebooks_for(bandwidth)
    info = {"codec": fingerprint(model), "hop": model.hop,
            "sample_rate": run.data.sample_rate, "codebooks": k,
            "bandwidth_kbps": model.config.bandwidths()[k - 1]}
    written = []
    out.mkdir(parents=True, exist_ok=True)
    for source, stem, audio in clips:
        codes = model.encode(audio[None], bandwidth)[0].cpu().numpy().astype(np.int16)
        target = out / f"{stem}.npy"
        np.save(target, codes)
        target.with_suffix(".json").write_text(
            json.dumps({**info, "source": str(source), "samples": int(audio.shape[-1])}) + "\n")
        written.append(target)
    return written


def check_codes(model: Any, path: Path, codes: np.ndarray) -> torch.Tensor:
    """The codes of ``path`` as int64 [1, k, frames] (or [n, k, frames]) for this codec, or a
    one-line DataError: a sidecar naming another codec, a shape or values it cannot read."""
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        try:
            meta = json.loads(sidecar.read_text())
        except (OSError, json.JSONDecodeError):
            meta = {}
        if meta.get("codec") not in (None, fingerprint(model)):
            raise DataError(f"{path}: codes of another codec ({meta.get('codec')}; this one is "
                            f"{fingerprint(model)}): decode with the checkpoint that wrote them")
    if not np.issubdtype(codes.dtype, np.integer):
        raise DataError(f"{path}: holds {codes.dtype} values; codec codes are integers "
                        "(write them with `waveloom encode CODEC.safetensors ...`)")
    z = torch.from_numpy(codes.astype(np.int64))
    z = z[None] if z.dim() == 2 else z
    c = model.config
    if z.dim() != 3 or not 1 <= z.shape[1] <= c.n_q or z.shape[2] < 1:
        raise DataError(f"{path}: codes of shape {tuple(codes.shape)}; this codec reads "
                        f"[k <= {c.n_q}, frames] (or [n, k, frames])")
    if int(z.min()) < 0 or int(z.max()) >= c.codebook_size:
        raise DataError(f"{path}: code values outside 0..{c.codebook_size - 1}: codes of "
                        "another codec?")
    return z
