"""Transcription scores on a held-out split (issue #23 part 3's goal: note F1 >= 0.9 with 50 ms
onsets on renders of unseen pieces by a SoundFont the transcriber never heard).

    python benchmarks/transcription_eval.py runs/transcriber/model.safetensors \\
        cache/chorales-fluid --split test

Every example of the split is transcribed whole (``waveloom.evaluate.transcription``) and
scored against its own score (the cache's note table) by mir_eval: note (onset within 50 ms and
the right pitch), note with offset, and frame precision / recall / F1, averaged over pieces as
Hawthorne et al. 2018 report them; the pooled note F1 over all notes is printed too.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from waveloom.data.cache import AudioCache
from waveloom.evaluate.transcription import load_transcriber, score, transcribe_audio


def reference_notes(cache: AudioCache, i: int) -> np.ndarray:
    table = np.asarray(cache.note_table(i), np.float64)
    sr = cache.sample_rate
    return np.column_stack([table[:, 0] / sr, table[:, 1] / sr, table[:, 2]])


def evaluate(checkpoint: str, cache_dir: str, split: str, limit: int | None,
             onset_threshold: float, frame_threshold: float) -> dict:
    model = load_transcriber(checkpoint)
    cache = AudioCache(cache_dir)
    indices = cache.split_indices(split)[:limit]
    rows, groups, seconds, started = [], [], 0.0, time.perf_counter()
    found = n_est = n_ref = 0
    for i in tqdm(indices, desc="transcribe", unit="piece"):
        audio = cache.clip(int(i))
        seconds += len(audio) / cache.sample_rate
        ref = reference_notes(cache, int(i))
        est = transcribe_audio(model, audio, onset_threshold, frame_threshold)
        rows.append(score(ref, est))
        groups.append(cache.entries[int(i)])
        p, r, _ = rows[-1]["note"]
        found += round(r * len(ref))
        n_est, n_ref = n_est + len(est), n_ref + len(ref)
    mean = {k: [float(np.mean([row[k][j] for row in rows])) for j in range(3)]
            for k in rows[0]}
    per_piece = {k: [row[k][2] for row in rows] for k in rows[0]}
    pooled_p, pooled_r = found / max(n_est, 1), found / max(n_ref, 1)
    pooled = 2 * pooled_p * pooled_r / max(pooled_p + pooled_r, 1e-12)
    return {"pieces": len(rows), "reference_notes": n_ref, "estimated_notes": n_est, "rows": rows,
            "entries": groups,
            "audio_seconds": seconds, "wall_seconds": time.perf_counter() - started,
            "mean_over_pieces": mean, "pooled_note_f1": pooled, "f1_per_piece": per_piece}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("cache", help="an audio cache with scores (prepare --format maestro)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=None, help="first N pieces only")
    ap.add_argument("--onset-threshold", type=float, default=0.5)
    ap.add_argument("--frame-threshold", type=float, default=0.5)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--by", default=None, metavar="KEY",
                    help="also a table per value of this manifest key, e.g. instrument_str "
                         "(the ensemble a chorale was rendered in)")
    ap.add_argument("--record", action="store_true",
                    help="add the note and frame F1 (with 95%% bootstrap intervals over pieces) "
                         "to the checkpoint's card (waveloom models)")
    ap.add_argument("--headline", action="store_true",
                    help="with --record: the note F1 becomes the card's headline figure")
    ap.add_argument("--label", default=None,
                    help="what the audio is, for the card (default: the cache's name)")
    args = ap.parse_args(argv)
    result = evaluate(args.checkpoint, args.cache, args.split, args.limit,
                      args.onset_threshold, args.frame_threshold)
    print(f"{result['pieces']} pieces, {result['audio_seconds'] / 60:.1f} min of audio, "
          f"{result['reference_notes']} notes; {result['wall_seconds']:.0f} s")
    print("| score | precision | recall | F1 |\n|---|---:|---:|---:|")
    for name, (p, r, f) in result["mean_over_pieces"].items():
        print(f"| {name} | {p:.3f} | {r:.3f} | {f:.3f} |")
    print(f"pooled note F1 over all notes: {result['pooled_note_f1']:.3f}")
    if args.by:
        print(breakdown(result, args.by))
    if args.json:
        kept = {k: v for k, v in result.items() if k not in ("rows", "entries")}
        args.json.write_text(json.dumps(kept, indent=1))
    if args.record:
        print(f"recorded in {record_result(args, result, argv)}")
    return 0


def breakdown(result: dict, key: str) -> str:
    """Note and frame scores averaged over the pieces of each value of manifest ``key``."""
    by: dict[str, list[dict]] = {}
    for row, entry in zip(result["rows"], result["entries"]):
        by.setdefault(str(entry.get(key, "?")), []).append(row)
    lines = [f"| {key} | pieces | note P | note R | note F1 | frame F1 |",
             "|---|---:|---:|---:|---:|---:|"]
    for value, group in sorted(by.items()):
        p, r, f = (float(np.mean([g["note"][j] for g in group])) for j in range(3))
        frame = float(np.mean([g["frame"][2] for g in group]))
        lines.append(f"| {value} | {len(group)} | {p:.3f} | {r:.3f} | {f:.3f} | {frame:.3f} |")
    return "\n".join(lines)


def record_result(args: argparse.Namespace, result: dict, argv: list[str] | None) -> Path:
    """Note F1 (the headline) and frame F1, each the mean over pieces with a bootstrap
    interval, into the checkpoint's records."""
    import sys

    from waveloom.evaluate.bootstrap import bootstrap_mean
    from waveloom.zoo.records import Measurement, command_line, record

    data = (f"{result['pieces']} {args.split} pieces of {args.label or Path(args.cache).name} "
            f"({result['audio_seconds'] / 60:.1f} min, {result['reference_notes']} notes)")
    command = command_line(sys.argv[1:] if argv is None else argv,
                           "benchmarks/transcription_eval.py")
    path = None
    for key, metric in (("frame", "frame F1"), ("note", "note F1 (50 ms onsets)")):
        ci = bootstrap_mean(result["f1_per_piece"][key])
        path = record(args.checkpoint, Measurement(
            metric=metric, value=round(ci.mean, 4), data=data, command=command,
            n=result["pieces"], interval=(round(ci.low, 4), round(ci.high, 4)),
            higher_is_better=True, headline=key == "note" and args.headline))
    return path


if __name__ == "__main__":
    raise SystemExit(main())
