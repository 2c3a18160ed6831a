"""Time the strict pitch judge (CREPE full) on a 35-note folder of 4 s notes (issue #20).

Copies 35 rendered notes (pitches 48-82, one per pitch, programs drawn at random) into
``ROOT/pitch35/`` as ``<instrument>_k<pitch>.wav`` (targets from the names), then runs
``waveloom evaluate ROOT/pitch35 --metrics pitch --labels-from-names k`` for each
estimator / hop / decoder given, and prints accuracy, the error counts, frames and seconds.

    python benchmarks/pitch_judge_speed.py --root out/smalln --runs crepe-full:0.1:weighted \\
        crepe-full:0.1:viterbi crepe-tiny:0.01:viterbi
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from waveloom.cli import main as waveloom


def make_folder(root: Path) -> Path:
    notes = json.loads((root / "real" / "examples.json").read_text())
    out = root / "pitch35"
    if out.is_dir():
        return out
    out.mkdir()
    rng = np.random.default_rng(0)
    for pitch in range(48, 83):
        names = sorted(n for n, e in notes.items() if e["pitch"] == pitch and e["velocity"] == 120)
        name = names[int(rng.integers(len(names)))]
        shutil.copy(root / "real" / "audio" / f"{name}.wav",
                    out / f"{name.rsplit('-', 2)[0]}_k{pitch:03d}.wav")
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", type=Path, default=Path("out/smalln"))
    p.add_argument("--runs", nargs="+", default=["crepe-full:0.01:viterbi"],
                   help="ESTIMATOR:HOP:DECODER")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    folder = make_folder(args.root)
    for spec in args.runs:
        est, hop, decoder = spec.split(":")
        out = args.root / f"pitch35-{est}-{hop}-{decoder}.json"
        t0 = time.monotonic()
        waveloom(["evaluate", str(folder), "--metrics", "pitch", "--labels-from-names", "k",
                  "--pitch-estimator", est, "--pitch-hop", hop, "--pitch-decoder", decoder,
                  "-q", "--json", str(out)])
        wall = time.monotonic() - t0
        r = next(v for k, v in json.loads(out.read_text()).items() if k.startswith("pitch["))
        print(f"{spec}: accuracy {r['accuracy']['mean']:.3f} errors {r['errors']} "
              f"frames {r['frames']} judge {r['seconds']:.1f} s "
              f"({1000 * r['seconds'] / max(1, r['frames']):.1f} ms/frame), wall {wall:.1f} s",
              flush=True)


if __name__ == "__main__":
    main()
