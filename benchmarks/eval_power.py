"""How often does KID / KAD separate a condition from real notes at small n? (issue #20)

One table row per (embedding, metric, n) from the embeddings cached by
``benchmarks/eval_small_n.py``: over ``--draws`` random draws of n clips of a condition and n
of the reference pool (without replacement from the 500 of each), the share of draws whose 95 %
bootstrap interval lies above 0. For ``real A`` / ``real B`` (the same distribution as the
reference) that share is the false-positive rate (about 2.5 % for a calibrated one-sided
reading); for the others it is the power at that n. A single draw (the sanity table) can be
lucky either way; this says what a user should expect.

It also prints why CREPE struggles with sines: for each condition, the share of its clips whose
nearest reference clip (Euclidean, clip means) has the same MIDI pitch, and the median distance
to that nearest neighbour relative to real-to-real's. A pitch-centric embedding puts a sine
beside a real note of its pitch, about as close as two real notes are.

    python benchmarks/eval_power.py --root out/smalln --embeddings crepe-tiny-0.05 classifier
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from waveloom.evaluate.kid import kad, kid

CONDITIONS = ("real A", "real B", "FluidR3 swap", "sines", "white noise")


def load(root: Path, tag: str) -> dict[str, np.ndarray]:
    """condition -> clip means [500, D] from ROOT/emb-TAG-*.npz."""
    out = {}
    for name in ("reference", *CONDITIONS):
        with np.load(root / f"emb-{tag}-{name.replace(' ', '_')}.npz") as data:
            counts, frames = data["counts"], data["frames"]
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        out[name] = np.stack([frames[s : s + c].mean(0) for s, c in zip(starts, counts)])
    return out


def power(ref: np.ndarray, test: np.ndarray, n: int, draws: int, resamples: int
          ) -> dict[str, float]:
    """Share of draws whose KID / KAD interval excludes 0 from below (lower end > 0)."""
    rng = np.random.default_rng(1)
    hits = {"kid": 0, "kad": 0}
    for d in range(draws):
        x = test[rng.choice(len(test), n, replace=False)]
        y = ref[rng.choice(len(ref), n, replace=False)]
        for name, fn in (("kid", kid), ("kad", kad)):
            hits[name] += fn(x, y, resamples=resamples, seed=d)["ci"][0] > 0.0
    return {k: v / draws for k, v in hits.items()}


def neighbours(ref: np.ndarray, test: np.ndarray, ref_pitch, test_pitch) -> tuple[float, float]:
    """(share whose nearest reference clip has the same pitch, median nearest distance)."""
    sq = (test ** 2).sum(1)[:, None] + (ref ** 2).sum(1)[None] - 2 * test @ ref.T
    if test is ref:
        np.fill_diagonal(sq, np.inf)
    nn = sq.argmin(1)
    same = float(np.mean(np.asarray(ref_pitch)[nn] == np.asarray(test_pitch)[: len(test)]))
    return same, float(np.median(np.sqrt(np.maximum(sq[np.arange(len(test)), nn], 0))))


def pitch_share(emb: np.ndarray, pitch) -> float:
    """Share of the total variance of ``emb [N, D]`` between pitch classes (an R^2)."""
    pitch = np.asarray(pitch)
    centred = emb - emb.mean(0)
    between = sum((pitch == p).sum() * ((emb[pitch == p].mean(0) - emb.mean(0)) ** 2).sum()
                  for p in np.unique(pitch))
    return float(between / (centred ** 2).sum())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", type=Path, default=Path("out/smalln"))
    p.add_argument("--embeddings", nargs="+", default=["crepe-tiny-0.05", "classifier"],
                   help="cache tags of eval_small_n.py (crepe-tiny-0.05, crepe-full-0.25, ...)")
    p.add_argument("--ns", type=int, nargs="+", default=[18, 50])
    p.add_argument("--draws", type=int, default=200)
    p.add_argument("--resamples", type=int, default=500)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    from eval_small_n import pools

    pitches = {name: targets for name, (_, targets) in pools(args.root).items()}
    rows, raw = [], {}
    for tag in args.embeddings:
        emb = load(args.root, tag)
        base = neighbours(emb["reference"], emb["reference"], pitches["reference"],
                          pitches["reference"])[1]
        share = pitch_share(emb["reference"], pitches["reference"])
        print(f"{tag}: pitch explains {100 * share:.0f} % of the reference's variance")
        raw[f"{tag}|pitch_share"] = share
        for cond in CONDITIONS:
            same, dist = neighbours(emb["reference"], emb[cond], pitches["reference"],
                                    pitches[cond])
            cells = {n: power(emb["reference"], emb[cond], n, args.draws, args.resamples)
                     for n in args.ns}
            raw[f"{tag}|{cond}"] = {"nn_same_pitch": same, "nn_distance_ratio": dist / base,
                                    "power": cells}
            rows.append(f"| {tag} | {cond} | " + " | ".join(
                f"{cells[n]['kid']:.2f} / {cells[n]['kad']:.2f}" for n in args.ns)
                + f" | {same:.2f} | {dist / base:.2f} |")
            print(rows[-1], flush=True)
    head = ("| embedding | condition | " + " | ".join(f"n={n}: KID / KAD" for n in args.ns)
            + " | nearest reference clip has its pitch | nearest distance / real's |")
    print("\n".join([head, "|---|---|" + "---:|" * (len(args.ns) + 2), *rows]))
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1) + "\n")


if __name__ == "__main__":
    main()
