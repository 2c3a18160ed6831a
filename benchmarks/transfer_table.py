"""Timbre transfer on held-out pieces, judged note by note (issue #22's timbre-transfer table).

The inputs are solo lines of chorales no DDSP model trained on, rendered with a SoundFont none
trained on (FluidR3) in an instrument none trained on (clarinet, GM 71). Each ``--model
NAME=CKPT`` plays them through ``transfer``'s own path (the input's f0 and loudness tracked,
then rendered offline; ae models resynthesise through their encoder's z). Every output is
judged against the score:

* notes on pitch: each MIDI note's span (less 60 ms at both ends) is cut from the output and
  its pitch estimated by ``--estimator`` (crepe-full: the strict judge, octave errors count);
  the input is judged the same way (the ceiling the judge allows);
* spectral distance to the target: when ``--target NAME=FOLDER`` gives the same pieces rendered
  by that model's own instrument (the bundled SoundFont it learned from), the multi-scale
  spectral distance of the transfer to it, beside the input's distance to it. Lower than the
  input's means the transfer moved the timbre towards the instrument;
* speed: seconds to track and render, as x real time (one process, 2 threads).

    python benchmarks/transfer_table.py --inputs data/xfer-clarinet-fluid \\
        --pieces data/xfer-midi --model violin=waveloom/assets/ddsp-violin.safetensors \\
        --target violin=data/xfer-violin --out out/xfer

``--pieces`` is a folder of the held-out ``.mid`` files: only inputs whose name (less the
``-soprano`` style suffix and extension) matches one are used. Results: docs/ddsp.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

EDGE = 0.06  # seconds cut from both ends of a note before judging it (the glide between notes)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"{what} {item!r}: expected NAME=PATH")
        out[name] = value
    return out


def held_out_inputs(inputs: Path, pieces: Path) -> list[tuple[Path, Path]]:
    """(input wav, its MIDI) for every held-out piece, sorted by name."""
    keep = {p.stem for p in pieces.glob("*.mid")}
    found = sorted(w for w in inputs.rglob("*.wav") if w.stem in keep)
    if not found:
        raise SystemExit(f"no input in {inputs} matches a piece in {pieces}")
    return [(w, w.with_suffix(".midi")) for w in found]


def note_spans(midi_path: Path) -> list[tuple[int, float, float]]:
    """(pitch, start s, end s) of every note of the file's single line, edges trimmed."""
    import pretty_midi

    notes = [n for inst in pretty_midi.PrettyMIDI(str(midi_path)).instruments
             if not inst.is_drum for n in inst.notes]
    return [(n.pitch, n.start + EDGE, n.end - EDGE) for n in sorted(notes, key=lambda n: n.start)
            if n.end - n.start > 2 * EDGE + 0.05]


def judge(estimator, audio: np.ndarray, sr: int, spans) -> dict[str, int]:
    """Counts of error kinds over ``spans`` of ``audio`` (pitch.error_kind, 50 cents)."""
    from waveloom.evaluate.pitch import error_kind

    clips = [audio[int(a * sr): int(b * sr)] for _, a, b in spans]
    estimates = estimator.many(clips, sr)
    counts: dict[str, int] = {}
    for (pitch, _, _), est in zip(spans, estimates):
        kind = error_kind(est.midi, pitch, 50.0)
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def spectral_distance(target: Path, audio: np.ndarray, sr: int) -> float:
    """Multi-scale spectral distance of ``audio`` to the target rendering (shorter length)."""
    from waveloom.audio.io import load_audio
    from waveloom.audio.spectral import multiscale_spectral_distance

    ref, _ = load_audio(target, sr)
    n = min(len(ref), len(audio))
    return float(multiscale_spectral_distance(ref[:n].astype(np.float32),
                                              audio[:n].astype(np.float32)))


def transfer(model, audio: np.ndarray, name: str, f0_method: str | None
             ) -> tuple[np.ndarray, float]:
    """(output audio, seconds) through ``transfer``'s offline path."""
    from waveloom.models.ddsp.perform import audio_controls, render

    start = time.perf_counter()
    controls = audio_controls(model, audio, name, f0_method=f0_method)
    out = render(model, controls, length=len(audio))
    return out, time.perf_counter() - start


def _merge(total: dict, counts: dict) -> None:
    for k, v in counts.items():
        total[k] = total.get(k, 0) + v


def run_model(name: str, ckpt: Path, items, target: Path | None, estimator, args) -> dict:
    """Every held-out input through one checkpoint: pitch counts, distances, speed."""
    from waveloom.audio.io import load_audio, save_audio
    from waveloom.models.load import load_checkpoint

    model, run = load_checkpoint(ckpt, map_location="cpu")
    model.eval()
    sr = run.data.sample_rate
    counts: dict[str, int] = {}
    dist, base, seconds, audio_s = [], [], 0.0, 0.0
    for wav, midi in items:
        audio, _ = load_audio(wav, sr)
        out, took = transfer(model, audio, wav.name, args.f0_method)
        seconds, audio_s = seconds + took, audio_s + len(audio) / sr
        save_audio(args.out / name / wav.name, out, sr)
        _merge(counts, judge(estimator, out, sr, note_spans(midi)))
        if target is not None:
            tgt = next(target.rglob(wav.name))
            dist.append(spectral_distance(tgt, out, sr))
            base.append(spectral_distance(tgt, audio, sr))
    return {"counts": counts, "notes": sum(counts.values()), "x_real_time": audio_s / seconds,
            "distance": float(np.mean(dist)) if dist else None,
            "input_distance": float(np.mean(base)) if base else None, "audio_seconds": audio_s}


def input_row(items, sr: int, estimator) -> dict:
    """The judge on the inputs themselves (its ceiling on this data)."""
    from waveloom.audio.io import load_audio

    counts: dict[str, int] = {}
    for wav, midi in items:
        audio, _ = load_audio(wav, sr)
        _merge(counts, judge(estimator, audio, sr, note_spans(midi)))
    return {"counts": counts, "notes": sum(counts.values())}


def table(rows: dict, estimator: str) -> str:
    lines = [f"| model | notes on pitch ({estimator}, 50 cents) | octave / other / unvoiced | "
             "spectral distance to the instrument's rendering (input's) | x real time |",
             "|---|---:|---|---|---:|"]
    for name, r in rows.items():
        c = r["counts"]
        dist = ("-" if r.get("distance") is None
                else f"{r['distance']:.2f} ({r['input_distance']:.2f})")
        speed = f"{r['x_real_time']:.1f}" if "x_real_time" in r else "-"
        lines.append(f"| {name} | {c.get('correct', 0)}/{r['notes']} | {c.get('octave', 0)} / "
                     f"{c.get('other', 0) + c.get('fifth', 0)} / {c.get('unvoiced', 0)} | "
                     f"{dist} | {speed} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--inputs", type=Path, required=True, help="render-midi folder of inputs")
    p.add_argument("--pieces", type=Path, required=True, help="folder of the held-out .mid")
    p.add_argument("--model", action="append", default=[], help="NAME=CKPT (repeat)")
    p.add_argument("--target", action="append", default=[], help="NAME=render folder")
    p.add_argument("--estimator", default="crepe-full")
    p.add_argument("--hop", type=float, default=0.02, help="judge's hop in seconds")
    p.add_argument("--f0-method", default="yin", help="transfer's tracker (the verb's default)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    import torch

    from waveloom.evaluate.pitch import get_estimator

    torch.set_num_threads(args.threads)
    items = held_out_inputs(args.inputs, args.pieces)
    models, targets = _pairs(args.model, "--model"), _pairs(args.target, "--target")
    estimator = get_estimator(args.estimator, hop_seconds=args.hop)
    rows = {"input (FluidR3 clarinet)": input_row(items, 16000, estimator)}
    for name, ckpt in models.items():
        tgt = Path(targets[name]) if name in targets else None
        rows[name] = run_model(name, Path(ckpt), items, tgt, estimator, args)
        print(name, json.dumps(rows[name]), flush=True)
    text = table(rows, args.estimator)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(text + "\n")
    (args.out / "results.json").write_text(json.dumps(
        {"pieces": [w.name for w, _ in items], "rows": rows}, indent=2))
    print(f"{len(items)} pieces\n{text}")


if __name__ == "__main__":
    main()
