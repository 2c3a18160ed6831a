"""Which set distance separates which conditions at which n? (issue #20's sanity table)

Pools of one-second notes at 16 kHz (the first second of NSynth-style renders):

* ``reference``: 500 notes rendered with TimGM6mb (Debian's ``timgm6mb-soundfont``);
* ``real A`` / ``real B``: two more disjoint draws of 500 TimGM6mb notes (same distribution as
  the reference: every distance should say "no difference");
* ``FluidR3 swap``: the notes of ``real A`` (same names, programs, pitches, velocities) rendered
  with FluidR3_GM: only the SoundFont differs;
* ``sines``: a sine at the pitch of a random real note (10 ms attack, amplitude 0.5);
* ``white noise``: Gaussian noise at RMS -20 dBFS (10 ms attack).

For every n in 18, 50, 150, 500 the first n notes of each condition are compared with the first
n of the reference (both sets have n clips, as a user comparing 18 generated with 18 real notes
would), in one embedding per run (``--embedding crepe-tiny | crepe-full | classifier``): FAD on
clip means and on every frame (bootstrap intervals), FAD-inf on frames, KID and KAD on clip
means, NDB on clip means (k = max(2, n // 20) k-means bins of the reference, bootstrap over the
condition's clips), and CREPE's pitch accuracy of the condition (no reference needed; bootstrap
over notes). Every entry carries a 95 % interval. Each pool
is embedded once (cached in ROOT/emb-*.npz; ``--embed-only`` just fills the cache).

Run (after rendering, see docs/evaluation.md)::

    python benchmarks/eval_small_n.py --root out/smalln --embedding crepe-tiny --table T.md
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from waveloom.audio.crepe import SILENCE_DB, activations, decode_pitch, frame_audio, load_crepe
from waveloom.audio.tuning import midi_hz
from waveloom.evaluate.audioset import load_set
from waveloom.evaluate.bootstrap import bootstrap_mean
from waveloom.evaluate.fad import fad_from_embeddings, fad_inf, fad_interval
from waveloom.evaluate.kid import kad, kid
from waveloom.evaluate.ndb import ndb
from waveloom.evaluate.pitch import weighted_median

SR = 16000
NS = (18, 50, 150, 500)
POOL = 500
CONDITIONS = ("real A", "real B", "FluidR3 swap", "sines", "white noise")


def pools(root: Path) -> dict[str, tuple[list[np.ndarray], list[int]]]:
    """name -> (clips [T] of 1 s, MIDI pitches), 500 each, disjoint real draws."""
    real = load_set(root / "real", sample_rate=SR, max_seconds=1.0)
    fluid = load_set(root / "fluid", sample_rate=SR, max_seconds=1.0)
    fluid_index = {name: i for i, name in enumerate(fluid.names)}
    rng = np.random.default_rng(0)
    order = rng.permutation(len(real))
    pitch = real.label_values("pitch")

    def take(audio_set, idx):
        return [audio_set.clip(int(i)) for i in idx], [audio_set.labels[int(i)]["pitch"]
                                                        for i in idx]

    real_a = order[POOL:2 * POOL]
    out = {"reference": take(real, order[:POOL]), "real A": take(real, real_a),
           "real B": take(real, order[2 * POOL:3 * POOL]),
           "FluidR3 swap": take(fluid, [fluid_index[real.names[int(i)]] for i in real_a])}
    t = np.arange(SR) / SR
    env = np.minimum(1.0, t / 0.01)
    targets = [int(pitch[i]) for i in rng.integers(0, len(real), POOL)]
    out["sines"] = ([(0.5 * env * np.sin(2 * np.pi * float(midi_hz(p)) * t + ph))
                     .astype(np.float32) for p, ph in zip(targets, rng.uniform(0, 6.28, POOL))],
                    targets)
    out["white noise"] = ([(0.1 * env * rng.normal(size=SR)).astype(np.float32)
                           for _ in range(POOL)], targets)
    return out


def embed_crepe(clips: list[np.ndarray], capacity: str, hop: float) -> dict[str, np.ndarray]:
    """CREPE frames (silent ones dropped, as the embedding does), counts and note pitches."""
    model = load_crepe(capacity)
    frames, counts, midi = [], [], []
    for clip in clips:
        f, rms_db = frame_audio(clip, SR, hop)
        loud = rms_db > SILENCE_DB
        e, p = activations(model, f[loud] if bool(loud.any()) else f, 512)
        frames.append(e.numpy())
        counts.append(len(e))
        m, per = decode_pitch(p)
        voiced = per >= 0.5
        midi.append(weighted_median(m[voiced].double().numpy(), per[voiced].double().numpy())
                    if bool(voiced.any()) else np.nan)
    return {"frames": np.concatenate(frames), "counts": np.array(counts), "midi": np.array(midi)}


def embed_classifier(clips: list[np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """The classifier's penultimate layer, one vector per clip (no pitch estimate)."""
    from waveloom.evaluate.classifier import ClassifierEmbedding

    emb = ClassifierEmbedding(path)
    rows = [emb.embed_clip(clip, SR) for clip in clips]
    frames = np.concatenate(rows)
    return {"frames": frames, "counts": np.ones(len(clips), np.int64),
            "midi": np.full(len(clips), np.nan)}


def cached_embedding(root: Path, name: str, clips, args) -> dict:
    tag = args.embedding + (f"-{args.hop:g}" if args.embedding.startswith("crepe") else "")
    path = root / f"emb-{tag}-{name.replace(' ', '_')}.npz"
    if path.is_file():
        with np.load(path) as data:
            return dict(data)
    t0 = time.monotonic()
    if args.embedding == "classifier":
        out = embed_classifier(clips, args.classifier)
    else:
        out = embed_crepe(clips, args.embedding.split("-")[1], args.hop)
    seconds = time.monotonic() - t0
    print(f"embedded {name} with {tag}: {len(out['frames'])} frames in {seconds:.0f} s "
          f"({1000 * seconds / len(out['frames']):.1f} ms/frame)", flush=True)
    np.savez(path, **out)
    return out


def first(emb: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(clip means [n, D], frames of those n clips)."""
    counts = emb["counts"][:n]
    frames = emb["frames"][: int(counts.sum())]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    means = np.stack([frames[s : s + c].mean(0) for s, c in zip(starts, counts)])
    return means, frames


def _fmt(entry: dict) -> str:
    return f"{entry['value']:.3g} [{entry['ci'][0]:.3g}, {entry['ci'][1]:.3g}]"


def cell(ref: dict, test: dict, targets: list[int], n: int, args) -> dict[str, dict]:
    """Every metric of one condition at one n: name -> {"value", "ci"} (and "n")."""
    rm, rf = first(ref, n)
    tm, tf = first(test, n)
    out: dict[str, dict] = {}
    pairs = {"fad (clip means)": (tm, rm, 200)}
    frames = len(tf) > len(tm) and not args.no_frames
    if frames:
        pairs["fad (frames)"] = (tf, rf, args.frame_resamples)
    for key, (a, b, reps) in pairs.items():
        out[key] = {"value": fad_from_embeddings(a, b),
                    "ci": fad_interval(a, b, resamples=reps, seed=0), "n": [len(a), len(b)]}
    if frames:
        out["fad_inf (frames)"] = fad_inf(tf, rf, seed=0)
    out["kid (clip means)"] = kid(tm, rm, resamples=1000, seed=0)
    out["kad (clip means)"] = kad(tm, rm, resamples=1000, seed=0)
    k = max(2, n // 20)
    res = ndb(rm, tm, k=k, seed=0, resamples=1000)
    out["ndb/k (clip means, k=n//20)"] = {"value": res["ndb_over_k"], "ci": res["ci"],
                                           "n": res["n"], "k": k}
    est = test["midi"][:n]
    if args.embedding != "classifier":
        ok = np.isfinite(est) & (np.abs(est - np.asarray(targets[:n])) <= 0.5)
        acc = bootstrap_mean(ok.astype(np.float64), resamples=1000, seed=0)
        out["pitch accuracy (no reference)"] = {"value": acc.mean, "ci": [acc.low, acc.high]}
    return out


def table(root: Path, args) -> tuple[str, dict]:
    data = pools(root)
    embs = {name: cached_embedding(root, name, clips[: args.max_clips if name != "reference"
                                                     else POOL], args)
            for name, (clips, _) in data.items()}
    if args.embed_only:
        return "", {}
    hop = f" (hop {args.hop:g} s)" if args.embedding.startswith("crepe") else ""
    lines = [f"| {args.embedding}{hop} | n | " + " | ".join(CONDITIONS) + " |",
             "|---|---:|" + "---:|" * len(CONDITIONS)]
    rows: dict[tuple[str, int], list[str]] = {}
    raw: dict[str, dict] = {}
    for n in [n for n in NS if n <= min(len(e["counts"]) for e in embs.values())]:
        for cond in CONDITIONS:
            t0 = time.monotonic()
            for metric, entry in cell(embs["reference"], embs[cond], data[cond][1], n,
                                      args).items():
                text = _fmt(entry)
                rows.setdefault((metric, n), []).append(text)
                raw[f"{metric}|{n}|{cond}"] = {"value": entry["value"], "ci": entry.get("ci")}
            print(f"n={n} {cond}: {time.monotonic() - t0:.0f} s", flush=True)
    for (metric, n), texts in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        lines.append(f"| {metric} | {n} | " + " | ".join(texts) + " |")
    return "\n".join(lines), raw


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", type=Path, default=Path("out/smalln"))
    p.add_argument("--table", type=Path, default=None, help="write the markdown table here")
    p.add_argument("--embedding", default="crepe-tiny",
                   choices=["crepe-tiny", "crepe-full", "classifier"])
    p.add_argument("--classifier", type=Path, default=None,
                   help="classifier file for --embedding classifier")
    p.add_argument("--hop", type=float, default=0.05, help="CREPE hop in seconds")
    p.add_argument("--frame-resamples", type=int, default=50,
                   help="bootstrap resamples of the frame FAD (each is a D x D problem)")
    p.add_argument("--no-frames", action="store_true",
                   help="skip FAD and FAD-inf on frames (2048-d crepe-full: each FAD-inf point "
                   "is two 2048 x 2048 eigendecompositions)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-clips", type=int, default=POOL,
                   help="embed only the first N clips of each condition (n <= N in the table)")
    p.add_argument("--embed-only", action="store_true", help="fill the embedding cache, stop")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    text, raw = table(args.root, args)
    if text:
        print(text)
    if args.table and text:
        args.table.write_text(text + "\n")
        args.table.with_suffix(".json").write_text(json.dumps(raw, indent=1) + "\n")


if __name__ == "__main__":
    main()
