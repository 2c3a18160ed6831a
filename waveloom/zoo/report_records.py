"""The card-worthy figures of an ``evaluate`` report on a checkpoint's own samples.

``waveloom evaluate CKPT --metrics kid,pitch --reference REAL --record`` draws samples from the
checkpoint, scores them, and keeps on its card (:mod:`waveloom.zoo.records`) each figure that
says how good the model is for a user: the distances to real audio (KID, KAD, FAD per
embedding) and the pitch accuracy of conditioned samples, each with its interval, its n and
the command. The report is a plain dict (the ``evaluate`` layer's output), so the card layer
needs no evaluation code.
"""

from __future__ import annotations

from typing import Any

from waveloom.zoo.records import Measurement

#: Report keys whose entries are distances ``{value, ci, n}`` (lower is better).
DISTANCES = ("kid[", "kad[", "fad[")


def _sig(x: float) -> float:
    """``x`` to 4 significant digits (a card shows a figure, not float noise)."""
    return float(f"{float(x):.4g}")


def describe_data(report: dict[str, Any], seconds: float | None, temperature: float,
                  steps: int | None = None, sampler: str | None = None) -> str:
    """``N samples of S s (seed K, temperature T) vs REFERENCE (M clips)`` from a report; a
    diffusion model's ``steps`` and ``sampler``, when given, join the parenthesis (a card may
    hold the same metric at several step counts)."""
    gen = report.get("generated", {})
    ref = report.get("reference")
    seed = report.get("bootstrap", {}).get("seed")
    length = f" of {seconds:g} s" if seconds else ""
    how = f"seed {seed}, temperature {temperature:g}"
    if steps or sampler:
        how += f", {sampler or 'default sampler'} at {steps or 'all'} steps"
    text = f"{gen.get('clips', '?')} samples{length} ({how})"
    if ref:
        text += f" vs {ref.get('source', '?')} ({ref.get('clips', '?')} clips)"
    return text


def report_measurements(report: dict[str, Any], data: str, command: str
                        ) -> list[Measurement]:
    """One :class:`Measurement` per distance (``kid[crepe-tiny]``, ...) and per pitch accuracy
    (``pitch[crepe-full,50c]``, in %) of ``report``; other entries are left out."""
    out = []
    for key, entry in report.items():
        if not isinstance(entry, dict):
            continue
        if key.startswith(DISTANCES) and "value" in entry:
            ci = entry.get("ci")
            n = entry.get("n")
            out.append(Measurement(
                metric=key, value=_sig(entry["value"]), data=data, command=command,
                n=int(n[0]) if n else None,
                interval=(_sig(ci[0]), _sig(ci[1])) if ci and None not in ci else None,
                higher_is_better=False))
        elif key.startswith("pitch[") and isinstance(entry.get("accuracy"), dict):
            acc = entry["accuracy"]
            interval = None
            if acc.get("resamples") and acc.get("n", 0) >= 2:
                interval = (_sig(100.0 * acc["low"]), _sig(100.0 * acc["high"]))
            out.append(Measurement(
                metric=f"on pitch ({key[6:-1]}; octave errors count)",
                value=_sig(100.0 * float(acc["mean"])), data=data, command=command, unit="%",
                n=int(acc["n"]), interval=interval, higher_is_better=True))
    return out
