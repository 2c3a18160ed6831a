"""Measurements of a checkpoint, stored beside it, written by the benchmark that made them.

A shipped checkpoint ``waveloom/assets/NAME.safetensors`` keeps its records in
``waveloom/assets/cards/NAME.json``; any other checkpoint in ``NAME.card.json`` beside it. A
record is replaced when the same metric is measured again on the same data, so re-running a
benchmark with ``--record`` updates its figure instead of piling up stale ones. The file also
holds ``limits``: what the model is known not to do, in words (numbers belong in records).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from waveloom.errors import DataError
from waveloom.shipped import SHIPPED

#: The shipped checkpoints' folder (their records live in its ``cards/``).
ASSETS = SHIPPED  # waveloom/assets


@dataclass
class Measurement:
    """One measured figure: ``value`` (in ``unit``) of ``metric`` on ``data`` (n items), with
    a 95 % ``interval`` where the benchmark computes one, and the ``command`` that reproduces
    it. ``headline``: the figure ``waveloom models`` shows in its listing."""

    metric: str
    value: float
    data: str
    command: str
    unit: str = ""
    n: int | None = None
    interval: tuple[float, float] | None = None
    higher_is_better: bool | None = None
    headline: bool = False
    date: str = field(default_factory=lambda: _dt.date.today().isoformat())

    def __post_init__(self) -> None:
        if not math.isfinite(float(self.value)):
            raise DataError(f"measurement {self.metric!r}: value {self.value} is not finite")
        if self.interval is not None:
            self.interval = (float(self.interval[0]), float(self.interval[1]))

    def short(self) -> str:
        """``metric value unit [lo, hi] (n=..)`` on one line."""
        text = f"{self.metric} {_fmt(self.value)}{(' ' + self.unit) if self.unit else ''}"
        if self.interval is not None:
            text += f" [{_fmt(self.interval[0])}, {_fmt(self.interval[1])}]"
        return text + (f" (n={self.n})" if self.n is not None else "")


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def records_path(checkpoint: str | Path) -> Path:
    """Where ``checkpoint``'s records live (see the module docstring)."""
    checkpoint = Path(checkpoint).resolve()
    if checkpoint.parent == ASSETS:
        return ASSETS / "cards" / f"{checkpoint.stem}.json"
    return checkpoint.with_name(f"{checkpoint.stem}.card.json")


def read_records(checkpoint: str | Path) -> tuple[list[Measurement], list[str]]:
    """(measurements, limits) of ``checkpoint``; both empty when nothing was recorded."""
    path = records_path(checkpoint)
    if not path.is_file():
        return [], []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        found = [Measurement(**{**m, "interval": m.get("interval")})
                 for m in data.get("measurements", [])]
    except (OSError, json.JSONDecodeError, TypeError) as err:
        raise DataError(f"{path}: unreadable measurement records ({err}); re-run the "
                        "benchmark with --record, or delete the file") from None
    return found, [str(x) for x in data.get("limits", [])]


def record(checkpoint: str | Path, measurement: Measurement) -> Path:
    """Add ``measurement`` to ``checkpoint``'s records (replacing one of the same metric and
    data); a headline measurement takes the headline from any other. Returns the file."""
    found, limits = read_records(checkpoint)
    found = [m for m in found if (m.metric, m.data) != (measurement.metric, measurement.data)]
    if measurement.headline:
        for m in found:
            m.headline = False
    found.append(measurement)
    path = records_path(checkpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"checkpoint": Path(checkpoint).name, "limits": limits,
            "measurements": [dataclasses.asdict(m) for m in found]}
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def command_line(argv: list[str], script: str) -> str:
    """The command that reproduced a figure: ``python SCRIPT ARGS`` minus ``--record``."""
    import shlex

    args = [a for a in argv if a != "--record"]
    return shlex.join(["python", script, *args])
