"""``waveloom listen --report``: mean opinion scores per folder and A/B win rates.

* MOS: the mean 1-5 rating of a folder's clips, per scale (fidelity, musicality), with a
  percentile-bootstrap interval over ratings. Ratings of one rater are correlated, so with few
  raters the interval is optimistic; the report shows the number of raters beside it.
* A/B: for each pair of folders, how often each won; the win rate of the first folder counts
  decisive trials only (``wins / (wins + losses)``, 0.5 = no difference) with a bootstrap
  interval, and "no preference" answers are reported apart.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from waveloom.errors import ConfigError, DataError
from waveloom.evaluate.bootstrap import bootstrap_mean
from waveloom.listening.store import RatingStore


def _display(folder: str, base: Path) -> str:
    """The folder relative to the database's directory when inside it, else as stored."""
    try:
        return os.path.relpath(folder, base)
    except ValueError:
        return folder


def check_interval_args(resamples: int, level: float) -> None:
    """One line for ``--bootstrap`` below 0 or ``--ci`` outside (0, 1) (checked before the
    database is read, not deep inside the bootstrap)."""
    if not isinstance(resamples, int) or resamples < 0:
        raise ConfigError(f"--bootstrap {resamples}: the number of resamples must be >= 0 "
                          "(0: no intervals)")
    if not (isinstance(level, (int, float)) and 0.0 < level < 1.0):
        raise ConfigError(f"--ci {level}: the interval level must be in (0, 1), e.g. 0.95")


def listening_report(db: str | Path, *, resamples: int = 1000, level: float = 0.95,
                     seed: int = 0) -> dict[str, Any]:
    """MOS per folder and A/B win rates from the ratings database ``db``."""
    check_interval_args(resamples, level)
    db = Path(db)
    if not db.is_file():
        raise DataError(f"{db}: no ratings database here; pass the --db used by "
                        "`waveloom listen` (default: listening.sqlite beside the first folder)")
    store = RatingStore(db)
    try:
        ratings, prefs = store.ratings(), store.preferences()
    finally:
        store.close()
    base = db.resolve().parent

    def ci(values: list[float]) -> dict[str, Any]:
        return bootstrap_mean(values, resamples=resamples, level=level, seed=seed).to_dict()

    per_folder: dict[str, dict[str, list]] = defaultdict(
        lambda: {"fidelity": [], "musicality": [], "raters": set()})
    for folder, rater, fidelity, musicality in ratings:
        entry = per_folder[folder]
        entry["fidelity"].append(fidelity)
        entry["musicality"].append(musicality)
        entry["raters"].add(rater)
    mos = {
        _display(folder, base): {
            "fidelity": ci(v["fidelity"]),
            "musicality": ci(v["musicality"]),
            "ratings": len(v["fidelity"]),
            "raters": len(v["raters"]),
        }
        for folder, v in sorted(per_folder.items())
    }

    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for folder_a, folder_b, choice, rater in prefs:
        if folder_a == folder_b:
            continue
        first, second = sorted((folder_a, folder_b))
        entry = pairs.setdefault((first, second), {"outcomes": [], "ties": 0, "raters": set()})
        entry["raters"].add(rater)
        if choice == "none":
            entry["ties"] += 1
        else:
            winner = folder_a if choice == "a" else folder_b
            entry["outcomes"].append(1.0 if winner == first else 0.0)
    ab = []
    for (first, second), v in sorted(pairs.items()):
        wins = int(sum(v["outcomes"]))
        ab.append({
            "first": _display(first, base),
            "second": _display(second, base),
            "first_wins": wins,
            "second_wins": len(v["outcomes"]) - wins,
            "no_preference": v["ties"],
            "first_win_rate": ci(v["outcomes"]),
            "raters": len(v["raters"]),
        })
    return {"db": str(db), "mos": mos, "ab": ab, "level": level, "resamples": resamples}


def _fmt(d: dict[str, Any]) -> str:
    if d["mean"] is None or d["n"] == 0:
        return "n/a"
    if d["n"] < 2 or not d["resamples"]:
        return f"{d['mean']:.2f}"
    return f"{d['mean']:.2f} [{d['low']:.2f}, {d['high']:.2f}]"


def format_listening_report(report: dict[str, Any]) -> str:
    """Human-readable tables of :func:`listening_report`."""
    pct = round(100 * report["level"])
    lines = [f"ratings database: {report['db']}"]
    if not report["mos"] and not report["ab"]:
        return "\n".join([*lines, "no answers yet"])
    if report["mos"]:
        width = max(len(k) for k in report["mos"])
        lines.append(f"\nMOS (1-5, {pct}% bootstrap CI)")
        lines.append(f"{'folder'.ljust(width)}  {'fidelity':<22}  {'musicality':<22}  "
                     "ratings  raters")
        for folder, v in report["mos"].items():
            lines.append(f"{folder.ljust(width)}  {_fmt(v['fidelity']):<22}  "
                         f"{_fmt(v['musicality']):<22}  {v['ratings']:>7}  {v['raters']:>6}")
    if report["ab"]:
        lines.append(f"\nA/B preferences (win rate of the first folder over decisive trials, "
                     f"{pct}% bootstrap CI)")
        for row in report["ab"]:
            lines.append(f"{row['first']} vs {row['second']}: {row['first_wins']}-"
                         f"{row['second_wins']} ({row['no_preference']} no preference), "
                         f"win rate {_fmt(row['first_win_rate'])}, {row['raters']} rater(s)")
    return "\n".join(lines)
