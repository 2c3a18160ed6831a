"""Generate a labelled evaluation set from a checkpoint, for the metrics that judge samples.

``waveloom evaluate CKPT --metrics fad,pitch,...`` needs generated audio that asks for what the
reference holds: for a pitch/instrument-conditioned model, each sample is conditioned on the
labels of a reference clip (a seeded draw over the reference, so the generated set has the
reference's pitch and instrument distribution), and the labels are written to a ``labels.json``
sidecar beside the WAVs. The folder is then an ordinary evaluation set: it can be re-scored,
listened to (``waveloom listen``) or compared with another model's folder later.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from waveloom.audio.io import save_audio
from waveloom.errors import ConfigError
from waveloom.evaluate.audioset import write_sidecar

_GLOBAL_KEYS = ("pitch", "instrument", "velocity")


def _draw_labels(reference, n: int, keys: tuple[str, ...], vocabulary: list[str],
                 seed: int) -> list[dict[str, Any]]:
    """``n`` label dicts drawn from the reference's clips that the model can be conditioned on."""
    if not keys:
        return [{} for _ in range(n)]
    usable = []
    for lab in reference.labels if reference is not None else []:
        if "pitch" in keys and lab.get("pitch") is None:
            continue
        if "instrument" in keys and lab.get("instrument") not in vocabulary:
            continue
        usable.append(lab)
    if not usable:
        where = reference.description if reference is not None else "no reference"
        raise ConfigError(
            f"{where}: no clip has the labels this model is conditioned on ({', '.join(keys)}"
            f"{'; instruments must be among ' + ', '.join(vocabulary[:4]) if vocabulary else ''}"
            "); pass --reference with labelled notes (e.g. the training cache)"
        )
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(usable)) for _ in range(-(-n // len(usable)))])
    return [dict(usable[i]) for i in order[:n]]


def generate_set(
    checkpoint: str | Path,
    out: str | Path,
    *,
    reference=None,
    n: int = 64,
    seconds: float = 4.0,
    temperature: float = 1.0,
    seed: int = 0,
    denoising_steps: int | None = None,
    sampler: str | None = None,
    batch_size: int = 16,
    device: str = "auto",
    progress: bool = True,
) -> Path:
    """Write ``n`` samples of ``seconds`` from ``checkpoint`` + ``labels.json`` into ``out``.

    Conditioning labels come from ``reference`` (an :class:`~waveloom.evaluate.audioset.AudioSet`)
    when the model reads pitch or instrument; unconditional models need none.
    """
    from waveloom.config import SamplingOptions
    from waveloom.device import pick_device
    from waveloom.models.load import load_checkpoint, read_extra
    from waveloom.sampling.sample import sample

    if not (n > 0 and math.isfinite(seconds) and seconds > 0):  # nan and inf too (#19)
        raise ConfigError(f"--n-generate {n} and --seconds {seconds}: both must be finite "
                          "numbers > 0")
    dev = pick_device(device)
    model, run = load_checkpoint(checkpoint, map_location=dev)
    sr = run.data.sample_rate
    keys = tuple(model.conditioning_keys())
    other = [k for k in keys if k not in _GLOBAL_KEYS]
    if other:
        raise ConfigError(f"{checkpoint}: a model conditioned on {', '.join(other)} needs inputs "
                          "evaluate cannot invent; generate the files yourself and pass the folder")
    vocabulary = [str(v) for v in read_extra(checkpoint).get("instruments", [])]
    labels = _draw_labels(reference, n, tuple(k for k in keys if k != "velocity"),
                          vocabulary, seed)
    out = Path(out)
    length = int(round(seconds * sr))
    sidecar: dict[str, dict[str, Any]] = {}
    for start in range(0, n, batch_size):
        chunk = labels[start : start + batch_size]
        cond: dict[str, torch.Tensor] = {}
        if "pitch" in keys:
            cond["pitch"] = torch.tensor([int(lab["pitch"]) for lab in chunk], device=dev)
        if "instrument" in keys:
            ids = [vocabulary.index(lab["instrument"]) for lab in chunk]
            cond["instrument"] = torch.tensor(ids, device=dev)
        if "velocity" in keys:
            cond["velocity"] = torch.tensor([int(lab.get("velocity") or 100) for lab in chunk],
                                            device=dev)
        options = SamplingOptions(seed=seed + start, temperature=temperature, progress=progress,
                                  denoising_steps=denoising_steps, sampler=sampler)
        audio = sample(model, len(chunk), length, cond or None, options)
        for k, clip in enumerate(audio.float().cpu().numpy()):
            name = f"sample-{start + k:04d}"
            save_audio(out / f"{name}.wav", clip, sr)
            sidecar[name] = chunk[k]
    write_sidecar(out, sidecar)
    return out
