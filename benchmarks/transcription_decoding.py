"""Note decoders compared on one transcriber's predictions (issue 23: where are the notes lost?).

The transcriber's heads give onset, frame, offset and velocity probabilities; the paper's decoder
starts a note only where the onset probability crosses its threshold. This runs the model once
per piece and scores several decoders on the same probabilities, so a decoding change is
measured without retraining and without the model's run-to-run noise:

* ``paper``: :func:`waveloom.evaluate.transcription.decode` (onset threshold 0.5);
* ``paper@T``: the same at onset threshold T;
* ``nosplit@T``: the paper's decoder after an onset inside a note that is already sounding
  (the key's frame on for ``--held`` frames) is dropped unless its probability exceeds T:
  the held voices a chord re-triggers when one voice moves;
* ``rescue``: the paper's notes, plus a note wherever a key's frame probability turns on (above
  the frame threshold after at least one frame below it) with no decoded onset of that key
  within +-``--near`` frames, if it stays on for at least ``--min-frames`` frames: the notes a
  missed onset drops although the frame head hears them (a voice moving under held ones).

    python benchmarks/transcription_decoding.py CKPT CACHE [--split test] [--limit N]

With ``--census`` it also counts where the paper decoder's errors fall: a false note on a pitch
that is sounding (a held note re-triggered), an octave or another interval off a sounding note,
or in silence; a missed note that repeats the pitch just before it, whose pitch the estimate
already holds, or other (mir_eval's matching, as the scores).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transcription_eval import reference_notes  # noqa: E402

from waveloom.data.cache import AudioCache  # noqa: E402
from waveloom.data.note_labels import LOWEST_KEY  # noqa: E402
from waveloom.evaluate.transcription import (  # noqa: E402
    decode,
    load_transcriber,
    midi_hz,
    predict,
    score,
)


def rescue(probs: dict[str, np.ndarray], hop: float, near: int, min_frames: int,
           onset_threshold: float = 0.5, frame_threshold: float = 0.5) -> np.ndarray:
    """The paper's notes plus frame-onset notes (module docstring) -> notes [N, 4]."""
    notes = decode(probs, hop, onset_threshold, frame_threshold)
    frame = probs["frame"] > frame_threshold
    rises = frame & ~np.vstack([np.zeros((1, 88), bool), frame[:-1]])
    starts = {(int(round(on / hop)), int(p) - LOWEST_KEY) for on, _, p, _ in notes}
    by_key: dict[int, list[int]] = {}
    for t, k in starts:
        by_key.setdefault(k, []).append(t)
    extra = []
    for t, k in zip(*np.nonzero(rises)):
        if any(abs(t - s) <= near for s in by_key.get(int(k), [])):
            continue
        run = np.flatnonzero(~frame[t:, k])
        length = int(run[0]) if len(run) else frame.shape[0] - t
        if length < min_frames:
            continue
        velocity = float(np.clip(round(probs["velocity"][t, k] * 127), 1, 127))
        extra.append((t * hop, (t + length) * hop, k + LOWEST_KEY, velocity))
    table = np.vstack([notes, np.array(extra, np.float64).reshape(-1, 4)])
    return table[np.argsort(table[:, 0], kind="stable")]


def no_split(probs: dict[str, np.ndarray], held: int, reonset: float,
             offset_needed: float | None = None,
             frame_threshold: float = 0.5) -> dict[str, np.ndarray]:
    """``probs`` with the onsets that fall inside a sounding note (the key's frame above the
    threshold for the ``held`` frames before) lowered to 0 unless above ``reonset``, or, with
    ``offset_needed``, unless the offset head saw the note end (its probability above that in
    the ``held`` frames up to the onset): what the paper's decoder would split into two notes
    when another voice moves."""
    frame = probs["frame"] > frame_threshold
    sounding = np.ones_like(frame)
    ended = np.zeros_like(frame)
    off = probs["offset"]
    for j in range(1, held + 1):
        sounding[j:] &= frame[:-j]
        if offset_needed is not None:
            ended[j:] |= off[:-j] > offset_needed
    if offset_needed is not None:
        ended |= off > offset_needed
    sounding[:held] = False
    onset = probs["onset"].copy()
    onset[sounding & (onset < reonset) & ~ended] = 0.0
    return {**probs, "onset": onset}


def census(ref: np.ndarray, est: np.ndarray, counts: dict[str, int]) -> None:
    """Add the paper decoder's false and missed notes of one piece to ``counts`` by kind."""
    from mir_eval.transcription import match_notes

    pairs = match_notes(ref[:, :2], midi_hz(ref[:, 2]), est[:, :2], midi_hz(est[:, 2]),
                        onset_tolerance=0.05, pitch_tolerance=50.0, offset_ratio=None)
    found_ref, found_est = {a for a, _ in pairs}, {b for _, b in pairs}
    for j, (on, _, p, _) in enumerate(est):
        if j in found_est:
            continue
        sounding = ref[(ref[:, 0] <= on + 0.05) & (ref[:, 1] > on), 2]
        kind = ("false: held pitch re-triggered" if (sounding == p).any() else
                "false: octave of a sounding note" if (np.abs(sounding - p) == 12).any() else
                "false: other interval" if len(sounding) else "false: in silence")
        counts[kind] = counts.get(kind, 0) + 1
    for j, (on, _, p) in enumerate(ref):
        if j in found_ref:
            continue
        held = est[(est[:, 0] < on - 0.05) & (est[:, 1] > on), 2]
        kind = ("missed: repeated note" if (np.abs(ref[ref[:, 2] == p, 1] - on) < 0.03).any()
                else "missed: pitch already held" if (held == p).any() else "missed: other")
        counts[kind] = counts.get(kind, 0) + 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("cache")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--census", action="store_true", help="count the paper decoder's errors "
                    "by kind")
    ap.add_argument("--near", type=int, default=3, help="frames (16 ms)")
    ap.add_argument("--min-frames", type=int, default=4)
    ap.add_argument("--thresholds", type=float, nargs="*", default=[0.3, 0.7])
    ap.add_argument("--held", type=int, default=3, help="frames a key must sound before an "
                    "onset for it to count as a re-onset (nosplit)")
    ap.add_argument("--reonset", type=float, nargs="*", default=[0.8, 0.95, 1.01],
                    help="onset probability a re-onset needs (nosplit; > 1: never)")
    ap.add_argument("--offsets", type=float, nargs="*", default=[0.1, 0.3, 0.5],
                    help="offset probability that lets a re-onset through (nosplit-offset)")
    args = ap.parse_args()
    model = load_transcriber(args.checkpoint)
    cache = AudioCache(args.cache)
    hop = model.config.hop / model.config.sample_rate
    decoders = {"paper": lambda pr: decode(pr, hop)}
    for t in args.thresholds:
        decoders[f"paper@{t:g}"] = lambda pr, t=t: decode(pr, hop, t)
    decoders["rescue"] = lambda pr: rescue(pr, hop, args.near, args.min_frames)
    for t in args.reonset:
        decoders[f"nosplit@{t:g}"] = lambda pr, t=t: decode(no_split(pr, args.held, t), hop)
    for o in args.offsets:
        decoders[f"nosplit-offset@{o:g}"] = lambda pr, o=o: decode(
            no_split(pr, args.held, 1.01, o), hop)
    rows: dict[str, list[tuple[float, float, float]]] = {k: [] for k in decoders}
    counts: dict[str, int] = {}
    for i in tqdm(cache.split_indices(args.split)[: args.limit], desc="pieces"):
        probs = predict(model, cache.clip(int(i)))
        ref = reference_notes(cache, int(i))
        for name, fn in decoders.items():
            rows[name].append(score(ref, fn(probs))["note"])
        if args.census:
            census(ref, decode(probs, hop), counts)
    print(f"{args.checkpoint} on {args.cache} ({args.split}, {len(rows['paper'])} pieces); "
          f"rescue near={args.near} min_frames={args.min_frames}")
    print("| decoder | note P | note R | note F1 |\n|---|---:|---:|---:|")
    for name, r in rows.items():
        p, rec, f1 = (float(np.mean([x[j] for x in r])) for j in range(3))
        print(f"| {name} | {p:.3f} | {rec:.3f} | {f1:.3f} |")
    for kind, count in sorted(counts.items()):
        print(f"{kind}: {count}")


if __name__ == "__main__":
    main()
