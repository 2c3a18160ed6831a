"""``waveloom generate``: checkpoint in, WAV + spectrogram PNG per sample out.

This module only turns CLI-level requests (a pitch number, an instrument name, a priming file)
into the model's ``cond`` dict and writes files; the sampling engines live in
:mod:`waveloom.sampling`. The same seed gives byte-identical files.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch

from waveloom.audio.io import load_audio, save_audio
from waveloom.checkpoint import load_checkpoint, read_extra
from waveloom.device import pick_device  # noqa: F401 - re-exported for old imports
from waveloom.errors import ConfigError
from waveloom.sampling.engine import set_threads
from waveloom.sampling.hierarchy import is_manifest, load_hierarchy


def resolve_instrument(value: int | str | None, vocabulary: list[str]) -> int:
    """An instrument id, or a name from the training cache's vocabulary, -> its id."""
    if value is None:
        return 0
    text = str(value)
    if text.lstrip("-").isdigit():
        index = int(text)
        if vocabulary and not -1 <= index < len(vocabulary):
            raise ConfigError(
                f"--instrument {index}: this model knows ids 0..{len(vocabulary) - 1}"
            )
        return index
    if text in vocabulary:
        return vocabulary.index(text)
    known = ", ".join(vocabulary[:12]) + (" ..." if len(vocabulary) > 12 else "")
    raise ConfigError(f"--instrument {text!r} is not one this model was trained on: {known}")


def build_cond(
    model: Any,
    n: int,
    *,
    pitch: int | None,
    instrument: int | str | None,
    vocabulary: list[str],
    prime: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    keys = set(model.conditioning_keys())
    cond: dict[str, torch.Tensor] = {}
    if "pitch" in keys:
        p = 60 if pitch is None else int(pitch)
        if not 0 <= p <= 127:
            raise ConfigError(f"--pitch {p}: MIDI pitches are 0..127")
        cond["pitch"] = torch.full((n,), p, dtype=torch.long)
    if "instrument" in keys:
        cond["instrument"] = torch.full(
            (n,), resolve_instrument(instrument, vocabulary), dtype=torch.long
        )
    if "velocity" in keys:
        cond["velocity"] = torch.full((n,), 100, dtype=torch.long)
    if prime is not None:
        cond["prime"] = prime.expand(n, -1).contiguous()
    return cond


def generate_to_folder(
    checkpoint: str | Path,
    out: str | Path,
    *,
    n: int = 4,
    seconds: float = 2.0,
    pitch: int | None = None,
    instrument: int | str | None = None,
    temperature: float = 1.0,
    seed: int = 0,
    prime: str | Path | None = None,
    device: str = "auto",
    progress: bool = True,
    prefix: str = "sample",
    plots: bool = True,
    engine: str = "auto",
    threads: int | None = None,
    weights: str = "float32",
    interpolate: int | None = None,
) -> list[Path]:
    """Generate ``n`` samples of ``seconds`` each; write ``prefix-i.wav`` (+ .png) to ``out``.

    ``engine`` picks the sampling engine (:mod:`waveloom.sampling.engine`), ``threads`` the
    CPU threads of torch and the fast engine, ``weights`` the fast engine's weight precision.
    ``interpolate`` (GANs): instead of ``n`` independent samples, that many points along the
    spherical path from latent ``seed`` to latent ``seed + 1``, written as ``interp-i.wav``.
    """
    if n <= 0 or seconds <= 0:
        raise ConfigError("--n and --seconds must be positive")
    if temperature <= 0:
        raise ConfigError(f"--temperature {temperature}: must be > 0")
    dev = pick_device(device)
    set_threads(threads)
    if is_manifest(checkpoint):  # a hierarchy: prior -> levels -> audio, drawn top-down
        if prime is not None:
            raise ConfigError("--prime: a hierarchy is sampled from its prior down; it "
                              "cannot continue an audio file")
        model = load_hierarchy(checkpoint, map_location=dev)
        sr, vocabulary = model.sample_rate, model.instruments
    else:
        model, run = load_checkpoint(checkpoint, map_location=dev)
        sr = run.data.sample_rate
        vocabulary = list(read_extra(checkpoint).get("instruments", []))
    if interpolate is not None:
        from waveloom.models.adversarial import Adversarial

        if not isinstance(model, Adversarial):
            raise ConfigError(f"--interpolate: {type(model).__name__} has no latent to "
                              "interpolate; it is for GAN checkpoints (wavegan, specgan, "
                              "gansynth)")
        n, prefix = interpolate, "interp"
    prime_t = None
    if prime is not None:
        audio, _ = load_audio(prime, sr)
        prime_t = torch.from_numpy(audio)[None]
    cond = build_cond(model, n, pitch=pitch, instrument=instrument, vocabulary=vocabulary,
                      prime=prime_t)
    cond = {k: v.to(dev) for k, v in cond.items()}
    length = int(round(seconds * sr))
    options: dict[str, Any] = {}
    if engine != "auto" or weights != "float32":
        accepted = inspect.signature(model.generate).parameters
        if "engine" not in accepted:
            raise ConfigError(
                f"--engine/--weights: {type(model).__name__} has a single sampling engine; "
                "leave them at their defaults"
            )
        options = {"engine": engine, "weights": weights}
    if interpolate is not None:
        audio = model.interpolate(n, length, cond, seed=seed, temperature=temperature)
    else:
        audio = model.generate(n, length, cond, temperature=temperature, seed=seed,
                               progress=progress, **options)
    audio = audio.float().cpu().numpy()
    out = Path(out)
    paths = []
    for i in range(n):
        wav = save_audio(out / f"{prefix}-{i}.wav", audio[i], sr)
        paths.append(wav)
        if plots:
            from waveloom.audio.plots import plot_rainbowgram, plot_spectrogram

            # Phase-modelling families (GANSynth) show their phase: a rainbowgram.
            plot = plot_rainbowgram if getattr(model, "rainbowgram", False) else plot_spectrogram
            plot(audio[i], sr, wav.with_suffix(".png"), title=wav.stem)
    return paths
