"""A hierarchy of ADA levels + prior versus a plain WaveNet of similar sampling cost.

1. Per level of ``--hierarchy`` (bottom first): spectral distance of reconstructions through
   that level, the decoder's bits per step given its codes, code perplexity; the prior's bits
   per top code (``waveloom.evaluate.hierarchy.level_scores``, on the first ``--recon-seconds``
   of ``--clips`` examples of ``--data``).
2. Long-range structure: ``--n`` samples of ``--seconds`` (>= 25) from the hierarchy and from
   the plain WaveNet ``--wavenet`` (unconditional), each scored by
   ``waveloom.evaluate.hierarchy.chroma_structure`` (chroma of seconds 0-5 vs 10-25), beside
   the same score of the real examples of ``--data`` that are long enough. Generation seconds
   are printed for both models (the cost comparison).

Samples land in ``OUT/hierarchy`` and ``OUT/wavenet``; the table is printed, ``--json`` writes
every number. Run (docs/hierarchy.md trains the models)::

    .venv/bin/python benchmarks/hierarchy_eval.py --hierarchy runs/hier/hierarchy.json \\
        --wavenet runs/chorale-wavenet/model.safetensors --data cache/chorales \\
        --n 4 --seconds 25 --threads 1 --out out/hierarchy-eval --json out/hierarchy-eval.json
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
from waveloom.data.cache import AudioCache
from waveloom.device import set_threads
from waveloom.evaluate.hierarchy import LATE, chroma_structure, level_scores
from waveloom.models.load import load_checkpoint
from waveloom.sampling.hierarchy import load_hierarchy
from waveloom.sampling.sample import sample


def _mean(rows: list[dict[str, float]], key: str) -> float:
    return float(np.mean([r[key] for r in rows])) if rows else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hierarchy", type=Path, required=True)
    ap.add_argument("--wavenet", type=Path, default=None, help="plain WaveNet baseline")
    ap.add_argument("--data", type=Path, required=True, help="the audio cache (chorales)")
    ap.add_argument("--split", default="train", help="split(s) of --data, e.g. test,valid")
    ap.add_argument("--n", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=25.0)
    ap.add_argument("--clips", type=int, default=2)
    ap.add_argument("--recon-seconds", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("out/hierarchy-eval"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    set_threads(args.threads)

    h = load_hierarchy(args.hierarchy)
    sr = h.sample_rate
    cache = AudioCache(args.data)
    idx = np.concatenate([cache.split_indices(s) for s in args.split.split(",")])
    clips = [cache.clip(int(i)) for i in idx]
    report: dict[str, object] = {"hierarchy": str(args.hierarchy), "seconds": args.seconds}

    report["levels"] = level_scores(h, clips[: args.clips], seconds=args.recon_seconds,
                                    seed=args.seed)
    print("level  hop  spectral distance  bits/step  perplexity")
    for row in report["levels"]:
        if row["level"] == "prior":
            print(f"prior  -    -                  {row['bits_per_code']:.3f} (bits/code)")
        else:
            print(f"{row['level']:<6} {row['hop']:<4} {row['spectral_distance']:<18.3f} "
                  f"{row['bits_per_step']:<10.3f} {row['perplexity']:.1f}")

    length = int(round(args.seconds * sr))
    real = [chroma_structure(c, sr) for c in clips if len(c) >= LATE[1] * sr]
    rows = {"real": real}
    timing = {}
    t0 = time.perf_counter()
    audio = sample(h, args.n, length, {}, SamplingOptions(seed=args.seed, progress=False))
    timing["hierarchy"] = time.perf_counter() - t0
    rows["hierarchy"] = []
    for i, a in enumerate(audio.float().cpu().numpy()):
        save_audio(args.out / "hierarchy" / f"sample-{i}.wav", a, sr)
        rows["hierarchy"].append(chroma_structure(a, sr))
    if args.wavenet is not None:
        wn, _ = load_checkpoint(args.wavenet)
        if wn.conditioning_keys():
            raise SystemExit(f"{args.wavenet}: use an unconditional WaveNet as the baseline "
                             f"(it reads {', '.join(wn.conditioning_keys())})")
        t0 = time.perf_counter()
        audio = sample(wn, args.n, length, {}, SamplingOptions(seed=args.seed, progress=False))
        timing["wavenet"] = time.perf_counter() - t0
        rows["wavenet"] = []
        for i, a in enumerate(audio.float().cpu().numpy()):
            save_audio(args.out / "wavenet" / f"sample-{i}.wav", a, sr)
            rows["wavenet"].append(chroma_structure(a, sr))
    print(f"\nchroma structure (seconds 0-5 vs 10-{LATE[1]:g}), mean over clips:")
    print("source     clips  profile corr.  frame corr.  chroma change  key clarity  "
          "same key  generation s")
    for name, r in rows.items():
        gen = f"{timing[name]:.1f}" if name in timing else "-"
        print(f"{name:<10} {len(r):<6} {_mean(r, 'profile_correlation'):<14.3f} "
              f"{_mean(r, 'frame_correlation'):<12.3f} {_mean(r, 'chroma_change'):<14.3f} "
              f"{_mean(r, 'key_clarity'):<12.3f} {_mean(r, 'same_key'):<9.2f} {gen}")
    report["structure"] = rows
    report["generation_seconds"] = timing
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
