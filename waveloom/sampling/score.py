"""A score -> audio with neural instruments: one DDSP solo instrument per voice, mixed.

Why here (``sampling/``): it plays built models (DDSP, :mod:`waveloom.models.ddsp.perform`) on
curves made from notes, as the audio samplers do; the verbs (``compose``) sit above it.

* **Voices.** :func:`waveloom.data.voices.score_lines` cuts the score into monophonic lines,
  highest first; line ``i`` goes to ``instruments[i % len(instruments)]``, so with four
  instruments a chorale's soprano, alto, tenor and bass each get their own.
* **Range.** A line outside its instrument's trained pitch range (``DDSP.f0_range``: what it
  heard in training, widened by a semitone) moves by whole octaves, the fewest that fit, and
  a note says which line moved; if no octave fits (a line wider than the range) it stays, and
  the perform path clips its f0 to the range, with a note naming the seconds. A line with
  only a few stray notes outside (at most :data:`FOLD_SHARE` of them) keeps its register
  instead: those notes alone move by octaves into range (a note says how many).
* **Mix.** The lines sharing an instrument render as one batch (noise seeded by ``seed`` and
  the instrument's index); the instruments are summed, then scaled so the peak is at most
  ``-headroom_db`` dBFS (never up). :class:`Rendered` reports the peak before and after.
  ``reverb`` > 0 puts the whole mix in one shared room first (:func:`shared_reverb`), so the
  voices sound like one ensemble; off by default (each instrument keeps its learned reverb).
  (The perform path already scales one instrument's lines down if their own sum would clip.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from waveloom.data.midi_controls import Note
from waveloom.errors import ConfigError

#: Where the shipped DDSP solo instruments live: ``ddsp-NAME.safetensors``.
ASSETS = Path(__file__).resolve().parents[1] / "assets"
#: Voices by register, top first: soprano, alto, tenor, bass (docs/compose.md, "Rendering").
DEFAULT_INSTRUMENTS = ("violin", "flute", "trumpet", "trumpet")
#: GM programs for the shipped instruments (piece.mid's tracks); 0 (piano) for others.
PROGRAMS = {"violin": 40, "flute": 73, "trumpet": 56}
MAX_OCTAVES = 4  # the farthest a line is moved to fit an instrument
FOLD_SHARE = 0.25  # up to this share of a line's notes out of range: fold them, not the line


@dataclass
class Rendered:
    """The mix ``audio`` float32 ``[T]`` at ``sample_rate``; per line its notes (after any
    transposition) and instrument name; ``peak`` of the raw sum and ``gain`` applied (the
    output peaks at ``peak * gain``); ``score``: the lines as the score has them (before
    fitting them to the instruments), ``octaves`` each whole line was moved by; ``notes``:
    warnings to print."""

    audio: np.ndarray
    sample_rate: int
    lines: list[list[Note]]
    voices: list[str]
    peak: float
    gain: float
    score: list[list[Note]] = field(default_factory=list)
    octaves: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def known_instruments() -> list[str]:
    """Names of the shipped solo instruments (``assets/ddsp-NAME.safetensors``, not the ae)."""
    return sorted(p.stem.removeprefix("ddsp-") for p in ASSETS.glob("ddsp-*.safetensors")
                  if not p.stem.startswith("ddsp-ae"))


def instrument_path(name: str) -> Path:
    """A shipped instrument's file by name, or a ``.safetensors`` path; ConfigError listing the
    known names otherwise."""
    if name.endswith(".safetensors"):
        if not Path(name).is_file():
            raise ConfigError(f"instrument {name}: no such file")
        return Path(name)
    if name in known_instruments():
        return ASSETS / f"ddsp-{name}.safetensors"
    raise ConfigError(f"unknown instrument {name!r}: use one of {', '.join(known_instruments())} "
                      "or a DDSP .safetensors file")


def load_instruments(names, device: str = "cpu") -> list[tuple[str, object]]:
    """``[(name, DDSP model)]`` for names/paths or already built models (each file once)."""
    from waveloom.device import pick_device
    from waveloom.models.load import load_checkpoint

    loaded: dict[str, object] = {}
    out = []
    for item in names:
        if not isinstance(item, (str, Path)):
            out.append((type(item).__name__, item))
            continue
        key = str(item)
        if key not in loaded:
            path = instrument_path(key)
            loaded[key], _ = load_checkpoint(path, pick_device(device), expect_family="ddsp")
        out.append((Path(key).stem.removeprefix("ddsp-"), loaded[key]))
    return out


def _midi_range(lo_hz: float, hi_hz: float) -> tuple[int, int]:
    """The whole MIDI pitches inside ``lo_hz..hi_hz``."""
    return (math.ceil(69 + 12 * math.log2(lo_hz / 440.0) - 1e-9),
            math.floor(69 + 12 * math.log2(hi_hz / 440.0) + 1e-9))


def fit_octaves(line: list[Note], lo_hz: float, hi_hz: float) -> int:
    """The octave shift (fewest octaves, up before down) that puts every pitch of ``line``
    within ``lo_hz..hi_hz``; 0 when none does (the f0 is then clipped)."""
    lo, hi = _midi_range(lo_hz, hi_hz)
    pitches = [n[2] for n in line]
    for k in sorted(range(-MAX_OCTAVES, MAX_OCTAVES + 1), key=lambda k: (abs(k), -k)):
        if lo <= min(pitches) + 12 * k and max(pitches) + 12 * k <= hi:
            return k
    return 0


def fold_notes(line: list[Note], lo_hz: float, hi_hz: float) -> tuple[list[Note], int]:
    """Each pitch outside ``lo_hz..hi_hz`` moved by the fewest octaves into it (if the range
    spans an octave); the line and how many notes moved."""
    lo, hi = _midi_range(lo_hz, hi_hz)
    if hi - lo < 11:
        return list(line), 0
    out = []
    for a, b, p, v in line:
        q = p + 12 * math.ceil((lo - p) / 12) if p < lo else p - 12 * math.ceil((p - hi) / 12) \
            if p > hi else p
        out.append((a, b, q, v))
    return out, sum(n[2] != m[2] for n, m in zip(line, out))


def _fit_lines(lines, voices, what: str) -> tuple[list[list[Note]], list[int], list[str]]:
    """Each line into its instrument's range: a few stray notes (at most :data:`FOLD_SHARE`)
    fold by octaves one by one, else the whole line moves by whole octaves where that fits.
    Returns the lines, their whole-line shifts in octaves and notes to print."""
    fitted, octaves, notes = [], [], []
    for i, (line, (name, model)) in enumerate(zip(lines, voices)):
        pitches = [n[2] for n in line]
        folded, moved = fold_notes(line, *model.f0_range())
        k = 0 if moved <= FOLD_SHARE * len(line) else fit_octaves(line, *model.f0_range())
        if k:
            notes.append(f"{what}: line {i + 1} (MIDI {min(pitches)}-{max(pitches)}) moved "
                         f"{'up' if k > 0 else 'down'} {abs(k)} octave{'s' * (abs(k) > 1)} "
                         f"into the {name}'s range")
            folded = [(a, b, p + 12 * k, v) for a, b, p, v in line]
        elif moved:
            notes.append(f"{what}: line {i + 1}: {moved} of {len(line)} notes outside the "
                         f"{name}'s range moved by octaves into it")
        fitted.append(folded)
        octaves.append(k)
    return fitted, octaves, notes


def shared_reverb(audio: np.ndarray, sample_rate: int, wet: float, seconds: float = 1.5,
                  seed: int = 0) -> np.ndarray:
    """``audio`` ``[T]`` in one room: ``(1 - wet) dry + wet (audio * ir)``, ``ir`` exponentially
    decaying noise (-60 dB after ``seconds``, unit energy, so the wet part is about as loud as
    the dry), the result ``seconds`` longer so the tail rings out. Fixed by ``seed``."""
    import torch

    from waveloom.nn.ddsp.reverb import fft_convolve

    if not 0.0 <= wet <= 1.0 or not 0.0 < seconds <= 10.0:
        raise ConfigError(f"reverb wet={wet} must be in [0, 1] and seconds={seconds} in (0, 10]")
    n = int(round(seconds * sample_rate))
    rng = np.random.default_rng(seed)
    ir = rng.standard_normal(n) * np.exp(-6.9078 * np.arange(n) / n)  # ln(1000): -60 dB
    ir = (ir / np.sqrt(np.sum(ir**2))).astype(np.float32)
    tail = np.concatenate([audio, np.zeros(n, np.float32)])
    room = fft_convolve(torch.from_numpy(tail)[None], torch.from_numpy(ir))[0, : len(tail)]
    return ((1.0 - wet) * tail + wet * room.numpy()).astype(np.float32)


def _render_group(model, lines, frames: int, seed: int, vibrato, portamento: float, what: str):
    """One instrument's lines -> (audio ``[frames * hop]``, notes)."""
    from waveloom.data.midi_controls import line_f0, line_loudness
    from waveloom.models.ddsp.perform import SILENCE_DB, Controls, clip_f0, render

    rate = model.config.frame_rate
    f0 = np.stack([line_f0(line, frames, rate, vibrato, portamento) for line in lines])
    loud = np.stack([line_loudness(line, frames, rate, model.top_db()) for line in lines])
    f0, notes = clip_f0(model, f0, loud > SILENCE_DB, what)
    return render(model, Controls(f0, loud, None, notes), seed), notes


def render_score(midi, instruments=DEFAULT_INSTRUMENTS, *, seed: int = 0,
                 vibrato: tuple[float, float] = (0.0, 0.0), portamento: float = 0.0,
                 headroom_db: float = 1.0, device: str = "cpu", what: str | None = None,
                 max_voices: int | None = None, reverb: float = 0.0) -> Rendered:
    """Render ``midi`` (a path or PrettyMIDI) with ``instruments`` (names, ``.safetensors``
    paths or DDSP models), one per line in turn (at most ``max_voices`` lines a part: see
    :func:`~waveloom.data.voices.register_voices`); ``reverb`` > 0: the mix goes through
    :func:`shared_reverb` with that wet share before the headroom; see the module docstring.
    DataError for a score without notes, ConfigError for an unknown instrument or mismatched
    sample rates."""
    from waveloom.data.voices import score_lines
    from waveloom.models.ddsp.perform import TAIL_SECONDS

    if not instruments:
        raise ConfigError("render_score: give at least one instrument")
    lines, end = score_lines(midi, what, max_voices)
    label = what or (str(midi) if isinstance(midi, (str, Path)) else "score")
    loaded = load_instruments(list(instruments), device)
    rates = {(m.config.sample_rate, m.hop) for _, m in loaded}
    if len(rates) > 1:
        raise ConfigError(f"instruments differ in sample rate / hop {sorted(rates)}; mix only "
                          "instruments of one rate")
    voices = [loaded[i % len(loaded)] for i in range(len(lines))]
    score, (lines, octaves, notes) = lines, _fit_lines(lines, voices, label)
    model0 = loaded[0][1]
    frames = math.ceil((end + TAIL_SECONDS) * model0.config.frame_rate)
    mix = np.zeros(frames * model0.hop, np.float32)
    for index in range(min(len(loaded), len(lines))):
        mine = [line for i, line in enumerate(lines) if i % len(loaded) == index]
        audio, group_notes = _render_group(loaded[index][1], mine, frames, seed * 1000 + index,
                                           vibrato, portamento, label)
        mix[: len(audio)] += audio
        notes += group_notes
    if reverb > 0:
        mix = shared_reverb(mix, model0.config.sample_rate, reverb, seed=seed)
    peak = float(np.abs(mix).max())
    gain = min(1.0, 10.0 ** (-headroom_db / 20.0) / peak) if peak > 0 else 1.0
    return Rendered((mix * gain).astype(np.float32), model0.config.sample_rate, lines,
                    [name for name, _ in voices], peak, gain, score, octaves, notes)
