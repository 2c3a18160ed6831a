"""How fast the training data path serves windows, against plain memmap slicing.

Builds a cache of synthetic notes (harmonic tones with a decay, NSynth layout) in a temporary
folder, then times batches from ``WindowDataset`` through a torch DataLoader (num_workers=0, one
thread) and, in the same run, a reference that only slices the memmap at random offsets and
converts to float (no example choice, padding or conditioning). Prints windows/s, audio seconds
served per wall second (the real-time factor) and the ratio to the reference. Target: >= 100x
real time per core.

    .venv/bin/python benchmarks/loader.py [--notes 200] [--batches 300]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from waveloom.audio.tuning import midi_hz
from waveloom.data.cache import AudioCache
from waveloom.data.dataset import WindowDataset
from waveloom.data.prepare import SCALE, prepare


def make_notes(root: Path, n: int, seconds: float, sr: int) -> None:
    """``n`` NSynth-layout notes: 4 harmonics with an exponential decay, random pitch/velocity."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    examples = {}
    for k in range(n):
        pitch, velocity = int(rng.integers(36, 96)), int(rng.choice([25, 50, 75, 100, 127]))
        name = f"synth_{k % 10:03d}-{pitch:03d}-{velocity:03d}-{k}"
        f0 = float(midi_hz(pitch))
        tone = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 5) if f0 * h < sr / 2)
        audio = 0.3 * (velocity / 127) * tone * np.exp(-t * rng.uniform(0.5, 3.0))
        (root / "audio").mkdir(parents=True, exist_ok=True)
        sf.write(str(root / "audio" / f"{name}.wav"), audio, sr, subtype="PCM_16")
        examples[name] = {
            "pitch": pitch,
            "velocity": velocity,
            "instrument_str": f"synth_{k % 10:03d}",
            "instrument_family_str": "synth_lead",
            "split": "train",
        }
    (root / "examples.json").write_text(json.dumps(examples))


def time_loader(ds: WindowDataset, batch_size: int, batches: int) -> float:
    """Seconds to draw ``batches`` batches (after one warm-up batch)."""
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=0)
    it = iter(loader)
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(it)
    assert batch["audio"].shape == (batch_size, ds.length)
    return time.perf_counter() - start


def time_reference(cache: AudioCache, window: int, batch_size: int, batches: int) -> float:
    """Seconds for the same number of windows by bare memmap slicing."""
    rng = np.random.default_rng(0)
    audio, total = cache.audio, cache.audio.shape[0]
    start = time.perf_counter()
    for _ in range(batches):
        offsets = rng.integers(0, total - window, batch_size)
        batch = np.stack([audio[o : o + window] for o in offsets]).astype(np.float32) / SCALE
        tensor = torch.from_numpy(batch)
    assert tensor.shape == (batch_size, window)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--sr", type=int, default=16000, help="cache sample rate (Hz)")
    parser.add_argument("--source-sr", type=int, default=None, help="rate of the notes written")
    parser.add_argument("--window", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "src", Path(tmp) / "cache"
        make_notes(src, args.notes, args.seconds, args.source_sr or args.sr)
        t0 = time.perf_counter()
        summary = prepare(src, out, sample_rate=args.sr, progress=False)
        t_prep = time.perf_counter() - t0
        print(
            f"prepare: {summary.n_examples} files, {summary.duration_s:.0f} s of audio in "
            f"{t_prep:.2f} s ({summary.duration_s / t_prep:.0f}x real time)"
        )
        cache = AudioCache(out)
        ds = WindowDataset(
            cache,
            "train",
            window=args.window,
            keys=("pitch", "instrument", "velocity"),
            epoch_size=(args.batches + 1) * args.batch_size,
        )
        windows = args.batches * args.batch_size
        window_s = args.window / args.sr
        t_ds = time_loader(ds, args.batch_size, args.batches)
        t_ref = time_reference(cache, args.window, args.batch_size, args.batches)
        for label, t in (("WindowDataset+DataLoader", t_ds), ("reference memmap slicing", t_ref)):
            print(
                f"{label:>26}: {windows / t:9.0f} windows/s  "
                f"{windows * window_s / t:9.0f} audio-s/s (x real time, 1 core)"
            )
        print(f"dataset / reference throughput: {t_ref / t_ds:.2f}")


if __name__ == "__main__":
    main()
