"""Which set distance separates which conditions at which n? (issue #20's sanity table)

Pools of one-second notes at 16 kHz (the first second of NSynth-style renders):

* ``reference``: 500 notes rendered with TimGM6mb (the default SoundFont);
* ``real A`` / ``real B``: two more disjoint draws of 500 TimGM6mb notes (same distribution as
  the reference: every distance should say "no difference");
* ``FluidR3 swap``: 500 notes of the same programs rendered with FluidR3_GM;
* ``sines``: a sine at the pitch of a random real note (10 ms attack, amplitude 0.5);
* ``white noise``: Gaussian noise at RMS -20 dBFS (10 ms attack).

For every n in 18, 50, 150, 500 the first n notes of each condition are compared with the first
n of the reference (both sets have n clips, as a user comparing 18 generated with 18 real notes
would), in each embedding: FAD on clip means and on every frame (both with bootstrap intervals),
FAD-inf on frames, and KID on clip means; and CREPE's pitch accuracy of the condition (no
reference needed). Each pool is embedded once (cached in ROOT/emb-*.npz).

Run (after rendering, see docs/evaluation.md)::

    python benchmarks/eval_small_n.py --root out/smalln --table out/smalln/table.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from waveloom.audio.crepe import activations, decode_pitch, frame_audio, load_crepe
from waveloom.evaluate.audioset import load_set
from waveloom.evaluate.fad import fad_from_embeddings, fad_inf, fad_interval
from waveloom.evaluate.kid import kid
from waveloom.evaluate.pitch import weighted_median

SR = 16000
NS = (18, 50, 150, 500)
POOL = 500
CONDITIONS = ("real A", "real B", "FluidR3 swap", "sines", "white noise")


def pools(root: Path) -> dict[str, tuple[list[np.ndarray], list[int]]]:
    """name -> (clips [T] of 1 s, MIDI pitches), 500 each, disjoint real draws."""
    real = load_set(root / "real", sample_rate=SR, max_seconds=1.0)
    fluid = load_set(root / "fluid", sample_rate=SR, max_seconds=1.0)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(real))
    pitch = real.label_values("pitch")

    def take(audio_set, idx):
        return [audio_set.clip(int(i)) for i in idx], [audio_set.labels[int(i)]["pitch"]
                                                        for i in idx]

    out = {"reference": take(real, order[:POOL]), "real A": take(real, order[POOL:2 * POOL]),
           "real B": take(real, order[2 * POOL:3 * POOL]),
           "FluidR3 swap": take(fluid, rng.permutation(len(fluid))[:POOL])}
    t = np.arange(SR) / SR
    env = np.minimum(1.0, t / 0.01)
    targets = [int(pitch[i]) for i in rng.integers(0, len(real), POOL)]
    out["sines"] = ([(0.5 * env * np.sin(2 * np.pi * 440.0 * 2 ** ((p - 69) / 12) * t + ph))
                     .astype(np.float32) for p, ph in zip(targets, rng.uniform(0, 6.28, POOL))],
                    targets)
    out["white noise"] = ([(0.1 * env * rng.normal(size=SR)).astype(np.float32)
                           for _ in range(POOL)], targets)
    return out


def embed(clips: list[np.ndarray], capacity: str, hop: float) -> dict[str, object]:
    """CREPE frames (silent ones dropped, as the embedding does), counts and note pitches."""
    model = load_crepe(capacity)
    frames, counts, probs = [], [], []
    for clip in clips:
        f, rms_db = frame_audio(clip, SR, hop)
        loud = rms_db > -60.0
        e, p = activations(model, f[loud] if bool(loud.any()) else f, 512)
        frames.append(e.numpy())
        probs.append(p)
        counts.append(len(e))
    midi = []
    for p in probs:
        m, per = decode_pitch(p)
        voiced = per >= 0.5
        midi.append(weighted_median(m[voiced].double().numpy(), per[voiced].double().numpy())
                    if bool(voiced.any()) else np.nan)
    return {"frames": np.concatenate(frames), "counts": np.array(counts), "midi": np.array(midi)}


def cached_embedding(root: Path, name: str, clips, capacity: str, hop: float) -> dict:
    path = root / f"emb-{capacity}-{hop:g}-{name.replace(' ', '_')}.npz"
    if path.is_file():
        with np.load(path) as data:
            return dict(data)
    t0 = time.monotonic()
    out = embed(clips, capacity, hop)
    print(f"embedded {name} with crepe-{capacity} in {time.monotonic() - t0:.0f} s", flush=True)
    np.savez(path, **out)
    return out


def first(emb: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(clip means [n, D], frames of those n clips)."""
    counts = emb["counts"][:n]
    frames = emb["frames"][: int(counts.sum())]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    means = np.stack([frames[s : s + c].mean(0) for s, c in zip(starts, counts)])
    return means, frames


def cell(ref: dict, test: dict, targets: list[int], n: int, seed: int) -> dict[str, str]:
    rm, rf = first(ref, n)
    tm, tf = first(test, n)
    out = {}
    for key, (a, b, reps) in {"fad (clip means)": (tm, rm, 200),
                              "fad (frames)": (tf, rf, 50)}.items():
        lo, hi = fad_interval(a, b, resamples=reps, seed=seed)
        out[key] = f"{fad_from_embeddings(a, b):.3g} [{lo:.3g}, {hi:.3g}]"
    inf = fad_inf(tf, rf, seed=seed)
    out["fad_inf (frames)"] = f"{inf['value']:.3g} [{inf['ci'][0]:.3g}, {inf['ci'][1]:.3g}]"
    k = kid(tm, rm, resamples=1000, seed=seed)
    out["kid (clip means)"] = f"{k['value']:.3g} [{k['ci'][0]:.3g}, {k['ci'][1]:.3g}]"
    est = test["midi"][:n]
    ok = np.isfinite(est) & (np.abs(est - np.asarray(targets[:n])) <= 0.5)
    out["pitch accuracy (no reference)"] = f"{ok.mean():.2f}"
    return out


def table(root: Path, capacity: str, hop: float) -> str:
    data = pools(root)
    embs = {name: cached_embedding(root, name, clips, capacity, hop)
            for name, (clips, _) in data.items()}
    lines = [f"| crepe-{capacity} (hop {hop:g} s) | n | " + " | ".join(CONDITIONS) + " |",
             "|---|---:|" + "---:|" * len(CONDITIONS)]
    rows: dict[tuple[str, int], list[str]] = {}
    for n in NS:
        for cond in CONDITIONS:
            t0 = time.monotonic()
            for metric, text in cell(embs["reference"], embs[cond], data[cond][1], n, 0).items():
                rows.setdefault((metric, n), []).append(text)
            print(f"n={n} {cond}: {time.monotonic() - t0:.0f} s", flush=True)
    for (metric, n), texts in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        lines.append(f"| {metric} | {n} | " + " | ".join(texts) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", type=Path, default=Path("out/smalln"))
    p.add_argument("--table", type=Path, default=None)
    p.add_argument("--capacity", default="tiny", choices=["tiny", "full"])
    p.add_argument("--hop", type=float, default=0.05, help="CREPE hop in seconds")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    text = table(args.root, args.capacity, args.hop)
    print(text)
    if args.table:
        args.table.write_text(text + "\n")


if __name__ == "__main__":
    main()
