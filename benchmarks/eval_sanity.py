"""Sanity table of the evaluation metrics: do they order known conditions sensibly?

Reference: NSynth-style notes rendered from the default SoundFont (TimGM6mb), train split.
Each condition is a set of 4-s notes with the *same names and labels* as the real test split:

* ``real (test split)``: held-out notes of the same renderer (should score best);
* ``other SoundFont``: the same notes rendered with FluidR3_GM (Debian fluid-soundfont-gm);
* ``sines``: a pure sine at each note's pitch, 10 ms attack, 3 s hold, 1 s exponential release;
* ``white noise``: Gaussian noise (RMS -20 dBFS) under the same envelope;
* ``mu-law 8-bit`` (spectral metrics only): the real test notes through 8-bit mu-law and back,
  a realistic "good reconstruction".

Every step is a ``waveloom`` CLI call (printed as it runs, so the table's commands are exact);
finished steps are skipped on a re-run. Writes ``ROOT/<condition>*.json`` and prints the
Markdown table (``--table FILE`` also writes it).

Run: ``.venv/bin/python benchmarks/eval_sanity.py --root out/sanity [--table docs/x.md]``
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

import numpy as np

from waveloom.audio.tuning import midi_hz
from waveloom.cli import main

PROGRAMS = "0,4,8,11,16,19,24,27,32,33,40,42,56,57,65,68,73,74,80,81"  # 2 per family
PITCHES, VELOCITIES = "36-84", "70,120"
FLUID = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
SR = 16000


def run(*args: str) -> None:
    print("$ waveloom " + shlex.join(args), flush=True)
    t0 = time.monotonic()
    code = main(list(args))
    if code != 0:
        raise SystemExit(f"waveloom {args[0]} failed with exit status {code}")
    print(f"  ({time.monotonic() - t0:.0f} s)", flush=True)


def make_sets(root: Path) -> None:
    """sines/, noise/, mulaw/ beside the renders: same names and labels as the real test split."""
    from waveloom.audio.io import save_audio
    from waveloom.audio.mulaw import dequantize, quantize
    from waveloom.evaluate.audioset import load_set, write_sidecar

    real = load_set(root / "cache-real", split="test")
    rng = np.random.default_rng(0)
    labels = dict(zip(real.names, real.labels))
    for kind in ("sines", "noise", "mulaw"):
        if (root / kind / "labels.json").is_file():
            continue
        for i, name in enumerate(real.names):
            clip = real.clip(i)
            t = np.arange(len(clip)) / SR
            env = np.minimum(1.0, t / 0.01) * np.where(t < 3.0, 1.0, np.exp(-(t - 3.0) * 5.0))
            if kind == "sines":
                f0 = float(midi_hz(real.labels[i]["pitch"]))
                out = 0.5 * env * np.sin(2 * np.pi * f0 * t)
            elif kind == "noise":
                out = 0.1 * env * rng.normal(size=len(clip))
            else:
                out = dequantize(quantize(clip))
            save_audio(root / kind / f"{name}.wav", out.astype(np.float32), SR)
        write_sidecar(root / kind, labels)


def main_(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", type=Path, default=Path("out/sanity"))
    p.add_argument("--table", type=Path, default=None, help="also write the table here")
    p.add_argument("--bootstrap", default="1000")
    args = p.parse_args(argv)
    root = args.root
    if not (root / "real" / "examples.json").is_file():
        run("data", "render-notes", str(root / "real"), "--programs", PROGRAMS, "--pitches",
            PITCHES, "--velocities", VELOCITIES, "-q")
    if not (root / "fluid" / "examples.json").is_file():
        run("data", "render-notes", str(root / "fluid"), "--soundfont", FLUID, "--programs",
            PROGRAMS, "--pitches", PITCHES, "--velocities", VELOCITIES, "-q")
    if not (root / "cache-real" / "cache.json").is_file():
        run("prepare", str(root / "real"), str(root / "cache-real"), "-q")
    make_sets(root)
    classifier = root / "classifier.safetensors"
    if not classifier.is_file():
        run("train-classifier", str(root / "cache-real"), "--out", str(classifier), "-q")

    conditions = {
        "real (test split)": ["cache-real", "--split", "test"],
        "other SoundFont": ["fluid", "--split", "test"],
        "sines": ["sines"],
        "white noise": ["noise"],
    }
    common = ["--reference", str(root / "cache-real"), "--reference-split", "train",
              "--classifier", str(classifier), "--bootstrap", args.bootstrap,
              "--stats-cache", str(root / "stats"), "-q"]
    reports: dict[str, dict[str, dict]] = {}
    for label, (target, *extra) in conditions.items():
        slug = target.split("-")[0]
        jobs = {
            "main": ["--metrics", "fad,pitch,classifier,ndb", "--embeddings",
                     "crepe-tiny,waveloom-classifier"],
            "full": ["--metrics", "fad", "--embeddings", "crepe-full", "--crepe-hop", "0.25"],
            "pyin": ["--metrics", "pitch", "--pitch-estimator", "pyin"],
            "spectral": ["--metrics", "spectral", "--reference-split", "test"],
            "ndb10": ["--metrics", "ndb", "--ndb-k", "10"],
        }
        reports[label] = {}
        for job, flags in jobs.items():
            out = root / f"{slug}-{job}.json"
            if not out.is_file():
                run("evaluate", str(root / target), *extra, *common, *flags, "--json", str(out))
            reports[label][job] = json.loads(out.read_text())
    mulaw = root / "mulaw-spectral.json"
    if not mulaw.is_file():
        run("evaluate", str(root / "mulaw"), *common, "--metrics", "spectral",
            "--reference-split", "test", "--json", str(mulaw))
    table = render_table(reports, json.loads(mulaw.read_text()))
    print(table)
    if args.table:
        args.table.write_text(table + "\n")


def _ci(d: dict | None, digits: int = 3) -> str:
    if not d or d.get("mean") is None:
        return "n/a"
    return f"{d['mean']:.{digits}f} [{d['low']:.{digits}f}, {d['high']:.{digits}f}]"


def render_table(reports: dict, mulaw: dict) -> str:
    cols = list(reports)
    rows: list[tuple[str, list[str]]] = []

    def row(name: str, fn) -> None:
        rows.append((name, [fn(reports[c]) for c in cols]))

    row("fad[crepe-tiny] (lower is closer)",
        lambda r: f"{r['main']['fad[crepe-tiny]']['value']:.3f}")
    row("fad[crepe-full] (hop 0.25 s)",
        lambda r: f"{r['full']['fad[crepe-full]']['value']:.3f}")
    row("fad[waveloom-classifier]",
        lambda r: f"{r['main']['fad[waveloom-classifier]']['value']:.2f}")
    row("pitch[crepe-tiny,50c] accuracy",
        lambda r: _ci(r["main"]["pitch[crepe-tiny,50c]"]["accuracy"]))
    row("pitch[pyin,50c] accuracy", lambda r: _ci(r["pyin"]["pitch[pyin,50c]"]["accuracy"]))
    for head in ("family", "pitch"):
        row(f"classifier[{head}] accuracy",
            lambda r, h=head: _ci(r["main"][f"classifier[{h}]"]["accuracy"]))
        row(f"classifier[{head}] inception score",
            lambda r, h=head: f"{r['main'][f'classifier[{h}]']['inception_score']:.2f}")
    row("ndb[logmel,k=50] NDB/k (~alpha=0.05 if same)",
        lambda r: f"{r['main']['ndb[logmel,k=50]']['ndb_over_k']:.2f}")
    row("ndb[logmel,k=50] JS divergence",
        lambda r: f"{r['main']['ndb[logmel,k=50]']['js_divergence']:.3f}")
    row("ndb[logmel,k=10] NDB/k",
        lambda r: f"{r['ndb10']['ndb[logmel,k=10]']['ndb_over_k']:.2f}")
    row("multi-scale spectral distance (paired)",
        lambda r: _ci(r["spectral"]["mss"]["distance"], 2))
    row("SI-SDR dB (paired)", lambda r: _ci(r["spectral"]["si_sdr"]["db"], 1))
    head = "| metric | " + " | ".join(cols) + " | mu-law 8-bit |"
    lines = [head, "|---|" + "---:|" * (len(cols) + 1)]
    for name, values in rows:
        extra = "–"
        if name.startswith("multi-scale"):
            extra = _ci(mulaw["mss"]["distance"], 2)
        elif name.startswith("SI-SDR"):
            extra = _ci(mulaw["si_sdr"]["db"], 1)
        lines.append(f"| {name} | " + " | ".join(values) + f" | {extra} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main_()
