"""The studio's jobs, one function per panel: each calls the verb's own function and returns
the files it wrote (audio first, then pictures and MIDI)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from waveloom.studio.tasks import Entry

_SOURCES: dict[Path, Any] = {}
_LOCK = threading.Lock()


def _source(entry: Entry):
    """The loaded model (kept: the next request for it starts at once)."""
    from waveloom.app.generate import load_source

    with _LOCK:
        if entry.path not in _SOURCES:
            _SOURCES[entry.path] = load_source(entry.path, "cpu")
        return _SOURCES[entry.path]


def _with_pictures(paths: list[Path]) -> list[Path]:
    out = []
    for p in paths:
        out.append(Path(p))
        png = Path(p).with_suffix(".png")
        if png.is_file() and png not in out:
            out.append(png)
    return out


def run_generate(entry: Entry, params: dict, folder: Path) -> list[Path]:
    from waveloom.app.common import recommended_sampling
    from waveloom.app.generate import draw_to_folder
    from waveloom.config import SamplingOptions

    # an empty field is what the checkpoint was measured at (extra.sampling), else the default
    recorded = recommended_sampling(entry.path)
    chosen = {"temperature": params["temperature"], "denoising_steps": params["steps"]}
    options = SamplingOptions(**{**recorded, **{k: v for k, v in chosen.items() if v}},
                              seed=params["seed"], progress=True)
    paths = draw_to_folder(_source(entry), folder, n=1, seconds=params["seconds"],
                           pitch=params["pitch"], instrument=params["instrument"],
                           options=options, cfg=params["cfg"])
    return _with_pictures(paths)


def run_compose(entry: Entry, params: dict, folder: Path) -> list[Path]:
    from waveloom.app.compose import compose_piece

    piece = compose_piece(entry.path, params["seconds"], folder, seed=params["seed"],
                          temperature=params["temperature"])
    return sorted(piece.paths, key=lambda p: p.suffix != ".wav")


def run_translate(entry: Entry, params: dict, folder: Path) -> list[Path]:
    """A translator's transfer: the upload played in ``params['domain']``."""
    import torch

    from waveloom.app.translate import domain_names, resolve_domain
    from waveloom.audio.io import load_audio, save_audio
    from waveloom.audio.plots import plot_spectrogram
    from waveloom.config import SamplingOptions
    from waveloom.errors import ConfigError
    from waveloom.models.load import load_checkpoint
    from waveloom.sampling.translate import translate

    if params["domain"] is None:
        raise ConfigError("domain: a translator needs the domain to play the sound in")
    model, _ = load_checkpoint(entry.path, "cpu", expect_family="translator")
    names = domain_names(entry.path)
    domain = resolve_domain(str(params["domain"]), names, model.config.domains)
    sr = model.config.sample_rate
    audio, _ = load_audio(params["audio"], sr)
    options = SamplingOptions(seed=params["seed"], progress=True)
    out = translate(model, torch.from_numpy(audio)[None], domain, options)[0].float().numpy()
    label = names[domain] if domain < len(names) else str(domain)
    wav = save_audio(folder / f"{params['audio'].stem}-to-{label}.wav", out, sr)
    plot_spectrogram(out[: 4 * sr], sr, wav.with_suffix(".png"), title=wav.stem)
    return [wav, wav.with_suffix(".png")]


def run_transfer(entry: Entry, params: dict, folder: Path) -> list[Path]:
    """A DDSP instrument plays the upload (a translator translates it)."""
    if entry.family == "translator":
        return run_translate(entry, params, folder)
    from waveloom.app.ddsp import _threads
    from waveloom.audio.io import load_audio, save_audio
    from waveloom.audio.plots import plot_spectrogram
    from waveloom.models.ddsp.perform import audio_controls, render
    from waveloom.models.load import load_checkpoint

    model, _ = load_checkpoint(entry.path, "cpu", expect_family="ddsp")
    sr = model.config.sample_rate
    with _threads():
        audio, _ = load_audio(params["audio"], sr)
        controls = audio_controls(model, audio, params["audio"].name, params["pitch_shift"])
        out = render(model, controls, params["seed"], length=len(audio))
    wav = save_audio(folder / f"{params['audio'].stem}-{entry.name}.wav", out, sr)
    plot_spectrogram(out[: 4 * sr], sr, wav.with_suffix(".png"), title=wav.stem)
    return [wav, wav.with_suffix(".png")]


def run_interpolate(entry: Entry, params: dict, folder: Path) -> list[Path]:
    from waveloom.app.autoencode import interpolate_files
    from waveloom.config import SamplingOptions

    paths = interpolate_files(entry.path, params["a"], params["b"], folder,
                              steps=params["steps"], pitch=params["pitch"],
                              seconds=params["seconds"], device="cpu",
                              options=SamplingOptions(progress=True))
    return [Path(p) for p in paths]
