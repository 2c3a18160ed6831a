"""Where the shipped models live, and how a command line names them (no heavy imports: the
verbs' argument parsers use it, and ``waveloom --help`` must not load torch)."""

from __future__ import annotations

from pathlib import Path

SHIPPED = Path(__file__).resolve().parent / "assets"
#: The note model a user meets first (the demo's, the studio's first choice): the Gaussian-head
#: WaveNet, on pitch in 333 of 348 strict grid cells and sampled by the fast C engine.
DEFAULT_NOTES = SHIPPED / "wavenet-gaussian-notes.safetensors"


def checkpoint_path(text: str | Path) -> Path:
    """A command line's checkpoint argument -> a path: what exists as given (a file, or a
    folder the verb reads), else the shipped model of that name (``wavenet-small-notes`` ->
    ``waveloom/assets/wavenet-small-notes.safetensors``, as ``waveloom models`` lists them),
    else the path as given, for the verb's own not-found error."""
    path = Path(text)
    if path.exists() or len(path.parts) != 1:
        return path
    for candidate in (SHIPPED / path.name, SHIPPED / f"{path.name}.safetensors"):
        if candidate.is_file() and candidate.suffix == ".safetensors":
            return candidate
    return path
