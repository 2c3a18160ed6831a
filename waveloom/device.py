"""Where a model runs and with how many CPU threads: the one place that chooses.

Every verb takes ``--device`` and ``--threads`` and resolves them here, so the rules (``auto``
picks CUDA when present; a CUDA request without CUDA is a one-line error; the thread count is
set for torch *and* numba in the order that keeps both) live once.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from waveloom.errors import ConfigError

if TYPE_CHECKING:  # imported where used: the torch-free generate path (packed models) reads
    import torch  # the thread count from here


def pick_device(device: str = "auto") -> torch.device:
    """``'auto'`` -> CUDA when available, else CPU; any other name is checked and returned."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available here; use --device cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ConfigError(f"--device {device!r}: use auto, cpu, cuda or cuda:N") from None


#: The last ``--threads`` (None: never given), for the engines that load later (numba).
_THREADS: int | None = None
#: Whether numba has yet to be told ``_THREADS`` (it was not loaded when it was given).
_NUMBA_PENDING = False


def set_threads(threads: int | None) -> None:
    """Use ``threads`` CPU threads for torch and for the fast engine (None: leave as is).

    numba's count is capped at the pool it started with (``NUMBA_NUM_THREADS``, by default
    the number of cores). numba is only told now if it is already loaded: importing it costs
    ~0.3 s that the C backend of the fast engine does not need, so the fast engine reads the
    count from :func:`chosen_threads` and applies it when it loads numba itself.
    """
    if threads is None:
        return
    choose_threads(threads)
    import torch

    # After numba: its first call starts its OpenMP pool, which resets the process-wide
    # OpenMP thread count (torch's) to the number of cores.
    torch.set_num_threads(threads)


def choose_threads(threads: int) -> None:
    """:func:`set_threads` for the engines that are not torch (the fast engine, numba): what
    the torch-free generate path calls, so it need not import torch."""
    global _THREADS, _NUMBA_PENDING
    if threads < 1:
        raise ConfigError(f"--threads {threads}: must be >= 1")
    _THREADS = threads
    _NUMBA_PENDING = "numba" not in sys.modules
    if not _NUMBA_PENDING:
        try:
            import numba

            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        except Exception:  # a broken numba: the torch engine still honours the count
            pass


def chosen_threads() -> int | None:
    """The thread count last given to :func:`set_threads` (None when never given)."""
    return _THREADS


def pending_numba_threads() -> int | None:
    """The count numba still has to be given (``--threads`` set before numba was loaded), once:
    the caller that loads numba applies it; later calls return None."""
    global _NUMBA_PENDING
    pending, _NUMBA_PENDING = _NUMBA_PENDING, False
    return _THREADS if pending else None


def cpu_cores() -> int:
    """The cores this process may run on (numba's default pool size, ``NUMBA_NUM_THREADS``
    when set)."""
    env = os.environ.get("NUMBA_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
