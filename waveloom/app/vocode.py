"""``waveloom vocode``: mel spectrograms (.npy) in, audio out, through a MelGAN checkpoint or a
mel-conditioned WaveNet (``model.local=mel``; sampled, so slower, and ``--seed`` picks the draw).

The mel must be in the layout :func:`waveloom.audio.spectral.mel_spectrogram` produces with the
checkpoint's settings (natural-log magnitude mel, ``[n_mels, frames]`` or ``[n, n_mels,
frames]``), so the output of any model that predicts such mels, or the mel of a real recording,
can be turned into audio. A wrong shape is a one-line error naming the expected layout.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from waveloom.app.common import (
    DIFFUSION_ARGS,
    add_device_arg,
    add_sampling_args,
    sampling_options,
)
from waveloom.config import SamplingOptions
from waveloom.errors import ConfigError, DataError
from waveloom.shipped import checkpoint_path

if TYPE_CHECKING:
    import numpy as np
    import torch


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    vo = subparsers.add_parser(
        "vocode", help="audio from log-mel spectrograms with a MelGAN, or a mel-conditioned "
        "WaveNet, DiffWave or WaveGlow",
        description="Write NAME.wav and a spectrogram NAME.png per mel file. A mel is float "
        "[n_mels, frames] (or [n, n_mels, frames]) as waveloom.audio.spectral.mel_spectrogram "
        "makes it with the checkpoint's sample rate, n_fft, hop and n_mels.")
    vo.add_argument("checkpoint", type=checkpoint_path,
                    help="a melgan run's model.safetensors, a WaveNet's with model.local=mel, "
                         "or a diffwave/waveglow one with model.conditioning=mel")
    vo.add_argument("mels", type=Path, nargs="+", metavar="MEL.npy", help="log-mel arrays")
    vo.add_argument("--out", type=Path, required=True, help="output folder")
    vo.add_argument("--f0", type=Path, nargs="+", metavar="F0.npy", default=None,
                    help="f0 per mel frame in Hz (0 = unvoiced), one file per mel in the same "
                         "order: what a MelGAN with a pitch excitation (melgan-istft-notes) "
                         "plays; float [frames] (or [n, frames] for a stack of mels)")
    add_device_arg(vo, default="cpu")
    add_sampling_args(vo, ("threads", "seed", "temperature", *DIFFUSION_ARGS),
                      seed="sampling seed of a WaveNet, DiffWave or WaveGlow, and of an "
                           "istft MelGAN's noise (a conv MelGAN is deterministic)")
    vo.set_defaults(run=run)


def run(args: argparse.Namespace) -> int | None:
    for path in vocode_files(args.checkpoint, args.mels, args.out, device=args.device,
                             options=sampling_options(args), f0s=args.f0):
        print(path)
    return 0


def load_mel(path: str | Path) -> np.ndarray:
    """Read a .npy array without unpickling (``allow_pickle=False``); one-line errors."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise DataError(f"{path}: not a .npy array ({str(err).splitlines()[0]})") from None


def vocode_files(checkpoint: str | Path, mels: list[str | Path], out: str | Path, *,
                 device: str = "cpu", plots: bool = True,
                 options: SamplingOptions | None = None,
                 f0s: list[str | Path] | None = None) -> list[Path]:
    """Write ``NAME.wav`` (+ ``NAME.png``) per mel file (``NAME-i.wav`` for a stack of mels);
    prints nothing, returns the WAV paths. ``options.seed`` picks a WaveNet's draw (and an
    istft MelGAN's noise; a conv MelGAN is deterministic); ``options.threads`` the CPU
    threads. ``f0s``: one f0 file per mel (Hz per frame), for a MelGAN with a pitch
    excitation."""
    from waveloom.audio.io import save_audio
    from waveloom.device import pick_device, set_threads
    from waveloom.models.load import load_checkpoint
    from waveloom.sampling.sample import vocode

    options = options or SamplingOptions()
    set_threads(options.threads)
    model, run = load_checkpoint(checkpoint, map_location=pick_device(device))
    if getattr(model, "mel_features", None) is None:
        raise ConfigError(f"{checkpoint}: a {run.family!r} checkpoint without a mel input "
                          "cannot vocode mels; use a melgan checkpoint or a WaveNet trained "
                          "with model.local=mel")
    model.eval()
    if f0s is not None and len(f0s) != len(mels):
        raise ConfigError(f"--f0: {len(f0s)} file(s) for {len(mels)} mel(s); give one per mel, "
                          "in the same order")
    sr = run.data.sample_rate
    out = Path(out)
    paths = []
    for i, path in enumerate(mels):
        mel = load_mel(path)
        f0 = None if f0s is None else load_mel(f0s[i])
        try:
            audio = vocode(model, mel, options, f0=f0).float().cpu().numpy()
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
        stem = Path(path).stem
        names = [stem] if mel.ndim == 2 else [f"{stem}-{i}" for i in range(len(audio))]
        for name, clip in zip(names, audio):
            wav = save_audio(out / f"{name}.wav", clip, sr)
            paths.append(wav)
            if plots:
                from waveloom.audio.plots import plot_spectrogram

                plot_spectrogram(clip, sr, wav.with_suffix(".png"), title=wav.stem)
    return paths


def real_time_factor(model: torch.nn.Module, mel: torch.Tensor, repeats: int = 3) -> float:
    """Seconds of audio made per second of wall time when vocoding ``mel`` (best of
    ``repeats``, after one warm-up call)."""
    from waveloom.sampling.sample import vocode

    vocode(model, mel)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        audio = vocode(model, mel)
        best = min(best, time.perf_counter() - t0)
    return audio.shape[-1] * audio.shape[0] / model.config.sample_rate / best
