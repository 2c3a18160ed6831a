"""A procedural choir: MIDI parts sung by formant voices (training data for the transcriber).

Why: the transcriber loses 60 % of the notes of FluidR3's choir, a SoundFont it never heard
(docs/transcriber.md). Its frame head hears them; its onset head does not, because a choir's
notes start without an attack transient: a vowel that swells over a few hundred milliseconds
and moves legato from pitch to pitch, with a formant cluster near 3 kHz. No training SoundFont
sings like that. This renderer does, with parameters drawn per piece, part, singer and note,
so the transcriber hears many such choirs:

* **pitch**: each note's f0 with a glide from the previous note of the part when they join
  (legato, 30-120 ms), vibrato after a delay (4.5-6.5 Hz, 10-45 cents), a singer's detune;
* **level**: a raised-cosine swell of 60-400 ms from silence, or, for 75 % of the notes that
  join the previous one, from 40-90 % of the level (legato: no new attack at all); a release
  of 60-200 ms; velocity as ``(v/127)^1.5``;
* **timbre**: a vowel per note (a, e, i, o, u: three formants each, scaled per part by
  0.9-1.15), a singer's-formant cluster near 2.6-3.2 kHz of 0-14 dB, a spectral tilt, and
  breath noise shaped by the same envelope 26-36 dB down;
* **ensemble**: 2 singers per part, each with its own timing (+-20 ms), detune and vibrato.

Synthesis is the DDSP harmonic and filtered-noise synths of :mod:`waveloom.nn.ddsp` (no new
oscillator). The score's notes stay the labels: a note's onset is its score onset, however
softly it is sung.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pretty_midi
import torch

from waveloom.audio.tuning import midi_hz
from waveloom.nn.ddsp.harmonic import harmonic_synth
from waveloom.nn.ddsp.noise import filtered_noise

#: (F1, F2, F3) in Hz and their bandwidths, of the five cardinal vowels (average adult voice).
VOWELS = {
    "a": ((800.0, 1150.0, 2800.0), (80.0, 90.0, 120.0)),
    "e": ((400.0, 1700.0, 2600.0), (70.0, 80.0, 100.0)),
    "i": ((300.0, 2100.0, 2900.0), (60.0, 90.0, 100.0)),
    "o": ((450.0, 800.0, 2830.0), (70.0, 80.0, 100.0)),
    "u": ((325.0, 700.0, 2530.0), (50.0, 60.0, 170.0)),
}
#: The name that stands for this renderer where a SoundFont path is expected
#: (``waveloom data render-midi --soundfont sung``).
NAME = "sung"
#: Bumped whenever the renderer's output changes, so earlier renders are not resumed as equal.
VERSION = 2
HOP = 64  # samples per control frame (4 ms at 16 kHz)
HARMONICS = 40  # up to 4 kHz for a 100-Hz bass, past the singer's formant
NOISE_BANDS = 32
SINGERS = 2
LEGATO = 0.75  # chance that a note joining the previous one is sung without a new swell
BREATH = 0.04  # s: a note not sung legato ends this fast before the next one
VOWEL_GLIDE = 0.06  # s: the moving average that takes one vowel into the next
LEVEL_GLIDE = 0.03  # s: the same for the level (a legato dip is not a step)


@dataclass
class Singer:
    """One singer's constants (drawn per part and singer)."""

    detune: float  # semitones
    vib_rate: float  # Hz
    vib_depth: float  # semitones
    vib_delay: float  # s
    jitter: float  # s, onset offset
    formant_scale: float
    ring_db: float  # singer's formant gain
    ring_hz: float
    tilt: float  # dB per octave above 500 Hz
    breath_db: float


def _draw_singer(rng: np.random.Generator, formant_scale: float) -> Singer:
    return Singer(
        detune=rng.uniform(-0.1, 0.1), vib_rate=rng.uniform(4.5, 6.5),
        vib_depth=rng.uniform(0.1, 0.45), vib_delay=rng.uniform(0.15, 0.35),
        jitter=rng.uniform(-0.02, 0.02), formant_scale=formant_scale,
        ring_db=rng.uniform(0.0, 14.0), ring_hz=rng.uniform(2600.0, 3200.0),
        tilt=rng.uniform(-12.0, -5.0), breath_db=rng.uniform(-36.0, -26.0),
    )  # fmt: skip


def envelope_db(freqs: np.ndarray, vowel: str, singer: Singer) -> np.ndarray:
    """Level in dB of the vocal tract's response at ``freqs`` (Hz, any shape) for a vowel:
    three formant resonances (scaled by the singer's tract), the singer's-formant cluster
    and the source's tilt. Why resonances on a floor: between formants a voice is 20-30 dB
    down, not silent."""
    centres, widths = VOWELS[vowel]
    f = np.maximum(freqs, 1.0)
    gain = np.full(f.shape, 10 ** (-28 / 20))
    for c, w, g_db in zip(centres, widths, (0.0, -4.0, -12.0)):
        c, w = c * singer.formant_scale, w * 1.5
        gain = gain + 10 ** (g_db / 20) / (1.0 + ((f - c) / w) ** 2)
    ring = 10 ** ((singer.ring_db - 14.0) / 20) / (1.0 + ((f - singer.ring_hz) / 350.0) ** 2)
    tilt = singer.tilt * np.log2(np.maximum(f, 500.0) / 500.0)
    return 20 * np.log10(gain + ring) + tilt


def _part_controls(notes: list[pretty_midi.Note], frames: int, rate: float, singer: Singer,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(f0 Hz [F], amplitude [F], harmonic distribution [F, K]) of one singer of one part."""
    f0 = np.zeros(frames)
    amp = np.zeros(frames)
    dist = np.zeros((frames, HARMONICS))
    t = np.arange(frames) / rate
    prev: pretty_midi.Note | None = None
    for note in sorted(notes, key=lambda n: n.start):
        start, end = note.start + singer.jitter, note.end + singer.jitter
        joins = prev is not None and 0.0 <= start - (prev.end + singer.jitter) < 0.06
        legato = joins and rng.random() < LEGATO  # else a breath: a swell from silence
        release = rng.uniform(0.06, 0.2)
        span = (t >= start) & (t < end + release)
        if not span.any():
            continue
        ts = t[span] - start
        level = (note.velocity / 127.0) ** 1.5
        attack = rng.uniform(0.06, 0.4)
        floor = rng.uniform(0.4, 0.9) if legato else 0.0
        swell = floor + (1 - floor) * 0.5 * (1 - np.cos(np.pi * np.clip(ts / attack, 0, 1)))
        fade = np.clip(1 - (ts - (end - start)) / release, 0, 1)
        semis = note.pitch + singer.detune + singer.vib_depth * np.sin(
            2 * np.pi * singer.vib_rate * ts + rng.uniform(0, 2 * np.pi)) * np.clip(
            (ts - singer.vib_delay) / 0.2, 0, 1)
        if legato:
            glide = rng.uniform(0.03, 0.12)
            w = 0.5 * (1 + np.cos(np.pi * np.clip(ts / glide, 0, 1)))
            semis = semis + w * (prev.pitch - note.pitch)
        hz = midi_hz(semis)
        vowel = "aeiou"[rng.integers(5)]
        k = np.arange(1, HARMONICS + 1)
        if joins and not legato:  # a breath: the previous note ends before this one swells
            before = (t >= start - BREATH) & (t < start)
            amp[before] *= np.clip((start - t[before]) / BREATH, 0, 1)
        f0[span] = hz
        amp[span] = level * swell * fade  # replaces the previous note's release
        dist[span] = envelope_db(hz[:, None] * k[None, :], vowel, singer)
        prev = note
    amp = _smooth(amp[:, None], int(LEVEL_GLIDE * rate))[:, 0]  # legato dips without a step
    return f0, amp, 10 ** (_smooth(dist, int(VOWEL_GLIDE * rate)) / 20)


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """A moving average of ``x`` [F, K] over ``width`` frames: a vowel moves into the next
    one, and a level into the next, over tens of milliseconds. A step in the harmonics'
    levels would be a click, an attack transient that a choir does not make."""
    if width <= 1:
        return x
    kernel = np.ones(width) / width
    pad = np.pad(x, ((width // 2, width - 1 - width // 2), (0, 0)), mode="edge")
    return np.stack([np.convolve(pad[:, j], kernel, mode="valid") for j in range(x.shape[1])], 1)


def _breath(f0: np.ndarray, amp: np.ndarray, singer: Singer, sample_rate: int) -> np.ndarray:
    """Noise-band magnitudes [F, NOISE_BANDS]: the tract's envelope (vowel 'a') under the
    singer's breath level, following the sung level."""
    bands = (np.arange(NOISE_BANDS) + 0.5) * (sample_rate / 2) / NOISE_BANDS
    shape = 10 ** ((envelope_db(bands, "a", singer) + singer.breath_db) / 20)
    return amp[:, None] * shape[None, :] * (f0[:, None] > 0)


def sing_midi(midi: pretty_midi.PrettyMIDI, sample_rate: int, tail_seconds: float,
              seed: int) -> np.ndarray:
    """Every pitched part of ``midi`` sung by :data:`SINGERS` formant voices -> [T] float32 at
    ``sample_rate`` (not normalised), lasting until the last note off plus ``tail_seconds``.
    ``seed`` draws the choir (the same seed, the same audio)."""
    rng = np.random.default_rng(seed)
    rate = sample_rate / HOP
    frames = int(math.ceil((midi.get_end_time() + tail_seconds) * rate)) + 1
    f0s, amps, dists, noises = [], [], [], []
    for part in (p for p in midi.instruments if not p.is_drum and p.notes):
        scale = rng.uniform(0.9, 1.15)
        for _ in range(SINGERS):
            singer = _draw_singer(rng, scale)
            f0, amp, dist = _part_controls(part.notes, frames, rate, singer, rng)
            f0s.append(f0), amps.append(amp), dists.append(dist)
            noises.append(_breath(f0, amp, singer, sample_rate))
    if not f0s:
        return np.zeros(frames * HOP, np.float32)
    f0_t, amp_t, dist_t, noise_t = (torch.from_numpy(np.stack(xs)).float()
                                    for xs in (f0s, amps, dists, noises))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        voiced, _ = harmonic_synth(f0_t, amp_t, dist_t, sample_rate, HOP)
        breath = filtered_noise(noise_t, HOP, generator=gen)
    return (voiced + breath[:, : voiced.shape[1]]).sum(0).numpy().astype(np.float32)


class SungChoir:
    """Stands where :func:`~waveloom.data.synth.engine.load_soundfont`'s font stands in
    ``render_midi``: every piece is sung by :func:`sing_midi`, its choir drawn from a seed of
    the piece's name (a re-run renders the same audio)."""

    procedural = True
    fingerprint = {"renderer": NAME, "version": VERSION, "singers": SINGERS,
                   "harmonics": HARMONICS}

    def render(self, midi: pretty_midi.PrettyMIDI, name: str, sample_rate: int,
               tail_seconds: float) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")
        return sing_midi(midi, sample_rate, tail_seconds, seed)
