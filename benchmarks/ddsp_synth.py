"""DDSP signal processing: synthesis speed, spectral-loss choice, f0 accuracy vs speed (#22).

Three parts, each printing a small table (``--json PATH`` also writes every number):

* ``synth``: harmonic (K=100) + filtered noise (65 bands) + reverb (1 s) at 16 kHz, hop 64,
  on ``--threads`` (1) thread(s), inference (no autograd); offline and streamed in 10 ms
  blocks (2 and 3 frames alternating). Ratio = audio seconds / wall seconds (goal >= 100x).
  Harmonics the Nyquist mask removes are skipped, so f0 matters: 220 Hz (36 of 100 sound) is
  typical, 55 Hz (all 100 sound) the worst case.
* ``loss``: this package's multiscale_spectral_loss vs auraloss's MultiResolutionSTFTLoss with
  the same six scales (forward + backward, B=8, T=64000, 2 threads), interleaved rounds.
* ``f0``: each f0 method on notes rendered by waveloom.data.synth (TimGM6mb, velocity 100),
  estimates every 10 ms. Strict scoring, octave errors count: a frame is right within 50 cents
  of the key's pitch; a note is right when its median f0 over the sustain is. Speed = estimates
  per wall second on ``--f0-threads`` (2) threads.

    PYTHONPATH=. python benchmarks/ddsp_synth.py --json out/ddsp_synth.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from waveloom.audio.f0 import track_f0
from waveloom.audio.io import load_audio
from waveloom.audio.tuning import midi_hz
from waveloom.nn.ddsp import Reverb, filtered_noise, harmonic_synth
from waveloom.nn.ddsp.spectral_loss import FFT_SIZES, multiscale_spectral_loss
from waveloom.nn.ddsp.stream import SynthStream
from waveloom.nn.ddsp.synth import synthesize

SR, HOP = 16000, 64
# Programs with an unambiguous pitch in TimGM6mb (organs 16-19 sound a 16' rank, see render_notes).
PROGRAMS = (0, 20, 24, 40, 56, 65, 71, 73)


@contextmanager
def _threads(n: int):
    """Run with ``n`` torch threads, restoring the caller's count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _best(fn, rounds: int) -> float:
    fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _controls(frames: int, base_hz: float = 220.0):
    """Controls for ``frames``: f0 ``base_hz`` with a +-1 semitone vibrato, random amplitudes."""
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(frames) / (SR / HOP)
    f0 = (base_hz * 2 ** (torch.sin(2 * np.pi * 0.5 * t) / 12))[None]
    return (f0, torch.rand(1, frames, generator=gen) * 0.3,
            torch.rand(1, frames, 100, generator=gen), torch.rand(1, frames, 65, generator=gen))


def _streamed(controls, reverb) -> None:
    stream, start, sizes = SynthStream(SR, HOP, reverb=reverb), 0, (2, 3)
    frames = controls[0].shape[1]
    while start < frames:
        n = sizes[(start // 5) % 2] if start % 5 == 0 else 5 - start % 5
        stop = min(frames, start + n)
        stream.push(*(c[:, start:stop] for c in controls))
        start = stop
    stream.flush()


@torch.no_grad()
def synth_speed(seconds: float, rounds: int, threads: int) -> dict:
    frames = int(seconds * SR / HOP)
    f0, amp, dist, mags = controls = _controls(frames)
    low = _controls(frames, 55.0)[0]  # every one of the 100 harmonics below Nyquist
    reverb = Reverb(SR, 1.0)
    dry = torch.randn(1, frames * HOP)
    parts = {
        "harmonic K=100, f0 220 Hz (36 sound)": lambda: harmonic_synth(f0, amp, dist, SR, HOP),
        "harmonic K=100, f0 55 Hz (all sound)": lambda: harmonic_synth(low, amp, dist, SR, HOP),
        "noise 65 bands": lambda: filtered_noise(mags, HOP),
        "reverb 1 s": lambda: reverb(dry),
        "all, offline, 220 Hz": lambda: synthesize(f0, amp, dist, mags, SR, HOP, reverb),
        "all, offline, 55 Hz": lambda: synthesize(low, amp, dist, mags, SR, HOP, reverb),
        "all, streamed 10 ms blocks": lambda: _streamed(controls, reverb),
    }
    audio_s = frames * HOP / SR
    with _threads(threads):
        return {name: audio_s / _best(fn, rounds) for name, fn in parts.items()}


def loss_speed(rounds: int, threads: int, batch: int = 8, length: int = 64000) -> dict:
    import auraloss

    theirs = auraloss.freq.MultiResolutionSTFTLoss(
        fft_sizes=list(FFT_SIZES), hop_sizes=[n // 4 for n in FFT_SIZES],
        win_lengths=list(FFT_SIZES), w_sc=0.0, w_log_mag=1.0, w_lin_mag=1.0)
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(batch, length, generator=gen) * 2 - 1
    pred = (torch.rand(batch, length, generator=gen) * 2 - 1).requires_grad_()
    impls = {"waveloom": lambda: multiscale_spectral_loss(pred, target),
             "auraloss": lambda: theirs(pred[:, None], target[:, None])}
    times: dict[str, list[float]] = {name: [] for name in impls}
    with _threads(threads):
        for r in range(rounds + 1):  # round 0 warms up
            for name, fn in impls.items():
                start = time.perf_counter()
                fn().backward()
                pred.grad = None
                if r:
                    times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def render(root: Path, programs, pitches, hold: float) -> list[tuple[np.ndarray, int]]:
    from waveloom.data.synth import render_notes

    render_notes(root, programs=programs, pitches=pitches, velocities=(100,),
                 hold_seconds=hold, release_seconds=0.25, progress=False)
    table = json.loads((root / "examples.json").read_text())
    return [(load_audio(root / "audio" / f"{name}.wav", SR)[0], int(row["pitch"]))
            for name, row in sorted(table.items())]


def score_f0(notes, method: str, hold: float, threads: int) -> dict:
    with _threads(threads):
        return _score_f0(notes, method, hold)


def _score_f0(notes, method: str, hold: float) -> dict:
    name, _, decoder = method.partition(":")
    track_f0(notes[0][0], SR, 100, name, decoder=decoder or "weighted")  # load the model
    frames_right = frames_all = notes_right = estimates = 0
    wall = 0.0
    for audio, pitch in notes:
        start = time.perf_counter()
        f0, _ = track_f0(audio, SR, 100, name, decoder=decoder or "weighted")
        wall += time.perf_counter() - start
        estimates += len(f0)
        sustain = f0[10 : int(hold * 100) - 5]  # 0.1 s after the onset to just before release
        target = float(midi_hz(pitch))
        cents = 1200 * np.log2(np.maximum(sustain, 1e-3) / target)
        frames_right += int((np.abs(cents) < 50).sum())
        frames_all += len(sustain)
        notes_right += int(abs(1200 * np.log2(max(np.median(sustain), 1e-3) / target)) < 50)
    return {"note_accuracy": notes_right / len(notes), "frame_accuracy": frames_right / frames_all,
            "estimates_per_s": estimates / wall, "notes": len(notes)}


def _print_table(title: str, header: str, rows: list[str]) -> None:
    print(f"\n{title}\n{header}\n" + "\n".join(rows))


def _arguments(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", default="synth,loss,f0")
    p.add_argument("--seconds", type=float, default=10.0, help="audio per synthesis round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="synthesis threads")
    p.add_argument("--loss-threads", type=int, default=2)
    p.add_argument("--f0-threads", type=int, default=2)
    p.add_argument("--methods", default="yin,pyin,crepe-tiny,crepe-tiny:viterbi,crepe-full")
    p.add_argument("--pitches", default="36-84:4", help="lo-hi:step MIDI keys to render")
    p.add_argument("--programs", default=",".join(map(str, PROGRAMS)))
    p.add_argument("--hold", type=float, default=1.0, help="seconds each note is held")
    p.add_argument("--notes-root", type=Path, help="render the notes here (default: a tmp dir)")
    p.add_argument("--json", type=Path)
    return p.parse_args(argv)


def _f0_part(args) -> dict:
    span, _, step = args.pitches.partition(":")
    lo, _, hi = span.partition("-")
    pitches = range(int(lo), int(hi) + 1, int(step or 1))
    programs = [int(p) for p in args.programs.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.notes_root or Path(tmp) / "notes"
        notes = render(root, programs, pitches, args.hold)
    results = {m: score_f0(notes, m, args.hold, args.f0_threads) for m in args.methods.split(",")}
    _print_table(f"f0 on {len(notes)} rendered notes, 10 ms hop, {args.f0_threads} threads",
                 "method | note acc | frame acc | estimates/s",
                 [f"{m} | {r['note_accuracy']:.3f} | {r['frame_accuracy']:.3f} | "
                  f"{r['estimates_per_s']:.0f}" for m, r in results.items()])
    return results


def main(argv=None) -> dict:
    args = _arguments(argv)
    parts = set(args.parts.split(","))
    out: dict = {}
    if "synth" in parts:
        out["synth"] = synth_speed(args.seconds, args.rounds, args.threads)
        _print_table(f"synthesis, {args.threads} thread(s), x real time", "part | ratio",
                     [f"{k} | {v:.0f}x" for k, v in out["synth"].items()])
    if "loss" in parts:
        out["loss"] = loss_speed(args.rounds, args.loss_threads)
        _print_table(f"spectral loss fwd+bwd, B=8 T=64000, {args.loss_threads} threads",
                     "impl | median s", [f"{k} | {v:.3f}" for k, v in out["loss"].items()])
    if "f0" in parts:
        out["f0"] = _f0_part(args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
