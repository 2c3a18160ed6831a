"""The evaluation report as strict JSON and as aligned text (what ``waveloom evaluate`` prints).

Reports are plain dicts; every float in them is finite or ``None`` (JSON has no NaN/inf, and a
missing interval must not break a downstream parser).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """Replace NaN/inf floats by None and numpy scalars by Python ones (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _fmt_interval(d: dict[str, Any] | None) -> str:
    if not d or d.get("mean") is None:
        return "n/a"
    if d["resamples"] and d["n"] > 1:
        return (f"{d['mean']:.4g} [{d['low']:.4g}, {d['high']:.4g}] "
                f"({round(100 * d['level'])}% CI, n={d['n']})")
    return f"{d['mean']:.4g} (n={d['n']})"


def _fmt_distance(d: dict[str, Any]) -> str:
    """``value [lo, hi] (95% CI, n=a vs b)`` of a distance entry (``value``, ``ci``, ``n``)."""
    value, ci, n = d.get("value"), d.get("ci"), d.get("n") or ["?", "?"]
    if value is None:
        return "n/a"
    level = round(100 * d.get("level", 0.95))
    if not ci or None in ci or ci[0] == ci[1]:
        return f"{value:.4g} (n={n[0]} vs {n[1]})"
    return f"{value:.4g} [{ci[0]:.4g}, {ci[1]:.4g}] ({level}% CI, n={n[0]} vs {n[1]})"


def _event_rows(nll: dict[str, Any]) -> list[tuple[str, str]]:
    """A symbolic model's bits per event, then the n-grams' on the same events."""
    rows = [("nll (bits/event)", f"{nll['bits_per_event']:.4f} ({nll['pieces']} pieces, "
             f"{nll['events']} events; windows of {nll['context']}, stride {nll['stride']})")]
    for n, bits in nll["ngram_bits_per_event"].items():
        rows.append((f"{n}-gram (bits/event)", f"{bits:.4f} (Witten-Bell, fitted on train)"))
    return rows


def format_report(report: dict[str, Any]) -> str:
    """The report as aligned text lines, one number per line (the CLI's stdout)."""
    lines = []
    if "generated" in report:
        ref = report.get("reference")
        lines.append(f"generated: {report['generated']['source']} "
                     f"({report['generated']['clips']} clips)")
        if ref:
            lines.append(f"reference: {ref['source']} ({ref['clips']} clips)")
    rows: list[tuple[str, str]] = []
    if report.get("nll_kind") == "events":
        rows += _event_rows(report["nll"])
    elif "nll" in report:
        nll, base = report["nll"], report.get("baselines")
        kind = report.get("nll_kind", "audio")
        bits = f"{nll['bits_per_sample']:.4f}"
        if kind == "conditional":
            rows.append(("conditional nll (bits/sample)",
                         f"{bits} (given the model's own codes of the same audio: a "
                         "reconstruction score, not a code length; no compressor compares)"))
        elif kind == "codes":
            rows.append(("nll (bits/code)", f"{bits} (xz {base['xz_bits_per_sample']:.3f}, "
                         f"raw {base['raw_bits_per_sample']:g})"))
        else:
            rows.append(("nll (bits/sample)", f"{bits} "
                         f"(flac {base['flac_bits_per_sample']:.3f}, "
                         f"xz {base['xz_bits_per_sample']:.3f}, raw 8)"))
    for key, value in report.items():
        if not isinstance(value, dict):
            continue
        if key.startswith("fad["):
            rows.append((key, f"{_fmt_distance(value)} ({value['pool']} pooling, "
                         f"{value['n_generated']} vs {value['n_reference']} clips)"))
        elif key.startswith("fad_inf["):
            rows.append((key, f"{_fmt_distance(value)} (intercept over "
                         f"{value['n_frames'][0]} vs {value['n_frames'][1]} frames)"))
        elif key.startswith(("kid[", "kad[")):
            rows.append((key, f"{_fmt_distance(value)} ({value['pool']} pooling)"))
        elif key.startswith("pitch["):
            rows.append((f"{key} accuracy", _fmt_interval(value["accuracy"])))
        elif key.startswith("classifier["):
            rows.append((f"{key} accuracy", _fmt_interval(value.get("accuracy"))))
            rows.append((f"{key} inception score",
                         f"{value['inception_score']:.4g} (of {value['classes']} classes)"))
        elif key.startswith("ndb["):
            ci, js_ci = value.get("ci"), value.get("js_ci")
            rows.append((key, f"NDB/k {value['ndb_over_k']:.3f}"
                         + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
                         + f" ({value['ndb']} of {value['k']} bins at alpha {value['alpha']}, "
                         f"n={value['n_generated']} vs {value['n_reference']}), JSD "
                         f"{value['js_divergence']:.4f}"
                         + (f" [{js_ci[0]:.4f}, {js_ci[1]:.4f}]" if js_ci else "")))
        elif key == "mss":
            rows.append(("multi-scale spectral distance", _fmt_interval(value["distance"])))
        elif key == "si_sdr":
            rows.append(("si-sdr (dB)", _fmt_interval(value["db"])))
    width = max((len(k) for k, _ in rows), default=0)
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines += [f"warning: {w}" for w in report.get("warnings", [])]
    return "\n".join(lines)
