"""Where a model runs and with how many CPU threads: the one place that chooses.

Every verb takes ``--device`` and ``--threads`` and resolves them here, so the rules (``auto``
picks CUDA when present; a CUDA request without CUDA is a one-line error; the thread count is
set for torch *and* numba in the order that keeps both) live once.
"""

from __future__ import annotations

import torch

from waveloom.errors import ConfigError


def pick_device(device: str = "auto") -> torch.device:
    """``'auto'`` -> CUDA when available, else CPU; any other name is checked and returned."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available here; use --device cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ConfigError(f"--device {device!r}: use auto, cpu, cuda or cuda:N") from None


def set_threads(threads: int | None) -> None:
    """Use ``threads`` CPU threads for torch and for the fast engine (None: leave as is).

    numba's count is capped at the pool it started with (``NUMBA_NUM_THREADS``, by default
    the number of cores).
    """
    if threads is None:
        return
    if threads < 1:
        raise ConfigError(f"--threads {threads}: must be >= 1")
    try:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except Exception:  # numba missing or broken: the torch engine still honours the count
        pass
    # After numba: its first call starts its OpenMP pool, which resets the process-wide
    # OpenMP thread count (torch's) to the number of cores.
    torch.set_num_threads(threads)
