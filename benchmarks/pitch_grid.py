"""Every (instrument, pitch) cell of a note model, judged by a strict CREPE (issue #21's grid).

Generates one note per cell (the model's instruments x MIDI pitches ``--low``..``--high``,
``--seconds`` long, one batch per instrument), estimates each note's pitch with CREPE (``full``
capacity, Viterbi decoder by default) and counts a note correct only within ``--tolerance``
cents of its target: an octave or a fifth away is an error, and those are also counted on their
own. Writes to ``--out``:

* ``grid.json``: every cell (target, estimate, cents off, voiced fraction, error kind);
* ``grid.md``: the grid as a markdown table (``ok``, ``8va`` / ``5th`` / ``x`` / ``-`` for
  octave, fifth, other, unvoiced), ready for a docs page;
* ``grid.png``: the same as a picture;
* with ``--wavs``, the notes as ``<instrument>_k<pitch>.wav`` (names the pitch judge of
  ``waveloom evaluate --metrics pitch`` reads its targets from).

``--real FOLDER`` (a ``render-notes`` folder) scores the rendered notes of the same cells where
the folder has them: the judge's ceiling on this grid.

    PYTHONPATH=. python benchmarks/pitch_grid.py waveloom/assets/wavenet-small-notes.safetensors \\
        --out out/pitch-grid --low 48 --high 76 --seconds 2 --seed 0
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from waveloom.audio.io import save_audio
from waveloom.config import SamplingOptions
from waveloom.evaluate.pitch import get_estimator, pitch_accuracy
from waveloom.models.load import load_checkpoint, read_extra
from waveloom.sampling.sample import sample

MARK = {"correct": "ok", "octave": "8va", "fifth": "5th", "other": "x", "unvoiced": "-"}
COLOUR = {"correct": 0, "octave": 1, "fifth": 2, "other": 3, "unvoiced": 4}


def generate_cells(model, chosen: list[tuple[int, str]], pitches: list[int], args, sr: int
                   ) -> dict[str, np.ndarray]:
    """One batch per chosen (instrument id, name): {name: audio [len(pitches), T]}."""
    out = {}
    for inst, name in chosen:
        cond = {"pitch": torch.tensor(pitches), "instrument": torch.full((len(pitches),), inst)}
        if args.family == "codec_lm":
            out[name] = codec_lm_cells(model, cond, args)
            continue
        options = SamplingOptions(seed=args.seed, temperature=args.temperature,
                                  engine=args.engine, progress=False,
                                  denoising_steps=args.steps, sampler=args.sampler)
        started = time.perf_counter()
        out[name] = sample(model, len(pitches), int(args.seconds * sr), cond, options).numpy()
        print(f"  {name}: {len(pitches)} x {args.seconds} s in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
    return out


def codec_lm_cells(model, cond: dict, args) -> np.ndarray:
    """A codec LM's notes: codes drawn with ``--cfg`` guidance, decoded by its own codec (the
    one ``waveloom generate`` finds and checks by fingerprint)."""
    from waveloom.sampling.codec_lm import CodeSampling, decode_codes, sample_codes

    frames = max(1, int(round(args.seconds * model.config.frame_rate)))
    opts = CodeSampling(cfg=args.cfg, temperature=args.temperature, top_k=args.top_k,
                        seed=args.seed)
    started = time.perf_counter()
    codes = sample_codes(model, len(cond["pitch"]), frames, cond, None, opts)
    audio = decode_codes(args._codec, codes).float().cpu().numpy()
    print(f"  {len(cond['pitch'])} x {args.seconds} s of codes in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    return audio


def _codec_rate(model, args) -> int:
    """The audio rate of the LM's codec (found and checked as `generate` does; kept on args)."""
    from waveloom.app._generate_codes import find_codec

    args._codec = find_codec(model, args.checkpoint, torch.device("cpu"), encodes=False)
    return int(args._codec.config.sample_rate)


def judge(audio: dict[str, np.ndarray], pitches: list[int], sr: int, args) -> dict[str, dict]:
    """{instrument: pitch_accuracy report} with the strict CREPE judge."""
    estimator = get_estimator(args.judge, hop_seconds=args.hop, decoder=args.decoder)
    return {name: pitch_accuracy(list(clips), pitches, sr, args.tolerance, estimator)
            for name, clips in audio.items()}


def real_cells(folder: Path, vocab: list[str], pitches: list[int], seconds: float, sr: int
               ) -> dict[str, tuple[list[int], list[np.ndarray]]]:
    """Rendered notes of the grid's cells (velocity nearest 100) that ``folder`` holds."""
    from waveloom.audio.io import load_audio

    table = json.loads((folder / "examples.json").read_text())
    cells: dict[str, tuple[list[int], list[np.ndarray]]] = {}
    for name in vocab:
        got_p, got_a = [], []
        for p in pitches:
            rows = [r for r in table.values()
                    if r["instrument_str"] == name and int(r["pitch"]) == p]
            if rows:
                row = min(rows, key=lambda r: abs(int(r["velocity"]) - 100))
                clip, _ = load_audio(folder / "audio" / f"{row['note_str']}.wav", sr)
                got_p.append(p)
                got_a.append(np.asarray(clip, dtype=np.float32)[: int(seconds * sr)])
        cells[name] = (got_p, got_a)
    return cells


def markdown(reports: dict[str, dict], pitches: list[int]) -> str:
    """The grid as a markdown table, one row per instrument, plus each row's count."""
    head = "| instrument | " + " | ".join(map(str, pitches)) + " | on pitch |"
    rule = "|---|" + "---|" * len(pitches) + "---:|"
    lines = [head, rule]
    for name, rep in reports.items():
        marks = {row["target"]: MARK[row["error"]] for row in rep["notes"]}
        cells = " | ".join(marks.get(p, "") for p in pitches)
        lines.append(f"| {name} | {cells} | {rep['correct']}/{rep['total']} |")
    return "\n".join(lines) + "\n"


def plot(reports: dict[str, dict], pitches: list[int], path: Path, title: str) -> None:
    """A colour grid: instruments down, pitches across, one colour per error kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    grid = np.full((len(reports), len(pitches)), np.nan)
    for i, rep in enumerate(reports.values()):
        for row in rep["notes"]:
            grid[i, pitches.index(row["target"])] = COLOUR[row["error"]]
    cmap = ListedColormap(["#3a9d5d", "#e0a030", "#d070c0", "#d04040", "#909090"])
    fig, ax = plt.subplots(figsize=(max(6, 0.32 * len(pitches) + 2), 0.5 * len(reports) + 1.6))
    ax.imshow(grid, cmap=cmap, vmin=-0.5, vmax=4.5, aspect="auto")
    ax.set_xticks(range(len(pitches)), [str(p) for p in pitches], fontsize=7)
    ax.set_yticks(range(len(reports)), list(reports), fontsize=8)
    ax.set_xlabel("MIDI pitch")
    ax.set_title(title, fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(v)) for v in range(5)]
    ax.legend(handles, ["on pitch", "octave", "fifth", "other", "unvoiced"], fontsize=7,
              loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=5, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def levels(audio: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per instrument: the median RMS of its cells and the share below 0.01 (-40 dBFS), so a
    grid that gains pitch by going quiet shows it."""
    out = {}
    for name, clips in audio.items():
        rms = np.array([np.sqrt(np.mean(np.square(c, dtype=np.float64))) for c in clips])
        out[name] = {"median_rms": float(np.median(rms)), "quiet_share": float(np.mean(rms < 0.01))}
    return out


def level_table(generated: dict[str, dict], real: dict[str, dict] | None = None) -> str:
    """Markdown: median RMS and quiet share of each instrument's cells (and of the real notes)."""
    lines = ["| instrument | median RMS | RMS < 0.01 | real median RMS | real RMS < 0.01 |",
             "|---|---:|---:|---:|---:|"]
    for name, g in generated.items():
        r = (real or {}).get(name)
        tail = f"{r['median_rms']:.3f} | {r['quiet_share']:.2f}" if r else "- | -"
        lines.append(f"| {name} | {g['median_rms']:.3f} | {g['quiet_share']:.2f} | {tail} |")
    return "\n".join(lines) + "\n"


def summary(reports: dict[str, dict]) -> dict[str, object]:
    """Totals over the grid: correct, total, and each error kind."""
    errors = {k: sum(r["errors"][k] for r in reports.values()) for k in MARK if k != "correct"}
    correct = sum(r["correct"] for r in reports.values())
    total = sum(r["total"] for r in reports.values())
    return {"correct": correct, "total": total, "accuracy": correct / max(1, total),
            "errors": errors}


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--low", type=int, default=48)
    p.add_argument("--high", type=int, default=76)
    p.add_argument("--every", type=int, default=1,
                   help="every K-th pitch from --low (a coarser grid for sweeps)")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--engine", default="auto")
    p.add_argument("--cfg", type=float, default=3.0,
                   help="codec LMs: classifier-free guidance scale (1: off)")
    p.add_argument("--top-k", type=int, default=0, help="codec LMs: top-k (0: all)")
    p.add_argument("--steps", type=int, default=None,
                   help="diffusion models: denoising steps (default: the model's)")
    p.add_argument("--sampler", default=None, help="diffusion models: ddpm | ddim | dpm-solver")
    p.add_argument("--judge", default="crepe-full", help="crepe-full | crepe-tiny | pyin")
    p.add_argument("--decoder", default="viterbi", help="CREPE decoder: viterbi | weighted")
    p.add_argument("--hop", type=float, default=0.02, help="CREPE hop in seconds")
    p.add_argument("--tolerance", type=float, default=50.0, help="cents")
    p.add_argument("--real", type=Path, default=None, help="render-notes folder: the ceiling")
    p.add_argument("--instruments", default="",
                   help="only the instruments whose names hold one of these comma-separated "
                        "strings (default: all the model knows)")
    p.add_argument("--wavs", action="store_true", help="also write every note as a WAV")
    p.add_argument("--record", action="store_true",
                   help="add the grid's share on pitch (Wilson 95%% interval) to the "
                        "checkpoint's card (waveloom models)")
    return p.parse_args()


def record_grid(args: argparse.Namespace, total: dict, instruments: int, pitches: int) -> Path:
    """The grid's share on pitch, with a Wilson score interval, as the card's headline."""
    import sys

    from waveloom.evaluate.bootstrap import wilson_interval
    from waveloom.zoo.records import Measurement, command_line, record

    k, n = total["correct"], total["total"]
    low, high = wilson_interval(k, n)
    every = f" every {args.every}" if args.every > 1 else ""
    chosen = f" (those named *{args.instruments}*)" if args.instruments else ""
    data = (f"{instruments} instruments{chosen} x MIDI {args.low}-{args.high}{every}, one "
            f"{args.seconds:g}-s note a cell, seed {args.seed}, temperature "
            f"{args.temperature:g}")
    if args.steps or args.sampler:
        data += f", {args.sampler or 'default sampler'} at {args.steps or 'all'} steps"
    if getattr(args, "family", "") == "codec_lm":
        data += f", cfg {args.cfg:g}"
    return record(args.checkpoint, Measurement(
        metric=f"on pitch ({args.judge} {args.decoder}, {args.tolerance:g} cents, octave "
               "errors count)", value=round(100 * k / n, 1), unit="%", data=data,
        command=command_line(sys.argv[1:], "benchmarks/pitch_grid.py"), n=n,
        interval=(round(100 * low, 1), round(100 * high, 1)),
        higher_is_better=True, headline=True))

def chosen_instruments(args: argparse.Namespace) -> list[tuple[int, str]]:
    """(id, name) of the model's instruments that ``--instruments`` picks (all by default)."""
    vocab = read_extra(args.checkpoint).get("instruments", []) or ["instrument 0"]
    wanted = [w for w in args.instruments.split(",") if w]
    chosen = [(i, n) for i, n in enumerate(vocab) if not wanted or any(w in n for w in wanted)]
    if not chosen:
        raise SystemExit(f"--instruments {args.instruments}: none of the model's instruments "
                         f"({', '.join(vocab)}) matches")
    return chosen


def main() -> None:
    args = parse()
    model, run = load_checkpoint(args.checkpoint)
    sr = run.data.sample_rate
    args.family = run.family
    if run.family == "codec_lm":  # its data rate is codes a second; the audio's is the codec's
        sr = _codec_rate(model, args)
    vocab = chosen_instruments(args)
    pitches = list(range(args.low, args.high + 1, args.every))
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{len(vocab)} instruments x {len(pitches)} pitches, {args.seconds} s, seed {args.seed}")
    audio = generate_cells(model, vocab, pitches, args, sr)
    vocab = [name for _, name in vocab]
    started = time.perf_counter()
    reports = judge(audio, pitches, sr, args)
    took = time.perf_counter() - started
    result = {"checkpoint": str(args.checkpoint), "judge": args.judge, "decoder": args.decoder,
              "hop_s": args.hop, "seed": args.seed, "seconds": args.seconds,
              "temperature": args.temperature, "judge_seconds": round(took, 1),
              "total": summary(reports), "cells": reports, "levels": levels(audio)}
    if args.real:
        cells = real_cells(args.real, vocab, pitches, args.seconds, sr)
        estimator = get_estimator(args.judge, hop_seconds=args.hop, decoder=args.decoder)
        real = {name: pitch_accuracy(clips, ps, sr, args.tolerance, estimator)
                for name, (ps, clips) in cells.items() if ps}
        result["real"] = {"total": summary(real), "cells": real,
                          "levels": levels({n: c for n, (_, c) in cells.items() if c})}
        (args.out / "real.md").write_text(markdown(real, pitches))
        print(f"real notes (ceiling): {summary(real)}")
    if args.wavs:
        for name, clips in audio.items():
            for p, clip in zip(pitches, clips):
                save_audio(args.out / f"{name}_k{p:03d}.wav", clip, sr)
    (args.out / "grid.json").write_text(json.dumps(result, indent=1, default=float))
    (args.out / "grid.md").write_text(markdown(reports, pitches))
    tot = result["total"]
    title = (f"{args.checkpoint.name}: {tot['correct']}/{tot['total']} on pitch\n"
             f"{args.judge} ({args.decoder}), {args.seconds} s notes, seed {args.seed}")
    plot(reports, pitches, args.out / "grid.png", title)
    print(markdown(reports, pitches))
    print(level_table(result["levels"], result.get("real", {}).get("levels")))
    print(f"{title.replace(chr(10), '; ')}; errors {tot['errors']}; judged in {took:.0f} s")
    if args.record:
        print(f"recorded in {record_grid(args, tot, len(vocab), len(pitches))}")


if __name__ == "__main__":
    main()
