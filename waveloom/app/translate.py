"""``waveloom translate CKPT AUDIO... --domain NAME --out DIR``: audio into another domain.

Each input (any rate: resampled to the translator's) is encoded and re-synthesised by the target
domain's WaveNet decoder (``waveloom.sampling.translate``; the fast engine on a CPU, all inputs
of one length in one batch). Writes ``DIR/NAME-to-DOMAIN.wav`` and its spectrogram, and prints
one line per file. An unknown domain is one line listing the domains; a silent input is
translated with a warning (there is nothing to keep).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from waveloom.app.common import add_device_arg, add_quiet_arg, add_sampling_args, sampling_options
from waveloom.errors import ConfigError
from waveloom.shipped import checkpoint_path

SILENT_RMS = 1e-4


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    tr = subparsers.add_parser("translate", help="play audio in another domain (instrument) "
                               "with a translator checkpoint")
    tr.add_argument("checkpoint", type=checkpoint_path, help="a translator's model.safetensors")
    tr.add_argument("audio", type=Path, nargs="+", help="audio files (any rate; resampled)")
    tr.add_argument("--domain", required=True, help="target domain: a name or an id (the "
                    "checkpoint's extra.domains / extra.instruments)")
    tr.add_argument("--out", type=Path, required=True, help="output folder")
    add_sampling_args(tr)
    add_device_arg(tr, default="cpu")
    add_quiet_arg(tr)
    tr.set_defaults(run=run)


def domain_names(checkpoint: Path) -> list[str]:
    from waveloom.models.load import read_extra

    extra = read_extra(checkpoint)
    return list(extra.get("domains") or extra.get("instruments") or [])


def resolve_domain(value: str, names: list[str], count: int) -> int:
    """A domain name or id -> its id, or one line listing the domains."""
    listing = ", ".join(f"{i}: {n}" for i, n in enumerate(names)) or f"ids 0..{count - 1}"
    if value.isdigit() and int(value) < count:
        return int(value)
    if value in names:
        return names.index(value)
    raise ConfigError(f"--domain {value!r}: this translator knows {listing}")


def run(args: argparse.Namespace) -> int | None:
    import numpy as np
    import torch

    from waveloom.audio.io import load_audio, save_audio
    from waveloom.audio.plots import plot_spectrogram
    from waveloom.device import pick_device
    from waveloom.models.load import load_checkpoint
    from waveloom.sampling.translate import translate

    model, _ = load_checkpoint(args.checkpoint, map_location=pick_device(args.device),
                                     expect_family="translator")
    names = domain_names(args.checkpoint)
    domain = resolve_domain(str(args.domain), names, model.config.domains)
    label = names[domain] if domain < len(names) else str(domain)
    sr, options = model.config.sample_rate, sampling_options(args)
    clips = {}
    for path in args.audio:
        audio, _ = load_audio(path, sr)
        if float(np.sqrt(np.mean(np.square(audio)))) < SILENT_RMS:
            print(f"warning: {path} is silent; its translation will be noise", file=sys.stderr)
        clips[path] = audio
    for group in _same_length(clips):
        started = time.perf_counter()
        batch = torch.from_numpy(np.stack([clips[p] for p in group]))
        out = translate(model, batch, domain, options).float().cpu().numpy()
        took = time.perf_counter() - started
        for path, audio in zip(group, out):
            wav = save_audio(args.out / f"{Path(path).stem}-to-{label}.wav", audio, sr)
            plot_spectrogram(audio, sr, wav.with_suffix(".png"), title=wav.stem)
            print(f"{wav}: {len(audio) / sr:.2f} s ({len(group)} in one batch: {took:.1f} s)")
    return 0


def _same_length(clips: dict) -> list[list]:
    """The inputs grouped by length, in their order: each group is one batch of the engine
    (every stream of a batch draws one sample per step, so only equal lengths share one)."""
    groups: dict[int, list] = {}
    for path, audio in clips.items():
        groups.setdefault(len(audio), []).append(path)
    return list(groups.values())
