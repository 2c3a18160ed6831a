"""Velocity calibration of a DDSP instrument: which level a MIDI velocity asks it for.

A DDSP model is driven by loudness (dB), a score by velocity. The uncalibrated mapping puts
velocity 127 at the loudest level seen in training and falls 40 dB over the velocity range
(:func:`waveloom.data.midi_controls.velocity_db`). An instrument trained on lines played at
one velocity (the shipped solo instruments heard only velocity 72) has learned what its notes
sound like at *their* level and treats a much lower one as the silence between notes: the
shipped trumpet rendered velocity 74 about 17 dB under its training level, and went silent.

Calibrating measures the median sustained level of the training notes and the median velocity
they were played at, and stores both as ``model.velocity_db`` in the checkpoint's config, so
that velocity plays at the level the model heard (the 40 dB slope around it stays).

    python -m waveloom.models.ddsp.calibrate CKPT CACHE [--out CKPT2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from waveloom.data.cache import AudioCache
from waveloom.data.features import CacheFeatures
from waveloom.data.roll import OFFSET, ONSET, VELOCITY
from waveloom.errors import DataError, WaveloomError

#: Frames this long after an onset are skipped: the attack is not the level a note holds.
ATTACK_SKIP_S = 0.05
#: Frames quieter than this are not a sounding note (the model's own voiced threshold).
VOICED_DB = -60.0


def note_levels(cache: AudioCache, features: CacheFeatures, split: str = "train"
                ) -> np.ndarray:
    """float64 ``[n, 2]``: (velocity, median voiced loudness dB after the attack) per note of
    ``split``: every note of an example's note table, or the example itself when it is one
    labelled note (an NSynth-style cache); notes with no voiced frame are left out."""
    hop = features.spec.hop
    skip = int(round(ATTACK_SKIP_S * features.spec.frame_rate))
    velocities = cache.columns["velocity"]
    rows = []
    for i in (int(i) for i in cache.split_indices(split)):
        lo, hi = (int(x) for x in features.arrays["offsets"][i: i + 2])
        loud = np.asarray(features.arrays["loudness_db"][lo:hi])
        table = cache.note_table(i) if cache.has_notes else ()
        spans = [(int(n[ONSET]), int(n[OFFSET]), int(n[VELOCITY])) for n in table]
        if not spans and velocities[i] > 0:
            spans = [(0, len(loud) * hop, int(velocities[i]))]
        for start, end, velocity in spans:
            frames = loud[start // hop + skip: min(end // hop, len(loud))]
            frames = frames[frames > VOICED_DB]
            if len(frames):
                rows.append((float(velocity), float(np.median(frames))))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 2)


def velocity_anchor(levels: np.ndarray) -> tuple[float, float]:
    """(median velocity, median level dB) of ``note_levels``' rows."""
    if len(levels) == 0:
        raise DataError("no sounding note with a known velocity in the training split; "
                        "calibrate with the cache the instrument was trained on (MIDI-aligned "
                        "or labelled notes)")
    return float(np.median(levels[:, 0])), round(float(np.median(levels[:, 1])), 2)


def calibrate(checkpoint: str | Path, cache_dir: str | Path, out: str | Path | None = None
              ) -> tuple[float, float]:
    """Measure the anchor on ``cache_dir``'s training notes and write ``checkpoint`` (or
    ``out``) with ``model.velocity_db`` set; return the anchor."""
    from waveloom.checkpoint import read_extra, save_checkpoint
    from waveloom.models.load import load_checkpoint

    model, run = load_checkpoint(checkpoint, expect_family="ddsp")
    cache = AudioCache(cache_dir)
    features = CacheFeatures(cache, model.frame_features())
    anchor = velocity_anchor(note_levels(cache, features))
    run.model.velocity_db = anchor
    run.validate()
    note = f"median level and velocity of the training notes of {Path(cache_dir).name}"
    extra = dict(read_extra(checkpoint), velocity_calibration=note)
    save_checkpoint(out or checkpoint, model, run, extra)
    return anchor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a DDSP .safetensors checkpoint")
    parser.add_argument("cache", type=Path, help="the cache it was trained on")
    parser.add_argument("--out", type=Path, default=None, help="write here (default: in place)")
    args = parser.parse_args(argv)
    try:
        velocity, level = calibrate(args.checkpoint, args.cache, args.out)
    except WaveloomError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.out or args.checkpoint}: velocity {velocity:g} plays at {level:.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
