"""Memory estimates before large allocations: refuse with a one-line error instead of being
killed by the kernel (or dying in an allocator traceback) minutes later.

Generic layer: imports nothing of waveloom but the errors. Free memory is MemAvailable from
``/proc/meminfo`` (what the kernel can hand out without swapping), or psutil's ``available``
where ``/proc`` is missing; when neither is readable no check is made (never a false refusal).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from waveloom.errors import ConfigError

#: Refuse an allocation above this fraction of the available memory: the rest of the process
#: (torch, the model, the page cache it reads through) needs room too.
HEADROOM = 0.8
#: Environment variable that turns every check off (an expert who knows better).
DISABLE_ENV = "WAVELOOM_NO_MEMORY_CHECK"


def available_bytes() -> int | None:
    """Bytes the kernel can give this process now without swapping, or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def human(nbytes: float) -> str:
    """``1536`` -> ``'1.5 KiB'``; infinities and huge values stay readable."""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # pragma: no cover


def check_allocation(nbytes: float, what: str, key: str, *,
                     available: int | None = None) -> None:
    """Raise :class:`ConfigError` when ``nbytes`` (an estimate) exceeds :data:`HEADROOM` of
    the available memory: the message names ``what`` is being allocated, the estimate, the
    free memory and ``key``, the setting or flag to change. ``available`` overrides the
    measured free memory (tests)."""
    if os.environ.get(DISABLE_ENV):
        return
    free = available_bytes() if available is None else available
    if free is None or nbytes <= HEADROOM * free:
        return
    raise ConfigError(f"{what} needs about {human(nbytes)} but only {human(free)} is free; "
                      f"lower {key} (or set {DISABLE_ENV}=1 to skip this check)")


def check_disk(nbytes: float, folder: str | Path, what: str, key: str) -> None:
    """Raise :class:`ConfigError` when ``nbytes`` will not fit on the disk holding ``folder``
    (or its nearest existing parent): an output streamed to disk is bounded by the disk, not
    by memory."""
    if os.environ.get(DISABLE_ENV):
        return
    path = Path(folder).resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return
    if nbytes > free:
        raise ConfigError(f"{what} needs about {human(nbytes)} on disk but only {human(free)} "
                          f"is free in {path}; lower {key} (or write elsewhere)")
