"""Build a C kernel with the machine's compiler, once, and load it with ctypes.

A kernel is compiled with ``-O3 -march=native`` (so it uses whatever vector units the CPU
has) and cached under ``$WAVELOOM_CACHE`` or ``~/.cache/waveloom``, keyed by a hash of its
source, the shared headers of this folder, the flags and the compiler's version. Nothing is
downloaded: on a machine without a C compiler :func:`build` says why, and the caller falls
back to its numba or numpy path.

Flags: ``-ffp-contract=fast`` (FMA contraction), ``-fno-math-errno -fno-trapping-math``. No
``-ffast-math``: its finite-math and reciprocal assumptions could change results, and the
kernels are written so the compiler vectorises them without it.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

HEADERS = Path(__file__).resolve().parent
FLAGS = [
    "-O3",
    "-march=native",
    "-fPIC",
    "-shared",
    "-ffp-contract=fast",
    "-fno-math-errno",
    "-fno-trapping-math",
]


def cache_dir() -> Path:
    """Where built kernels (and packed models) are kept: ``$WAVELOOM_CACHE`` or
    ``~/.cache/waveloom``."""
    root = os.environ.get("WAVELOOM_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "waveloom"


def flags() -> list[str]:
    """FLAGS, with ``-march=native`` replaced by ``$WAVELOOM_CFLAGS`` when set (e.g. to
    build a portable ``-mavx2 -mfma`` kernel, or to test one ISA on another machine)."""
    extra = os.environ.get("WAVELOOM_CFLAGS")
    if not extra:
        return list(FLAGS)
    return [f for f in FLAGS if f != "-march=native"] + extra.split()


def compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def _key(source: Path, build_flags: list[str], version: str) -> str:
    headers = [p.read_text() for p in sorted(HEADERS.glob("*.h"))]
    text = "\0".join([source.read_text(), *headers, " ".join(build_flags), version,
                      os.uname().machine])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build(source: Path) -> tuple[ctypes.CDLL | None, str | None, str | None]:
    """(library, None, its file name) or (None, why it is unavailable, None) for the C file
    ``source``; compiles it on the first call on this machine (atomically: concurrent
    builders are harmless). ``$WAVELOOM_NO_C`` disables every kernel."""
    if os.environ.get("WAVELOOM_NO_C"):
        return None, "disabled by WAVELOOM_NO_C", None
    if not source.is_file():
        return None, f"{source.name} is not installed with the package", None
    cc = compiler()
    if cc is None:
        return None, "no C compiler (cc, gcc or clang) on PATH", None
    try:
        version = subprocess.run(
            [cc, "--version"], capture_output=True, text=True, timeout=30
        ).stdout.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError) as err:
        return None, f"{cc} --version failed: {err}", None
    build_flags = flags()
    target = cache_dir() / f"{source.stem}-{_key(source, build_flags, version)}.so"
    if not target.exists():
        why = _compile(cc, build_flags, source, target)
        if why:
            return None, why, None
    try:
        return ctypes.CDLL(str(target)), None, target.name
    except OSError as err:
        return None, f"could not load {target}: {err}", None


def _compile(cc: str, build_flags: list[str], source: Path, target: Path) -> str | None:
    """Compile ``source`` to ``target``; None, or why it failed (one line)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            out = Path(tmp) / target.name
            proc = subprocess.run(
                [cc, *build_flags, f"-I{HEADERS}", "-o", str(out), str(source), "-lm"],
                capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                return f"{cc} failed to build {source.name}: {' | '.join(tail)}"
            os.replace(out, target)
    except (OSError, subprocess.SubprocessError) as err:
        return f"could not build {source.name} in {target.parent}: {err}"
    return None


def panels(w: np.ndarray, width: int) -> np.ndarray:
    """Matrices ``w`` [M, R, N] (row-major) -> the same values in the kernels' panel layout.

    Columns are cut into panels of ``width`` (the last one narrower) and each panel is stored
    row-major on its own, so a kernel streams one contiguous panel per register block
    (``gemv`` in vector_gemv.h). The result keeps the shape [M, R, N]; only the order of the
    values inside each matrix changes.
    """
    m, r, n = w.shape
    full = n // width * width
    parts = [np.ascontiguousarray(
        w[:, :, :full].reshape(m, r, n // width, width).transpose(0, 2, 1, 3)
    ).reshape(m, -1)]
    if full < n:
        parts.append(np.ascontiguousarray(w[:, :, full:]).reshape(m, -1))
    return np.ascontiguousarray(np.concatenate(parts, axis=1).reshape(m, r, n))


def pointer(a: np.ndarray | None) -> int | None:
    """The address of a C-contiguous array for a ``void *`` argument (None: NULL)."""
    if a is None:
        return None
    if not a.flags.c_contiguous:
        raise ValueError("the C kernel needs C-contiguous arrays")
    return a.ctypes.data
