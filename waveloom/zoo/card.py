"""A checkpoint's card: what it is (from its own metadata) and what was measured of it.

Everything but the records and limits comes from the safetensors file itself: family, config,
vocabulary (``extra.instruments`` / ``extra.domains``), steps and training recipe
(``extra.training``), parameter count (the tensors' shapes, read from the header: nothing is
loaded), and size on disk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from safetensors import safe_open

from waveloom.checkpoint import read_extra, read_metadata, read_run_dict
from waveloom.zoo.records import ASSETS, Measurement, read_records


@dataclass
class Card:
    """What ``waveloom models NAME`` prints about one checkpoint."""

    name: str
    path: Path
    family: str
    size_bytes: int
    parameters: int
    vocabulary: list[str]
    steps: int | None
    training: str
    preset: dict = field(default_factory=dict)
    measurements: list[Measurement] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)

    @property
    def shipped(self) -> bool:
        return self.path.resolve().parent == ASSETS

    def headline(self) -> Measurement | None:
        """The figure flagged as headline, else the first recorded, else None."""
        marked = [m for m in self.measurements if m.headline]
        return (marked or self.measurements or [None])[0]


def parameter_count(path: Path) -> int:
    """Elements over every tensor in the file, from the header alone."""
    with safe_open(str(path), framework="numpy") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())


def card_of(path: str | Path) -> Card:
    """The card of the checkpoint at ``path`` (CheckpointError, one line, if it is none)."""
    path = Path(path)
    meta = read_metadata(path)
    extra = read_extra(path)
    vocabulary = extra.get("instruments") or extra.get("domains") or []
    measurements, limits = read_records(path)
    steps = extra.get("step")
    return Card(
        name=display_name(path), path=path, family=meta.get("family", "?"),
        size_bytes=path.stat().st_size, parameters=parameter_count(path),
        vocabulary=[str(v) for v in vocabulary],
        steps=int(steps) if isinstance(steps, (int, float)) else None,
        training=str(extra.get("training", "")), preset=read_run_dict(path).get("model", {}),
        measurements=measurements, limits=limits,
    )  # fmt: skip


def display_name(path: Path) -> str:
    """A checkpoint's name: its stem, or its run folder's name for a run's model.safetensors
    (``RUN/best`` for the best-validation weights ``train.keep_best`` writes beside it)."""
    if path.name == "model.safetensors":
        return path.parent.name
    return f"{path.parent.name}/best" if path.name == "best.safetensors" else path.stem


def find_checkpoints(roots: list[Path]) -> list[Path]:
    """Every ``.safetensors`` file under ``roots`` (a file counts as itself), sorted, resume
    and temp files left out; roots that do not exist are skipped."""
    found: set[Path] = set()
    for root in roots:
        if root.is_file() and root.suffix == ".safetensors":
            found.add(root)
        elif root.is_dir():
            found.update(p for p in root.rglob("*.safetensors") if ".tmp" not in p.name)
    return sorted(found)
