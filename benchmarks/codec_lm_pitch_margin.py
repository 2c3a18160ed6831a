"""How well a codec LM tells a pitch from its neighbours (docs/codec_lm.md, session 29).

For real notes of a code cache at each ``--pitches`` MIDI pitch, the teacher-forced NLL of
their codes (nats a code: all codebooks, and the first alone) under the right pitch label and
under the labels one semitone down and up. Where the label above is nearly as likely as the
right one, the LM's notes drift up a semitone: the margin says which pitches the LM knows
before a grid is drawn.

    python benchmarks/codec_lm_pitch_margin.py waveloom/assets/codec-lm-notes.safetensors \
        cache/notes-codes --pitches 52,56,60,68,72 --split train

With ``--codebooks`` it also shows where the codec keeps pitch: the notes' audio (the
code cache's source) through the LM's codec, keeping the first k codebooks and replacing the
rest by random entries, each judged by crepe-full.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from waveloom.data.cache import AudioCache
from waveloom.models.load import load_checkpoint


def rows_of(entries: list[dict], pitch: int, split: str, velocity: int | None) -> list[int]:
    return [i for i, m in enumerate(entries) if m["pitch"] == pitch and m["split"] == split
            and (velocity is None or m["velocity"] == velocity)]


def margins(lm, cache: AudioCache, entries: list[dict], rows: list[int], pitch: int,
            window: int) -> dict[int, tuple[float, float]]:
    """{label: (NLL a code, NLL a first-codebook code)} for labels pitch-1, pitch, pitch+1."""
    audio = torch.from_numpy(np.stack([cache.read(i, 0, window) for i in rows]))
    instrument = torch.tensor([entries[i]["instrument"] for i in rows])
    out = {}
    for label in (pitch - 1, pitch, pitch + 1):
        with torch.no_grad():
            nll, keep = lm._nll({"audio": audio, "instrument": instrument,
                                 "pitch": torch.full((len(rows),), label)})
        out[label] = (float(nll.sum() / keep.sum()), float(nll[:, 0].sum() / keep[:, 0].sum()))
    return out


def codebook_pitch(codec, source: AudioCache, rows: list[int], keep: int, seconds: float,
                   seed: int) -> list[float]:
    """MIDI pitch (crepe-full) of each row's audio coded with ``keep`` real codebooks."""
    from waveloom.evaluate.pitch import get_estimator

    length = int(seconds * codec.config.sample_rate)
    clips = torch.from_numpy(np.stack([source.read(i, 0, length) for i in rows]))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        codes = codec.encode(clips, 2.0)
        codes[:, keep:] = torch.randint(0, codec.config.codebook_size, codes[:, keep:].shape,
                                        generator=g)
        audio = codec.decode(codes, length=length).float().numpy()
    judge = get_estimator("crepe-full", hop_seconds=0.02, decoder="viterbi")
    return [e.midi for e in judge.many(list(audio), codec.config.sample_rate)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path, help="a codec_lm checkpoint")
    p.add_argument("codes", type=Path, help="the code cache it was trained on")
    p.add_argument("--pitches", default="52,56,60,68,72")
    p.add_argument("--split", default="train")
    p.add_argument("--velocity", type=int, default=None, help="only notes of this velocity")
    p.add_argument("--codebooks", action="store_true",
                   help="also: pitch of the source audio through the codec, k real codebooks")
    args = p.parse_args()
    torch.set_num_threads(1)
    lm, run = load_checkpoint(args.checkpoint)
    lm.eval()
    cache = AudioCache(args.codes)
    entries = cache.entries
    print("| MIDI | notes | NLL a code, label -1 / right / +1 | first codebook -1 / right / +1 |")
    print("|---:|---:|---|---|")
    for pitch in (int(x) for x in args.pitches.split(",")):
        rows = rows_of(entries, pitch, args.split, args.velocity)
        if not rows:
            print(f"| {pitch} | 0 | - | - |")
            continue
        m = margins(lm, cache, entries, rows, pitch, run.data.window)
        fmt = [" / ".join(f"{m[q][k]:.2f}" for q in (pitch - 1, pitch, pitch + 1)) for k in (0, 1)]
        print(f"| {pitch} | {len(rows)} | {fmt[0]} | {fmt[1]} |", flush=True)
    if args.codebooks:
        show_codebooks(args, cache)


def show_codebooks(args: argparse.Namespace, codes: AudioCache) -> None:
    """Pitch of the code cache's source notes through the codec, keeping 1..4 codebooks."""
    entries = codes.entries
    codec, _ = load_checkpoint(codes.info["codes"]["codec"]["checkpoint"])
    source = AudioCache(codes.info["source"])
    where = {m["name"]: i for i, m in enumerate(source.entries)}
    rows = [i for p in args.pitches.split(",")
            for i in rows_of(entries, int(p), args.split, args.velocity or 105)]
    for keep in (4, 3, 2, 1):
        got = codebook_pitch(codec, source, [where[entries[i]["name"]] for i in rows], keep,
                             2.0, seed=0)
        misses = [f"{entries[i]['instrument_str']}@{entries[i]['pitch']} -> {g:.1f}"
                  for i, g in zip(rows, got) if not abs(g - entries[i]["pitch"]) <= 0.5]
        print(f"{keep} real codebooks (the rest random): {len(rows) - len(misses)}/{len(rows)} "
              f"within 50 cents; misses: {', '.join(misses) or 'none'}")


if __name__ == "__main__":
    main()
