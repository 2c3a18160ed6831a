"""Throughput of ``render_notes`` against the bare TinySoundFont loop it is built on.

Renders PROGRAMS x PITCHES x 1 velocity NSynth notes (4 s each) into a temporary folder and
prints notes/s and audio seconds per wall second for

* reference: the pure render loop (one fresh synth per note, no resampling, no gain pass, no
  files), at the output rate and at the oversampled internal rate render_notes uses;
* render_notes: the whole job (a render per note at the internal rate, peak/RMS pass, soxr
  decimation, the global gain, 16-bit WAVs, examples.json; ``--cache-mb 0`` renders every
  note twice, as for jobs larger than the cache);

and the ratios: against the internal-rate loop they show what the gain pass, decimation, I/O
and bookkeeping cost; against the output-rate loop, what oversampling adds on top.
Run: ``.venv/bin/python benchmarks/render.py [--programs 8] [--render-rate R] [--cache-mb M]``
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from waveloom.data.synth import engine, render_notes

PITCHES = range(36, 85)
VELOCITY = 100
SECONDS, HOLD = 4.0, 3.0


def reference(programs: range, sample_rate: int) -> float:
    """Seconds for the bare loop: render every note at ``sample_rate``, write nothing."""
    font, _ = engine.load_soundfont(None, sample_rate)
    buffer = np.zeros(round(SECONDS * sample_rate), dtype=np.float32)
    hold = round(HOLD * sample_rate)
    start = time.perf_counter()
    for program in programs:
        preset = font.get_preset_index(0, program)
        for pitch in PITCHES:
            synth = engine.fresh(font, sample_rate)
            synth.note_on(preset, pitch, VELOCITY / 127.0)
            engine.render_into(synth, buffer[:hold])
            synth.note_off(preset, pitch)
            engine.render_into(synth, buffer[hold:])
    return time.perf_counter() - start


def ours(programs: range, sample_rate: int, render_rate: int, cache_mb: float) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        render_notes(out, programs=programs, pitches=PITCHES, velocities=(VELOCITY,),
                     sample_rate=sample_rate, progress=False, render_rate=render_rate,
                     cache_mb=cache_mb)  # fmt: skip
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=8, help="GM programs 0..N-1")
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--render-rate", type=int, default=None, help="internal rate (Hz)")
    parser.add_argument("--cache-mb", type=float, default=512.0, help="render_notes cache")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = parser.parse_args()
    programs = range(args.programs)
    notes = len(programs) * len(PITCHES)
    rate = engine.render_rate_for(args.sample_rate, args.render_rate)
    runs = {
        f"bare tsf loop @ {args.sample_rate} Hz": lambda: reference(programs, args.sample_rate),
        f"bare tsf loop @ {rate} Hz": lambda: reference(programs, rate),
        "render_notes": lambda: ours(programs, args.sample_rate, rate, args.cache_mb),
    }
    timings = dict.fromkeys(runs, float("inf"))
    for _ in range(args.repeat):  # best of N, interleaved so machine load hits all alike
        for name, run in runs.items():
            timings[name] = min(timings[name], run())
    print(f"{notes} notes of {SECONDS:g} s, output {args.sample_rate} Hz, internal {rate} Hz, "
          f"best of {args.repeat}")  # fmt: skip
    full = timings["render_notes"]
    for name, seconds in timings.items():
        print(f"  {name:28s} {notes / seconds:7.0f} notes/s {notes * SECONDS / seconds:8.0f} "
              f"audio s/wall s   render_notes takes {full / seconds:5.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
