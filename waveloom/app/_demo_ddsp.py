"""The demo page's DDSP section: one reference melody, played by every shipped DDSP instrument.

The melody is rendered from the bundled SoundFont (a flute, General MIDI program 73), so it is
real audio with its own timbre; ``transfer`` then tracks its f0 and loudness and plays them on
each instrument. Each note of each result is judged by pYIN (a tracker that shares nothing with
the model's own f0 features) against the score, so the page says how many notes landed within
50 cents, not only that audio was written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: General MIDI program of the reference melody (flute: it sustains, so every note has a pitch).
REFERENCE_PROGRAM = 73
#: Seconds cut from each end of a note before judging its pitch (the glide between notes).
EDGE_SECONDS = 0.06


def reference_melody(melody: list[tuple[int, float]], sample_rate: int) -> np.ndarray:
    """``melody`` ((MIDI pitch, seconds) per note, played legato) rendered by the bundled
    SoundFont at velocity 100: float32 ``[T]`` peaking at 0.5, 0.3 s of release after it."""
    import numpy as np
    import pretty_midi

    from waveloom.data.synth.engine import load_soundfont, render_rate_for
    from waveloom.data.synth.performance import render_midi_audio

    midi = pretty_midi.PrettyMIDI()
    line = pretty_midi.Instrument(program=REFERENCE_PROGRAM)
    start = 0.0
    for pitch, seconds in melody:
        line.notes.append(pretty_midi.Note(100, int(pitch), start, start + seconds))
        start += seconds
    midi.instruments.append(line)
    rate = render_rate_for(sample_rate)
    font, _ = load_soundfont(None, rate)
    audio = render_midi_audio(midi, font, rate, sample_rate, tail_seconds=0.3)
    return (0.5 * audio / max(1e-9, float(np.abs(audio).max()))).astype(np.float32)


def notes_on_pitch(audio: np.ndarray, sample_rate: int, melody: list[tuple[int, float]]) -> int:
    """How many notes of ``melody`` pYIN hears within 50 cents in ``audio`` (each note's span
    from the score, less :data:`EDGE_SECONDS` at both ends)."""
    from waveloom.evaluate.pitch import estimate_pitch

    hits, start = 0, 0.0
    for pitch, seconds in melody:
        a = int((start + EDGE_SECONDS) * sample_rate)
        b = int((start + seconds - EDGE_SECONDS) * sample_rate)
        hits += bool(estimate_pitch(audio[a:b], sample_rate).cents_off(pitch) <= 50)
        start += seconds
    return hits


def ddsp_section(checkpoints: list[Path], melody: list[tuple[int, float]], out: Path,
                 section) -> str:
    """The page section: the reference melody, then each checkpoint's transfer of it with its
    spectrogram and pitch count; ``section`` is the page's section writer. Writes
    ``out/ddsp/pitch.json``."""
    from waveloom.audio.io import save_audio
    from waveloom.audio.plots import plot_spectrogram
    from waveloom.models.ddsp.perform import audio_controls, render
    from waveloom.models.load import load_checkpoint

    folder = out / "ddsp"
    folder.mkdir(parents=True, exist_ok=True)
    sr = None
    items, report = [], {}
    for ckpt in checkpoints:
        model, run = load_checkpoint(ckpt, map_location="cpu")
        model.eval()
        if sr is None:
            sr = run.data.sample_rate
            ref = reference_melody(melody, sr)
            wav = save_audio(folder / "reference.wav", ref, sr)
            png = plot_spectrogram(ref, sr, wav.with_suffix(".png"), title="reference (flute)")
            items.append(("Reference melody (bundled SoundFont, flute)", wav, png))
        controls = audio_controls(model, ref, "reference melody", f0_method="yin")
        audio = render(model, controls, length=len(ref))
        hits = notes_on_pitch(audio, sr, melody)
        name = ckpt.stem
        wav = save_audio(folder / f"{name}.wav", audio, sr)
        png = plot_spectrogram(audio, sr, wav.with_suffix(".png"), title=name)
        how = "resynthesis (autoencoder)" if model.encoder is not None else "transfer"
        items.append((f"{name}, {how}: {hits} of {len(melody)} notes within 50 cents", wav, png))
        report[name] = {"notes_on_pitch": hits, "notes": len(melody)}
    (folder / "pitch.json").write_text(json.dumps(
        {"estimator": "pyin", "tolerance_cents": 50, "instruments": report}, indent=2))
    note = ("Timbre transfer: the reference's f0 (YIN) and loudness played by each shipped DDSP "
            "instrument (an autoencoder resynthesises it, its timbre code from the audio); each "
            "note's pitch as pYIN hears it, against the score.")
    return section("Timbre transfer with DDSP", items, out, note)
