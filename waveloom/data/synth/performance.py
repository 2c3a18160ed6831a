"""Render a whole MIDI performance (a ``pretty_midi.PrettyMIDI``) with a SoundFont.

Our own event loop rather than a MIDI player, so every choice is visible:

* each pretty_midi instrument (a track/channel/program triple) keeps its GM program (drum
  tracks: the SoundFont's drum kit for that program, bank 128);
* velocity follows the SF2/GM curve, gain ``(velocity / 127) ** 2`` (see :mod:`.engine`): the
  extra ``velocity / 127`` is a synth-channel volume, so an instrument gets one synth channel
  per distinct velocity it plays, and its controllers are applied to all of them;
* notes: on at ``start``, off at ``end``. A note is cut where the same key is struck again in
  the same instrument, as a piano damper would (and a MIDI note-off would otherwise release
  the new note too);
* sustain pedal (CC 64 >= 64 = down): TinySoundFont ignores it, so we apply it ourselves by
  moving each note-off that falls while the pedal is down to the pedal release;
* volume (CC 7) and expression (CC 11): gain ``(cc7 / 127) ** 2 * (cc11 / 127) ** 2`` (GM);
  pitch bends and the RPN/NRPN data-entry controllers (6, 38, 98-101, so a pitch-bend range
  change is honoured) go to the synth;
* ignored: every other controller (pan and the reverb/chorus sends mean nothing in a dry mono
  render; modulation, portamento, soft/sostenuto pedals), bank select (bank 0 is used),
  aftertouch, lyrics and tempo (pretty_midi already turned ticks into seconds).

Audio is rendered at the oversampled internal rate in blocks and decimated on the fly with
soxr's streaming resampler, so memory follows the output, never the internal rate.
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np
import pretty_midi
import soxr

from waveloom.data.synth import engine

_SUSTAIN, _VOLUME, _EXPRESSION = 64, 7, 11
_PASSED_CONTROLLERS = (6, 38, 98, 99, 100, 101)  # (N)RPN select and data entry
_BLOCK = 8192  # internal-rate samples rendered per call
# Event kinds, in the order they apply at one instant: controllers, note-offs, note-ons.
_CONTROL, _BEND, _OFF, _ON = 0, 1, 2, 3


def _pedal_intervals(instrument: pretty_midi.Instrument) -> list[tuple[float, float]]:
    """[(down, up)] seconds of the sustain pedal, from CC 64 (>= 64 is down)."""
    intervals, down = [], None
    for cc in sorted(instrument.control_changes, key=lambda c: c.time):
        if cc.number != _SUSTAIN:
            continue
        if cc.value >= 64 and down is None:
            down = cc.time
        elif cc.value < 64 and down is not None:
            intervals.append((down, cc.time))
            down = None
    if down is not None:
        intervals.append((down, float("inf")))
    return intervals


def note_spans(instrument: pretty_midi.Instrument) -> list[tuple[float, float, int, int]]:
    """[(on, off, pitch, velocity)] seconds after the sustain pedal and same-key restrikes."""
    pedal = _pedal_intervals(instrument)
    downs = [d for d, _ in pedal]
    onsets: dict[int, list[float]] = {}
    for note in instrument.notes:
        onsets.setdefault(note.pitch, []).append(note.start)
    for times in onsets.values():
        times.sort()
    last_end = max((n.end for n in instrument.notes), default=0.0)
    spans = []
    for note in instrument.notes:
        off = max(note.end, note.start)
        k = bisect_right(downs, off) - 1
        if k >= 0 and pedal[k][0] <= off < pedal[k][1]:
            off = pedal[k][1] if np.isfinite(pedal[k][1]) else max(last_end, off)
        times = onsets[note.pitch]
        later = bisect_right(times, note.start)
        if later < len(times):
            off = min(off, times[later])
        if off > note.start:  # a zero-length note would sort its off before its on and hang
            spans.append((note.start, off, note.pitch, note.velocity))
    return spans


def _gm_volume(cc7: int, cc11: int) -> float:
    return (cc7 / 127.0) ** 2 * (cc11 / 127.0) ** 2


class _Performance:
    """The synth channels of a piece and its time-sorted events."""

    def __init__(self, midi: pretty_midi.PrettyMIDI):
        self.programs: list[tuple[int, bool]] = []  # per synth channel: (program, is_drum)
        self.velocity: list[int] = []  # per synth channel
        self.channels: list[list[int]] = []  # per instrument: its synth channels
        self.events: list[tuple] = []  # (seconds, kind, instrument or channel, a, b)
        for index, instrument in enumerate(midi.instruments):
            spans = note_spans(instrument)
            by_velocity: dict[int, int] = {}
            for velocity in sorted({v for *_, v in spans if v > 0}):
                by_velocity[velocity] = len(self.programs)
                self.programs.append((int(instrument.program), bool(instrument.is_drum)))
                self.velocity.append(velocity)
            self.channels.append(list(by_velocity.values()))
            for cc in instrument.control_changes:
                if cc.number in (_VOLUME, _EXPRESSION) + _PASSED_CONTROLLERS:
                    self.events.append((cc.time, _CONTROL, index, cc.number, cc.value))
            for bend in instrument.pitch_bends:
                self.events.append((bend.time, _BEND, index, bend.pitch + 8192, 0))
            for on, off, pitch, velocity in spans:
                if velocity > 0:
                    channel = by_velocity[velocity]
                    self.events.append((off, _OFF, channel, pitch, 0))
                    self.events.append((on, _ON, channel, pitch, velocity))
        self.events.sort(key=lambda e: (e[0], e[1]))
        self.end = max((e[0] for e in self.events), default=0.0)

    def setup(self, synth) -> None:
        for channel, (program, is_drum) in enumerate(self.programs):
            synth.channel_set_preset_number(channel, program, is_drum)
            synth.channel_set_volume(channel, engine.velocity_volume(self.velocity[channel]))

    def apply(self, synth, event: tuple, controls: dict[int, list[int]]) -> None:
        _, kind, target, a, b = event
        if kind == _ON:
            synth.channel_note_on(target, a, b / 127.0)
        elif kind == _OFF:
            synth.channel_note_off(target, a)
        elif kind == _BEND:
            for channel in self.channels[target]:
                synth.channel_set_pitch_wheel(channel, int(min(max(a, 0), 16383)))
        elif a in (_VOLUME, _EXPRESSION):
            state = controls.setdefault(target, [127, 127])
            state[0 if a == _VOLUME else 1] = int(b)
            for channel in self.channels[target]:
                gain = engine.velocity_volume(self.velocity[channel]) * _gm_volume(*state)
                synth.channel_set_volume(channel, gain)
        else:
            for channel in self.channels[target]:
                synth.channel_midi_control(channel, a, int(b))


def render_midi_audio(
    midi: pretty_midi.PrettyMIDI, font, render_rate: int, sample_rate: int, tail_seconds: float
) -> np.ndarray:
    """[T] float32 at ``sample_rate``, the SoundFont's own level (may exceed 1: not clipped).

    ``font`` is a loaded SoundFont (:func:`engine.load_soundfont`); the audio lasts until the
    last event plus ``tail_seconds`` of release.
    """
    performance = _Performance(midi)
    synth = engine.fresh(font, render_rate)
    performance.setup(synth)
    stream = soxr.ResampleStream(render_rate, sample_rate, 1, dtype="float32", quality="HQ")
    buffer = np.zeros(_BLOCK, dtype=np.float32)
    chunks: list[np.ndarray] = []
    cursor = 0  # internal-rate samples rendered so far

    def advance(to: int) -> None:
        nonlocal cursor
        while cursor < to:
            n = min(_BLOCK, to - cursor)
            engine.render_into(synth, buffer[:n])
            chunks.append(stream.resample_chunk(buffer[:n]).copy())
            cursor += n

    controls: dict[int, list[int]] = {}
    for event in performance.events:
        advance(round(event[0] * render_rate))
        performance.apply(synth, event, controls)
    total = performance.end + tail_seconds
    advance(round(total * render_rate))
    chunks.append(stream.resample_chunk(np.zeros(0, np.float32), last=True))
    audio = np.concatenate(chunks)
    length = round(total * sample_rate)
    return np.pad(audio, (0, max(0, length - len(audio))))[:length].astype(np.float32)
