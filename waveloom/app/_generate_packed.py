"""``waveloom generate`` on a packed WaveNet, without importing torch: which requests qualify,
where packs are cached, and packing on the first command.

Why: a 10-s clip of the shipped note WaveNet took 3.8-4.4 s as a whole command on 2 cores,
of which ``import torch`` was 1.4-2.0 s and loading and packing the model ~0.5 s, while the
fast engine's loop ran ~1.5 s (issue 21: 3x real time). The loop never needed torch: it runs
a packed copy of the weights on the C kernel (:mod:`waveloom.sampling.packed_notes`). So the
first ``generate`` of a checkpoint on the fast engine packs it (with torch) and keeps the pack
in the cache (``$WAVELOOM_CACHE`` or ``~/.cache/waveloom``, ``packed/``), keyed by the
checkpoint's path, size and modification time, the ``--weights`` precision and the built
kernel; every later one finds it and draws without importing torch (plots included: their
STFT is numpy, :mod:`waveloom.audio.mel_scale`). The command that packs draws from the pack
too, so both write the same samples for a seed (``tests/test_generate_packed.py``).

Qualifies: a ``.safetensors`` plain note WaveNet on the fast engine (``--engine auto|fast``)
on the CPU, on the C kernel, without ``--prime``. Anything else (a mel or roll WaveNet, a GPU,
numba, ``--engine torch``) takes the torch path unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path
from typing import Any

from waveloom.sampling.packed import PACK_VERSION
from waveloom.sampling.packed_notes import Packed


def packable_request(args: argparse.Namespace) -> bool:
    """Whether the flags ask for what a packed model can draw (before the model is read):
    a ``.safetensors`` WaveNet on the fast engine on the CPU, unprimed."""
    if getattr(args, "list", False) or args.out is None:
        return False
    if Path(str(args.checkpoint)).suffix != ".safetensors":
        return False
    flags = ("prime", "interpolate", "cfg", "events")
    if any(getattr(args, name, None) is not None for name in flags):
        return False
    if getattr(args, "engine", "auto") not in ("auto", "fast"):
        return False
    return args.device == "cpu" or (args.device == "auto" and not _gpu_visible())


def _gpu_visible() -> bool:
    """Whether ``--device auto`` may pick a GPU (then the torch path decides): an NVIDIA
    device node, or a Mac (MPS), without importing torch."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return sys.platform == "darwin" or os.path.exists("/dev/nvidiactl")


def pack_path(checkpoint: str | Path, weights: str) -> Path | None:
    """Where the pack of ``checkpoint`` at ``weights`` precision lives (None: no C kernel)."""
    from waveloom.sampling import cbuild

    library = cbuild.library_name()
    if library is None:
        return None
    path = Path(checkpoint).resolve()
    stat = path.stat()
    ident = "\0".join(str(x) for x in (PACK_VERSION, path, stat.st_size, stat.st_mtime_ns,
                                       weights, library))
    key = hashlib.sha256(ident.encode()).hexdigest()[:20]
    return cbuild.cache_dir() / "packed" / f"{_family_name(path, weights)}-{key}.safetensors"


def _family_name(path: Path, weights: str) -> str:
    """The file-name prefix every pack of the checkpoint at ``path`` shares (a hash of the
    path: a retrained checkpoint replaces its older packs instead of piling them up)."""
    where = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    return f"{path.stem}-{where}-{weights}"


def _drop_older_packs(path: Path, checkpoint: str | Path, weights: str) -> None:
    """Remove the packs of earlier versions of ``checkpoint`` (``path`` is the current one)."""
    prefix = f"{_family_name(Path(checkpoint).resolve(), weights)}-"
    for old in path.parent.iterdir():  # not a glob: a checkpoint's name may hold [ or *
        if old.name.startswith(prefix) and old != path:
            old.unlink(missing_ok=True)


def load_pack(path: Path) -> Packed | None:
    """The pack at ``path``, or None when it is missing or unreadable (then the command
    takes the torch path and packs again)."""
    from safetensors import SafetensorError

    from waveloom.sampling.packed import load_packed

    if not path.is_file():
        return None
    try:
        net, arrays = load_packed(path)
    except (OSError, ValueError, KeyError, TypeError, SafetensorError):
        return None
    return Packed(net, arrays)


# --------------------------------------------------------------------------- packing (torch)


def pack_source(model: Any, family: str, checkpoint: str | Path, weights: str,
                engine: str, sample_rate: int) -> Packed | None:
    """Pack a loaded ``model`` (:func:`~waveloom.sampling.packed_notes.pack_note_model`) and
    keep the pack in the cache (a cache that cannot be written only costs the next command
    its start-up); None when the flags' engine is not the fast one or the model is not
    packable (see the module docstring)."""
    from waveloom.sampling.engine import resolve_engine
    from waveloom.sampling.packed import save_packed
    from waveloom.sampling.packed_notes import pack_note_model

    if family != "wavenet" or resolve_engine(engine, model) != "fast":
        return None
    packed = pack_note_model(model, sample_rate, weights)
    path = None if packed is None else pack_path(checkpoint, weights)
    if path is not None:
        try:
            save_packed(packed.net, path, packed.arrays)
            _drop_older_packs(path, checkpoint, weights)
        except OSError:
            pass
    return packed
