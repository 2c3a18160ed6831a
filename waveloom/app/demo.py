"""``make demo``: the main job, end to end on built-in data and the shipped demo model.

It renders a few reference notes from the bundled SoundFont (so a listener hears what the model
was trained on), then, with the shipped small WaveNet, generates a short melody and single notes
across instruments. Everything lands in one folder with an ``index.html`` to listen and look.
"""

from __future__ import annotations

import argparse
import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from waveloom.app.common import add_quiet_arg
from waveloom.shipped import DEFAULT_NOTES

if TYPE_CHECKING:
    import numpy as np
    import torch

    from waveloom.evaluate.pitch import PitchEstimate

ASSETS = Path(__file__).resolve().parent.parent / "assets"
#: The demo WaveNet: the Gaussian-head one, on pitch in 333 of 348 grid cells over two seeds
#: (wavenet-small-notes, the softmax one: 306 of 348; docs/wavenet.md).
DEMO_CHECKPOINT = DEFAULT_NOTES
DEMO_AUTOENCODER = ASSETS / "nsynth-ae-small-notes.safetensors"
#: The shipped DDSP instruments: every asset named so plays the demo's transfer section.
DDSP_ASSETS = "ddsp-*.safetensors"
#: The shipped vocoder: the first asset named so plays the demo's vocoder section.
VOCODER_ASSETS = "melgan-*.safetensors"
#: The zoo's other note models: every asset named so gets a section of notes.
ZOO_NOTE_ASSETS = ("samplernn-*.safetensors", "gansynth-*.safetensors", "diffwave-*.safetensors")

#: (pitch, seconds) of the demo melody: the opening of "Ode to Joy", in C.
MELODY = [(64, 0.5), (64, 0.5), (65, 0.5), (67, 0.5), (67, 0.5), (65, 0.5), (64, 0.5), (62, 0.5),
          (60, 0.5), (60, 0.5), (62, 0.5), (64, 0.5), (64, 0.75), (62, 0.25), (62, 1.0)]
#: Instrument families tried in order for the melody: the first one the model knows plays it.
#: The flute sustains and the shipped model holds its pitch best (BENCHMARKS.md); brass, first
#: in the vocabulary, is the family whose generated notes most often fade.
MELODY_FAMILIES = ("flute", "keyboard", "string")
#: Sampling temperature of the demo. The shipped model scores the same on the 24-note pitch check
#: at 0.9 and 1.0 (109 of 120 over five seeds) and a little better at 0.9 on the 72-note grid
#: (188 vs 184 of 216): BENCHMARKS.md, "WaveNet demo model".
DEMO_TEMPERATURE = 0.9
#: Pitches of the single notes, played on every instrument of the model.
SINGLE_PITCHES = (48, 60, 72)
#: General MIDI programs of the demo model's training notes (keyboard, reed organ, guitar,
#: string, brass, flute: BENCHMARKS.md): the reference notes rendered beside its samples.
DEMO_PROGRAMS = (0, 20, 24, 40, 56, 73)


#: One row of the demo page: (label, WAV, image or None).
Item = tuple[str, Path, Path | None]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    de = subparsers.add_parser("demo", help="the main job: render data, generate with the demo "
                               "model")
    de.add_argument("--out", type=Path, default=Path("out/demo"))
    add_quiet_arg(de)
    de.set_defaults(run=run)


def run(args: argparse.Namespace) -> int | None:
    index = run_demo(args.out, progress=not args.quiet)
    print(f"open {index} to listen")
    return 0


def _section(
    title: str, items: list[tuple[str, Path, Path | None]], root: Path, note: str = ""
) -> str:
    rows = []
    for label, wav, png in items:
        img = f'<img src="{html.escape(str(png.relative_to(root)))}" width="480">' if png else ""
        rows.append(
            f"<div class='item'><h3>{html.escape(label)}</h3>"
            f"<audio controls src='{html.escape(str(wav.relative_to(root)))}'></audio>"
            f"<br>{img}</div>"
        )
    return f"<h2>{html.escape(title)}</h2><p>{html.escape(note)}</p>" + "".join(rows)


def _card_figures(checkpoints: list[Path]) -> str:
    """A line per checkpoint heading its section: its card's headline figure and data
    (``waveloom models NAME`` has the rest), or that nothing was measured yet."""
    from waveloom.errors import WaveloomError
    from waveloom.zoo.card import card_of

    lines = []
    for path in checkpoints:
        try:
            card = card_of(path)
        except (WaveloomError, OSError):
            continue
        head = card.headline()
        what = f"{head.short()}, on {head.data}" if head else "nothing measured yet"
        lines.append(f"<b>{html.escape(card.name)}</b> ({card.family}, "
                     f"{card.size_bytes / 1e6:.1f} MB): {html.escape(what)}")
    if not lines:
        return ""
    return ("<p class='card'>Measured (<code>waveloom models NAME</code>; "
            "docs/models.md):<br>" + "<br>".join(lines) + "</p>")


def _melody_instrument(vocab: list[str]) -> int:
    """Index of the first instrument of :data:`MELODY_FAMILIES` in ``vocab`` (0 if none)."""
    for family in MELODY_FAMILIES:
        for k, name in enumerate(vocab):
            if name.startswith(family):
                return k
    return 0


def _heard(estimate: PitchEstimate, target: int) -> str:
    """'heard 60.1 (+10 cents)' or 'no pitch heard': a pYIN verdict for a note's label."""
    if not math.isfinite(estimate.midi):
        return "no pitch heard"
    cents = 100 * (estimate.midi - target)
    return f"heard {estimate.midi:.1f} ({cents:+.0f} cents)"


def _crossfade_concat(pieces: list[np.ndarray], sr: int, fade_s: float = 0.01) -> np.ndarray:
    """Concatenate notes with short linear fades so note boundaries do not click."""
    import numpy as np

    fade = max(1, int(fade_s * sr))
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    out = []
    for piece in pieces:
        piece = piece.astype(np.float32).copy()
        piece[:fade] *= ramp
        piece[-fade:] *= ramp[::-1]
        out.append(piece)
    return np.concatenate(out)


def _interpolation_section(ckpt: Path, data_dir: Path, examples: dict, out: Path,
                           progress: bool) -> str:
    """Mix the codes of two rendered notes of one pitch (different instruments) and decode."""
    from waveloom.app.autoencode import interpolate_files
    from waveloom.app.common import checkpoint_temperature
    from waveloom.config import SamplingOptions

    notes = sorted(n for n in examples if examples[n]["pitch"] == 60)
    a, b = (data_dir / "audio" / f"{n}.wav" for n in (notes[0], notes[-1]))
    temperature = checkpoint_temperature(ckpt)  # the one its card was measured at
    paths = interpolate_files(ckpt, a, b, out / "interpolation", steps=5, pitch=60, seconds=1.0,
                              options=SamplingOptions(progress=progress,
                                                      temperature=temperature))
    wavs, sheet = paths[:-1], paths[-1]
    items = [(f"step {i} of {len(wavs) - 1}", wav, None) for i, wav in enumerate(wavs)]
    note = (f"The NSynth autoencoder's codes of {notes[0]} (step 0) and {notes[-1]} (last step), "
            f"mixed linearly and decoded at MIDI 60, temperature {temperature:g}.")
    img = f'<br><img src="{html.escape(str(sheet.relative_to(out)))}" width="1000">'
    return _section(f"Timbre interpolation ({ckpt.name})", items, out, note) + img


def run_demo(out: str | Path, *, progress: bool = True, checkpoint: Path | None = None,
             autoencoder: Path | None = None, ddsp: list[Path] | None = None,
             composer: Path | None = None, vocoder: Path | None = None,
             zoo: list[Path] | None = None) -> Path:
    """Write the demo folder; return the path of its ``index.html``.

    ``checkpoint`` (a WaveNet), ``autoencoder`` (an NSynth autoencoder), ``ddsp`` (DDSP
    instruments), ``composer`` (a Music Transformer), ``vocoder`` (a MelGAN) and ``zoo`` (other
    note models: SampleRNN, GANSynth) default to the shipped models; a section is skipped when
    its checkpoint is absent.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = out / "data"
    examples, data_section = _data_section(data_dir, out, progress)
    sections = [data_section]
    ckpt = Path(checkpoint) if checkpoint else DEMO_CHECKPOINT
    if ckpt.is_file():
        sections.append(_card_figures([ckpt]) + _model_section(ckpt, out, progress))
    else:
        sections.append(
            "<h2>Demo model</h2><p>No shipped checkpoint found at "
            f"{html.escape(str(ckpt))}; only the built-in data is shown.</p>"
        )
    # Timbre interpolation with the shipped autoencoder: two instruments at one pitch.
    ae = Path(autoencoder) if autoencoder else DEMO_AUTOENCODER
    if ae.is_file():
        sections.append(_card_figures([ae]) +
                        _interpolation_section(ae, data_dir, examples, out, progress))
    instruments = sorted(ASSETS.glob(DDSP_ASSETS)) if ddsp is None else list(ddsp)
    if instruments:
        from waveloom.app._demo_ddsp import ddsp_section

        sections.append(_card_figures(instruments) +
                        ddsp_section(instruments, MELODY, out, _section))
    shipped_vocoders = sorted(ASSETS.glob(VOCODER_ASSETS))
    voc = Path(vocoder) if vocoder else (shipped_vocoders[0] if shipped_vocoders else None)
    if voc is not None and voc.is_file():
        from waveloom.app._demo_vocoder import vocoder_section

        sections.append(_card_figures([voc]) +
                        vocoder_section(voc, data_dir, examples, out, _section))
    notes = ([p for pattern in ZOO_NOTE_ASSETS for p in sorted(ASSETS.glob(pattern))]
             if zoo is None else list(zoo))
    if notes:
        from waveloom.app._demo_notes import notes_section

        for model in notes:
            sections.append(_card_figures([model]) +
                            notes_section(model, out, _section, progress))
    from waveloom.app._demo_compose import compose_section
    from waveloom.app.compose import DEFAULT_MODEL

    composer = Path(composer) if composer else DEFAULT_MODEL
    sections.append(_card_figures([composer]) + compose_section(composer, out, _section))
    index = out / "index.html"
    index.write_text(
        "<!doctype html><meta charset='utf-8'><title>waveloom demo</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        ".item{display:inline-block;margin:8px;vertical-align:top}</style>"
        "<h1>waveloom demo</h1>" + "".join(sections)
    )
    return index


def _data_section(data_dir: Path, out: Path, progress: bool) -> tuple[dict, str]:
    """Built-in data: what the demo model was trained on, rendered from the bundled SoundFont.
    Returns the rendered notes' examples.json and the page section."""
    from waveloom.audio.io import load_audio
    from waveloom.audio.plots import plot_spectrogram
    from waveloom.data.synth import render_notes

    render_notes(data_dir, programs=list(DEMO_PROGRAMS), pitches=list(SINGLE_PITCHES),
                 velocities=[100], progress=progress)
    examples = json.loads((data_dir / "examples.json").read_text())
    items = []
    for note_str in sorted(examples):
        wav = data_dir / "audio" / f"{note_str}.wav"
        audio, sr = load_audio(wav)
        png = plot_spectrogram(audio, sr, out / "data-png" / f"{note_str}.png", title=note_str)
        items.append((note_str, wav, png))
    return examples, _section("Built-in data (rendered from the bundled SoundFont)", items, out)


@dataclass
class _Demo:
    """The loaded demo WaveNet and how to condition and draw it."""

    model: Any
    sr: int  # Hz
    vocab: list[str]  # instrument names, by id
    device: torch.device
    progress: bool

    def cond(self, pitches: list[int], instruments: list[int]) -> dict[str, torch.Tensor]:
        """One label per note ([n] tensors) for each label the model takes."""
        import torch

        keys, c = set(self.model.conditioning_keys()), {}
        if "pitch" in keys:
            c["pitch"] = torch.tensor(pitches, device=self.device)
        if "instrument" in keys:
            c["instrument"] = torch.tensor(instruments, device=self.device)
        if "velocity" in keys:
            c["velocity"] = torch.full((len(pitches),), 100, device=self.device)
        return c

    def draw(self, pitches: list[int], instruments: list[int], length: int,
             seed: int) -> np.ndarray:
        """One note [length] per pitch, all in one batched call: [n, length]."""
        from waveloom.config import SamplingOptions
        from waveloom.sampling.sample import sample

        options = SamplingOptions(seed=seed, temperature=DEMO_TEMPERATURE,
                                  progress=self.progress)
        cond = self.cond(pitches, instruments)
        return sample(self.model, len(pitches), length, cond, options).cpu().numpy()


def _model_section(ckpt: Path, out: Path, progress: bool) -> str:
    """A melody and single notes on every instrument from the WaveNet ``ckpt``; every note is
    labelled with the pitch pYIN (an estimator that shares nothing with the model) hears."""
    from waveloom.device import pick_device
    from waveloom.models.load import load_checkpoint, read_extra

    device = pick_device("auto")
    model, run = load_checkpoint(ckpt, map_location=device)
    demo = _Demo(model, run.data.sample_rate, list(read_extra(ckpt).get("instruments", [])),
                 device, progress)
    melody_hits, items = _melody(demo, out)
    hits, singles = _singles(demo, out, items)
    summary = (f"Sampled at temperature {DEMO_TEMPERATURE}. Every label gives the pitch "
               f"pYIN hears: {melody_hits} of {len(MELODY)} melody notes and {hits} of "
               f"{singles} single notes are within 50 cents of the requested pitch.")
    (out / "model" / "pitch.json").write_text(json.dumps(
        {"temperature": DEMO_TEMPERATURE, "melody_on_pitch": int(melody_hits),
         "melody_notes": len(MELODY), "singles_on_pitch": int(hits),
         "singles": singles, "estimator": "pyin", "tolerance_cents": 50}, indent=2))
    return _section(f"Generated by the demo WaveNet ({ckpt.name})", items, out, summary)


def _melody(demo: _Demo, out: Path) -> tuple[int, list[Item]]:
    """The melody, every note sampled in one batched call then joined: (notes on pitch,
    its page item)."""
    from waveloom.audio.io import save_audio
    from waveloom.audio.plots import plot_spectrogram
    from waveloom.evaluate.pitch import estimate_pitch

    sr, lead = demo.sr, _melody_instrument(demo.vocab)
    longest = int(max(s for _, s in MELODY) * sr)
    notes = demo.draw([p for p, _ in MELODY], [lead] * len(MELODY), longest, seed=0)
    pieces = [notes[i, : int(s * sr)] for i, (_, s) in enumerate(MELODY)]
    hits = sum(estimate_pitch(piece, sr).cents_off(p) <= 50
               for piece, (p, _) in zip(pieces, MELODY))
    melody = _crossfade_concat(pieces, sr)
    wav = save_audio(out / "model" / "melody.wav", melody, sr)
    png = plot_spectrogram(melody, sr, wav.with_suffix(".png"), title="generated melody")
    lead_name = demo.vocab[lead] if demo.vocab else "instrument 0"
    return hits, [(f"Melody ({lead_name}): {hits} of {len(MELODY)} notes within 50 cents",
                   wav, png)]


def _singles(demo: _Demo, out: Path, items: list[Item]) -> tuple[int, int]:
    """Every instrument at a low, a middle and a high pitch, appended to ``items``:
    (notes on pitch, notes)."""
    from waveloom.audio.io import save_audio
    from waveloom.audio.plots import plot_spectrogram
    from waveloom.evaluate.pitch import estimate_pitch

    sr, vocab = demo.sr, demo.vocab
    singles = [(i, p) for i in range(max(1, len(vocab))) for p in SINGLE_PITCHES]
    audio = demo.draw([p for _, p in singles], [i for i, _ in singles], sr, seed=1)
    hits = 0
    for k, (inst, pitch) in enumerate(singles):
        name = vocab[inst] if vocab else f"instrument {inst}"
        estimate = estimate_pitch(audio[k], sr)
        hits += estimate.cents_off(pitch) <= 50
        wav = save_audio(out / "model" / f"note-{inst}-{pitch}.wav", audio[k], sr)
        png = plot_spectrogram(audio[k], sr, wav.with_suffix(".png"), title=f"{name} {pitch}")
        items.append((f"{name}, MIDI {pitch}: {_heard(estimate, pitch)}", wav, png))
    return hits, len(singles)
