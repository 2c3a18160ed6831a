"""``waveloom encode | decode | interpolate``: files in, codes or audio (plus images) out.

This module turns CLI requests into calls of an autoencoder's ``encode`` / ``decode`` and writes
files; the models live in :mod:`waveloom.models` (any family whose class is an
:class:`~waveloom.models.base.Autoencoder`), sampling in :mod:`waveloom.sampling`.

* encode: ``NAME.npy`` (float32 ``[D, frames]``, one frame per ``hop`` samples) and
  ``NAME.png`` (the code as an image) per input file;
* decode: ``NAME.wav`` and a spectrogram ``NAME.png`` per code file (``NAME-i`` for each code of
  an ``[n, D, frames]`` file);
* interpolate: the codes of two sounds mixed as ``(1 - a) z_A + a z_B`` for ``steps`` values of
  ``a`` from 0 to 1, each decoded to ``interp-i.wav``, and ``rainbowgrams.png`` comparing A, the
  steps and B side by side.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import torch

from waveloom.audio.io import load_audio, save_audio
from waveloom.checkpoint import load_checkpoint, read_config
from waveloom.errors import AudioError, CheckpointError, ConfigError, DataError
from waveloom.sampling.engine import set_threads


def autoencoder_families() -> list[str]:
    """Registered families whose model is an autoencoder."""
    from waveloom.models.base import Autoencoder
    from waveloom.models.registry import family_names, get_family

    return [f for f in family_names() if issubclass(get_family(f).model, Autoencoder)]


def load_autoencoder(checkpoint: str | Path, device: str = "auto") -> tuple[Any, Any]:
    """``(model, run_config)`` of an autoencoder checkpoint; a one-line CheckpointError for a
    missing file or a checkpoint of a family without an encoder."""
    from waveloom.generate import pick_device

    run = read_config(checkpoint)
    families = autoencoder_families()
    if run.family not in families:
        raise CheckpointError(
            f"{checkpoint}: a {run.family!r} checkpoint has no encoder; this needs an "
            f"autoencoder checkpoint ({', '.join(families)})"
        )
    return load_checkpoint(checkpoint, map_location=pick_device(device),
                           expect_family=run.family)


def _check_files(paths: list[Path], what: str) -> None:
    """Fail on the first missing input before any work is done."""
    for path in paths:
        if not Path(path).is_file():
            raise (AudioError if what == "audio" else DataError)(f"{path}: {what} file not found")


def _unique_stems(paths: list[Path]) -> list[str]:
    """File stems, made unique (``x``, ``x-2``, ...) so outputs never overwrite each other."""
    seen: dict[str, int] = {}
    stems = []
    for path in paths:
        stem = Path(path).stem
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return stems


def _pitch(model: Any, pitch: int | None) -> int | None:
    """The pitch label to decode with: required by a pitch-conditioned model that never
    learnt the "unknown" label (no label dropout in training)."""
    if pitch is not None and not 0 <= int(pitch) <= 127:
        raise ConfigError(f"--pitch {pitch}: MIDI pitches are 0..127")
    if "pitch" not in model.conditioning_keys():
        return None
    if pitch is None and getattr(model.config, "cond_dropout", 0.0) <= 0:
        raise ConfigError("this autoencoder is pitch-conditioned and was not trained with an "
                          "unknown pitch: pass --pitch P (MIDI)")
    return pitch


def decode_options(model: Any, engine: str, weights: str) -> dict[str, Any]:
    """Sampling-engine options for models whose decoder samples (a WaveNet decoder)."""
    accepted = inspect.signature(model.decode).parameters
    if "engine" in accepted:
        return {"engine": engine, "weights": weights}
    if engine != "auto" or weights != "float32":
        raise ConfigError(f"--engine/--weights: {type(model).__name__} does not sample (its "
                          "decoder is deterministic); leave them at their defaults")
    return {}


def _load_clip(path: Path, sr: int, seconds: float | None) -> torch.Tensor:
    audio, _ = load_audio(path, sr)
    if seconds is not None:
        audio = audio[: max(1, int(round(seconds * sr)))]
    return torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))


def encode_files(
    checkpoint: str | Path,
    files: list[str | Path],
    out: str | Path,
    *,
    seconds: float | None = None,
    device: str = "auto",
    plots: bool = True,
) -> list[Path]:
    """Encode each audio file (its first ``seconds``, default all) to ``out/NAME.npy``
    (float32 [D, frames]) and ``out/NAME.png``; returns the .npy paths."""
    if not files:
        raise ConfigError("give at least one audio file to encode")
    paths = [Path(f) for f in files]
    _check_files(paths, "audio")
    model, run = load_autoencoder(checkpoint, device)
    sr, out = run.data.sample_rate, Path(out)
    written = []
    for path, stem in zip(paths, _unique_stems(paths)):
        with torch.no_grad():
            z = model.encode(_load_clip(path, sr, seconds)[None])[0].float().cpu().numpy()
        out.mkdir(parents=True, exist_ok=True)
        target = out / f"{stem}.npy"
        np.save(target, z.astype(np.float32))
        if plots:
            from waveloom.audio.plots import plot_embedding

            plot_embedding(z, model.hop, sr, target.with_suffix(".png"),
                           title=f"{path.name}: {z.shape[0]}-dim code every {model.hop} samples")
        written.append(target)
    return written


def _read_codes(path: Path) -> np.ndarray:
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise DataError(f"{path}: not a .npy code array (write one with `waveloom encode`)"
                        ) from None
    if not np.issubdtype(z.dtype, np.number):
        raise DataError(f"{path}: holds {z.dtype} values, not a numeric code array")
    return z


def decode_files(
    checkpoint: str | Path,
    embeddings: list[str | Path],
    out: str | Path,
    *,
    pitch: int | None = None,
    seconds: float | None = None,
    temperature: float = 1.0,
    seed: int = 0,
    engine: str = "auto",
    threads: int | None = None,
    weights: str = "float32",
    device: str = "auto",
    progress: bool = True,
    plots: bool = True,
) -> list[Path]:
    """Decode each code file ([D, frames] or [n, D, frames]) to ``out/NAME.wav`` (+ .png).

    ``seconds`` shortens the output (default: all frames, ``frames * hop`` samples). The WaveNet
    decoder samples on ``engine`` ('auto' picks the compiled fast engine on a CPU).
    """
    if not embeddings:
        raise ConfigError("give at least one .npy code file to decode")
    if temperature <= 0:
        raise ConfigError(f"--temperature {temperature}: must be > 0")
    if seconds is not None and seconds <= 0:
        raise ConfigError(f"--seconds {seconds}: must be > 0")
    paths = [Path(e) for e in embeddings]
    _check_files(paths, "code")
    codes = [_read_codes(p) for p in paths]
    set_threads(threads)
    model, run = load_autoencoder(checkpoint, device)
    sr, out = run.data.sample_rate, Path(out)
    label = _pitch(model, pitch)
    options = decode_options(model, engine, weights)
    if "engine" in options:
        options["temperature"] = temperature
    written = []
    for path, stem, raw in zip(paths, _unique_stems(paths), codes):
        z = model.check_codes(raw, where=str(path))
        length = z.shape[-1] * model.hop
        if seconds is not None:
            length = min(length, int(round(seconds * sr)))
        audio = model.decode(z, label, length, seed=seed, progress=progress, **options)
        audio = audio.float().cpu().numpy()
        for i, clip in enumerate(audio):
            name = stem if len(audio) == 1 else f"{stem}-{i}"
            wav = save_audio(out / f"{name}.wav", clip, sr)
            if plots:
                from waveloom.audio.plots import plot_spectrogram

                plot_spectrogram(clip, sr, wav.with_suffix(".png"), title=f"decoded {name}")
            written.append(wav)
    return written


def interpolate_files(
    checkpoint: str | Path,
    a: str | Path,
    b: str | Path,
    out: str | Path,
    *,
    steps: int = 5,
    pitch: int | None = None,
    seconds: float | None = None,
    temperature: float = 1.0,
    seed: int = 0,
    engine: str = "auto",
    threads: int | None = None,
    weights: str = "float32",
    device: str = "auto",
    progress: bool = True,
) -> list[Path]:
    """Mix the codes of ``a`` and ``b`` at ``steps`` weights 0..1, decode every mix, write
    ``out/interp-i.wav`` and ``out/rainbowgrams.png``; returns the WAV paths then the sheet.

    Both sounds are cut to the shorter one (and to ``seconds`` if given) so their codes have
    the same frames; step 0 is the reconstruction of ``a``, the last that of ``b``.
    """
    if steps < 2:
        raise ConfigError(f"--steps {steps}: need at least 2 (the two endpoints)")
    if temperature <= 0:
        raise ConfigError(f"--temperature {temperature}: must be > 0")
    if seconds is not None and seconds <= 0:
        raise ConfigError(f"--seconds {seconds}: must be > 0")
    paths = [Path(a), Path(b)]
    _check_files(paths, "audio")
    set_threads(threads)
    model, run = load_autoencoder(checkpoint, device)
    sr, out = run.data.sample_rate, Path(out)
    label = _pitch(model, pitch)
    options = decode_options(model, engine, weights)
    if "engine" in options:
        options["temperature"] = temperature
    clips = [_load_clip(p, sr, seconds) for p in paths]
    length = min(len(c) for c in clips)
    clips = [c[:length] for c in clips]
    with torch.no_grad():
        za, zb = (model.encode(c[None])[0] for c in clips)
    alphas = torch.linspace(0.0, 1.0, steps, device=za.device)
    mixes = (1.0 - alphas)[:, None, None] * za + alphas[:, None, None] * zb
    audio = model.decode(mixes, label, length, seed=seed, progress=progress, **options)
    audio = audio.float().cpu().numpy()
    written = []
    items: list[tuple[object, str]] = [(clips[0].numpy(), f"A: {paths[0].stem}")]
    for i, (alpha, clip) in enumerate(zip(alphas.tolist(), audio)):
        written.append(save_audio(out / f"interp-{i}.wav", clip, sr))
        items.append((clip, f"a = {alpha:.2f}"))
    items.append((clips[1].numpy(), f"B: {paths[1].stem}"))
    from waveloom.audio.plots import plot_sheet

    sheet = plot_sheet(items, sr, out / "rainbowgrams.png", kind="rainbow",
                       ncols=min(len(items), 4),
                       title=f"{paths[0].name} -> {paths[1].name}: code mixes (1-a) z_A + a z_B")
    return written + [sheet]
