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
    rows, seconds, started = [], 0.0, time.perf_counter()
    found = n_est = n_ref = 0
    for i in tqdm(indices, desc="transcribe", unit="piece"):
        audio = cache.clip(int(i))
        seconds += len(audio) / cache.sample_rate
        ref = reference_notes(cache, int(i))
        est = transcribe_audio(model, audio, onset_threshold, frame_threshold)
        rows.append(score(ref, est))
        p, r, _ = rows[-1]["note"]
        found += round(r * len(ref))
        n_est, n_ref = n_est + len(est), n_ref + len(ref)
    mean = {k: [float(np.mean([row[k][j] for row in rows])) for j in range(3)]
            for k in rows[0]}
    pooled_p, pooled_r = found / max(n_est, 1), found / max(n_ref, 1)
    pooled = 2 * pooled_p * pooled_r / max(pooled_p + pooled_r, 1e-12)
    return {"pieces": len(rows), "reference_notes": n_ref, "estimated_notes": n_est,
            "audio_seconds": seconds, "wall_seconds": time.perf_counter() - started,
            "mean_over_pieces": mean, "pooled_note_f1": pooled}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("cache", help="an audio cache with scores (prepare --format maestro)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=None, help="first N pieces only")
    ap.add_argument("--onset-threshold", type=float, default=0.5)
    ap.add_argument("--frame-threshold", type=float, default=0.5)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    result = evaluate(args.checkpoint, args.cache, args.split, args.limit,
                      args.onset_threshold, args.frame_threshold)
    print(f"{result['pieces']} pieces, {result['audio_seconds'] / 60:.1f} min of audio, "
          f"{result['reference_notes']} notes; {result['wall_seconds']:.0f} s")
    print("| score | precision | recall | F1 |\n|---|---:|---:|---:|")
    for name, (p, r, f) in result["mean_over_pieces"].items():
        print(f"| {name} | {p:.3f} | {r:.3f} | {f:.3f} |")
    print(f"pooled note F1 over all notes: {result['pooled_note_f1']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
