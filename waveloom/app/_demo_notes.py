"""The demo page's section for a shipped note model that is not the demo WaveNet (the zoo).

A SampleRNN, a GANSynth or a DiffWave is asked for a few notes on two of its instruments at
low, middle and high pitches, in one batched call; each note is labelled with the pitch pYIN
hears (an estimator that shares nothing with the model), so the page says how many came out
on pitch and a listener can hear the rest. The notes are short (:data:`SECONDS`): an autoregressive
SampleRNN draws 16,000 samples a second one step at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

#: Pitches asked of every instrument, and the instrument families tried, in order.
PITCHES = (48, 60, 72)
FAMILIES = ("flute", "guitar", "keyboard", "brass")
SECONDS = 1.0
INSTRUMENTS = 2  # instruments per model


def pick_instruments(vocab: list[str], count: int = INSTRUMENTS) -> list[int]:
    """Ids of up to ``count`` instruments of ``vocab``, first of :data:`FAMILIES` (id 0 when the
    model saved no names)."""
    picked = [i for family in FAMILIES for i, name in enumerate(vocab) if family in name]
    unique = list(dict.fromkeys(picked))[:count]
    return unique or [0]


def notes_section(ckpt: Path, out: Path, section: Callable[..., str],
                  progress: bool = False) -> str:
    """Notes from the note model ``ckpt`` with their heard pitches; the section's HTML."""
    import torch

    from waveloom.app.common import recommended_sampling
    from waveloom.app.demo import _Demo, _heard
    from waveloom.audio.io import save_audio
    from waveloom.audio.plots import plot_spectrogram
    from waveloom.config import SamplingOptions
    from waveloom.evaluate.pitch import estimate_pitch
    from waveloom.models.load import load_checkpoint, read_extra
    from waveloom.sampling.sample import sample

    model, run = load_checkpoint(ckpt, "cpu")
    sr, vocab = run.data.sample_rate, list(read_extra(ckpt).get("instruments", []))
    ids = pick_instruments(vocab)
    cells = [(i, p) for i in ids for p in PITCHES]
    demo = _Demo(model, sr, vocab, torch.device("cpu"), progress)
    cond = demo.cond([p for _, p in cells], [i for i, _ in cells])
    # as the card measured: temperature 1 (the demo WaveNet's section draws at 0.9) and, for
    # a diffusion model, the steps and sampler it records (extra.sampling)
    options = SamplingOptions(seed=0, progress=progress, **recommended_sampling(ckpt))
    notes = sample(model, len(cells), int(SECONDS * sr), cond, options).cpu().numpy()
    folder, items, report, hits = out / ckpt.stem, [], [], 0
    for (i, p), note in zip(cells, notes):
        name = vocab[i] if vocab else f"instrument {i}"
        heard = estimate_pitch(note, sr)
        ok = heard.cents_off(p) <= 50
        hits += ok
        wav = save_audio(folder / f"{name}-{p}.wav", note, sr)
        png = plot_spectrogram(note, sr, wav.with_suffix(".png"), title=f"{name}, MIDI {p}")
        items.append((f"{name}, MIDI {p}: {_heard(heard, p)}", wav, png))
        report.append({"instrument": name, "pitch": p, "on_pitch": bool(ok)})
    (folder / "pitch.json").write_text(json.dumps(
        {"notes": report, "on_pitch": hits, "estimator": "pyin", "tolerance_cents": 50},
        indent=1) + "\n")
    note = (f"{len(cells)} notes of {SECONDS:g} s from {ckpt.stem} ({run.family}), seed 0; pYIN "
            f"hears {hits} of {len(cells)} within 50 cents of the pitch asked for.")
    return section(f"Notes from {ckpt.stem} ({run.family})", items, out, note)
