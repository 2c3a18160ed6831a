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

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from waveloom.app.common import (
    add_device_arg,
    add_quiet_arg,
    add_sampling_args,
    check_output_memory,
    check_pitch,
    check_positive,
    sampling_options,
)
from waveloom.config import SamplingOptions
from waveloom.errors import AudioError, CheckpointError, ConfigError, DataError
from waveloom.shipped import checkpoint_path

if TYPE_CHECKING:
    import numpy as np
    import torch


DECODING_HELP = {
    "temperature": "WaveNet decoder: sampling temperature > 0 (default: the checkpoint's "
                   "recommended one if it records one, else 1)",
    "engine": "WaveNet decoder: sampling engine (auto: the compiled fast engine on a CPU, CUDA "
              "graphs on a GPU); all give the same audio",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    en = subparsers.add_parser("encode", help="autoencoder codes of audio files (.npy + image)",
                               description="Write NAME.npy (float32 [D, frames], one frame per "
                               "hop samples) and NAME.png for each audio file.")
    en.add_argument("checkpoint", type=checkpoint_path, help="an autoencoder's model.safetensors")
    en.add_argument("files", type=Path, nargs="+", metavar="FILE", help="audio files")
    en.add_argument("--out", type=Path, required=True, help="output folder")
    en.add_argument("--seconds", type=float, default=None,
                    help="encode at most this many seconds of each file (default: all)")
    en.add_argument("--bandwidth", type=float, default=None, metavar="KBPS",
                    help="codec checkpoints: the bitrate, i.e. how many codebooks to keep "
                         "(default: all); int16 [k, frames] codes + NAME.json")
    add_device_arg(en)
    en.set_defaults(run=run)
    dc = subparsers.add_parser("decode", help="audio from autoencoder codes (.npy from encode)",
                               description="Write NAME.wav and a spectrogram NAME.png per code "
                               "file.")
    dc.add_argument("checkpoint", type=checkpoint_path, help="the autoencoder's model.safetensors")
    dc.add_argument("embeddings", type=Path, nargs="+", metavar="EMB.npy",
                    help="code files ([D, frames] or [n, D, frames])")
    dc.add_argument("--out", type=Path, required=True, help="output folder")
    _add_decoding_args(dc)
    ip = subparsers.add_parser("interpolate", help="mix the codes of two sounds, decode each "
                               "step", description="Decode (1-a) z_A + a z_B for --steps values "
                               "of a from 0 to 1: interp-i.wav per step and rainbowgrams.png "
                               "comparing A, the steps and B.")
    ip.add_argument("checkpoint", type=checkpoint_path, help="an autoencoder's model.safetensors")
    ip.add_argument("a", type=Path, metavar="A", help="first audio file (a = 0)")
    ip.add_argument("b", type=Path, metavar="B", help="second audio file (a = 1)")
    ip.add_argument("--steps", type=int, default=5, help="mixes from A to B (default 5)")
    ip.add_argument("--out", type=Path, required=True, help="output folder")
    _add_decoding_args(ip)


def _add_decoding_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--pitch", type=int, default=None,
                    help="MIDI pitch for a pitch-conditioned autoencoder")
    sp.add_argument("--seconds", type=float, default=None,
                    help="use at most this many seconds (default: all)")
    add_sampling_args(sp, **DECODING_HELP)
    add_device_arg(sp)
    add_quiet_arg(sp)
    sp.set_defaults(run=run)


def run(args: argparse.Namespace) -> int | None:
    if args.verb == "encode":
        paths = encode_files(args.checkpoint, args.files, args.out, seconds=args.seconds,
                             device=args.device, bandwidth=args.bandwidth)
    elif args.verb == "decode":
        paths = decode_files(args.checkpoint, args.embeddings, args.out, pitch=args.pitch,
                             seconds=args.seconds, device=args.device,
                             options=sampling_options(args, args.checkpoint))
    else:
        paths = interpolate_files(args.checkpoint, args.a, args.b, args.out, steps=args.steps,
                                  pitch=args.pitch, seconds=args.seconds, device=args.device,
                                  options=sampling_options(args, args.checkpoint))
    for path in paths:
        print(path)
    return 0


# --------------------------------------------------------------------------- helpers


def autoencoder_families() -> list[str]:
    """Registered families whose model is an autoencoder."""
    from waveloom.models.base import Autoencoder
    from waveloom.models.registry import family_names, get_family

    return [f for f in family_names() if issubclass(get_family(f).model, Autoencoder)]


def load_autoencoder(checkpoint: str | Path, device: str = "auto") -> tuple[Any, Any]:
    """``(model, run_config)`` of an autoencoder checkpoint; a one-line CheckpointError for a
    missing file or a checkpoint of a family without an encoder."""
    from waveloom.device import pick_device
    from waveloom.models.load import load_checkpoint, read_config

    run = read_config(checkpoint)
    families = [*autoencoder_families(), "codec"]
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
    check_pitch(pitch)
    if "pitch" not in model.conditioning_keys():
        return None
    if pitch is None and getattr(model.config, "cond_dropout", 0.0) <= 0:
        raise ConfigError("this autoencoder is pitch-conditioned and was not trained with an "
                          "unknown pitch: pass --pitch P (MIDI)")
    return pitch


def _load_clip(path: Path, sr: int, seconds: float | None) -> torch.Tensor:
    """The first ``seconds`` (default all) of an audio file at ``sr``, float32 [T]."""
    import numpy as np
    import torch

    from waveloom.audio.io import load_audio

    audio, _ = load_audio(path, sr)
    if seconds is not None:
        audio = audio[: max(1, int(round(seconds * sr)))]
    return torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))


def _read_codes(path: Path) -> np.ndarray:
    import numpy as np

    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise DataError(f"{path}: not a .npy code array (write one with `waveloom encode`)"
                        ) from None
    if not np.issubdtype(z.dtype, np.number):
        raise DataError(f"{path}: holds {z.dtype} values, not a numeric code array")
    return z


# --------------------------------------------------------------------------- verbs


def encode_files(
    checkpoint: str | Path,
    files: list[str | Path],
    out: str | Path,
    *,
    seconds: float | None = None,
    device: str = "auto",
    plots: bool = True,
    bandwidth: float | None = None,
) -> list[Path]:
    """Encode each audio file (its first ``seconds``, default all) to ``out/NAME.npy``
    (float32 [D, frames]) and ``out/NAME.png``; returns the .npy paths. A codec writes int16
    ``[k, frames]`` codes for ``bandwidth`` kbps and a NAME.json sidecar instead
    (:mod:`waveloom.app._codec_io`)."""
    import numpy as np
    import torch

    if not files:
        raise ConfigError("give at least one audio file to encode")
    check_positive("--seconds", seconds)
    paths = [Path(f) for f in files]
    _check_files(paths, "audio")
    model, run = load_autoencoder(checkpoint, device)
    sr, out = run.data.sample_rate, Path(out)
    if run.family == "codec":
        from waveloom.app._codec_io import encode_to_files

        clips = [(p, stem, _load_clip(p, sr, seconds)) for p, stem in zip(paths,
                                                                         _unique_stems(paths))]
        return encode_to_files(model, run, clips, out, bandwidth)
    if bandwidth is not None:
        raise ConfigError("--bandwidth is for codec checkpoints; this is a "
                          f"{run.family!r} autoencoder with continuous codes")
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


def decode_files(
    checkpoint: str | Path,
    embeddings: list[str | Path],
    out: str | Path,
    *,
    pitch: int | None = None,
    seconds: float | None = None,
    device: str = "auto",
    plots: bool = True,
    options: SamplingOptions | None = None,
) -> list[Path]:
    """Decode each code file ([D, frames] or [n, D, frames]) to ``out/NAME.wav`` (+ .png).

    ``seconds`` shortens the output (default: all frames, ``frames * hop`` samples). A WaveNet
    decoder samples as ``options`` say (:func:`waveloom.sampling.sample.decode`).
    """
    from waveloom.device import set_threads
    from waveloom.sampling.sample import decode

    options = options or SamplingOptions()
    if not embeddings:
        raise ConfigError("give at least one .npy code file to decode")
    check_positive("--seconds", seconds)
    paths = [Path(e) for e in embeddings]
    _check_files(paths, "code")
    codes = [_read_codes(p) for p in paths]
    set_threads(options.threads)
    model, run = load_autoencoder(checkpoint, device)
    sr, out = run.data.sample_rate, Path(out)
    label = _pitch(model, pitch)
    written = []
    for path, stem, raw in zip(paths, _unique_stems(paths), codes):
        if run.family == "codec":
            from waveloom.app._codec_io import check_codes

            z = check_codes(model, path, raw)
            audio = decode(model, z, None, _codec_length(z, model, seconds, sr), options)
            written += _write_decoded(audio.float().cpu().numpy(), stem, out, sr, plots)
            continue
        z = model.check_codes(raw, where=str(path))
        length = z.shape[-1] * model.hop
        if seconds is not None:
            length = min(length, int(round(seconds * sr)))
        check_output_memory(z.shape[0], length,  # z: [n, D, frames] or (code levels) [n, F]
                            f"--seconds (or decode a shorter part of {path.name})",
                            extra_per_sample=4 * z.shape[1] if z.dim() == 3 else 0)
        audio = decode(model, z, label, length, options).float().cpu().numpy()
        written += _write_decoded(audio, stem, out, sr, plots)
    return written


def _codec_length(z: Any, model: Any, seconds: float | None, sr: int) -> int:
    length = z.shape[-1] * model.hop
    return length if seconds is None else min(length, int(round(seconds * sr)))


def _write_decoded(audio: Any, stem: str, out: Path, sr: int, plots: bool) -> list[Path]:
    """``out/stem.wav`` (``stem-i`` for several) and a spectrogram each; the WAV paths."""
    from waveloom.audio.io import save_audio

    written = []
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
    device: str = "auto",
    options: SamplingOptions | None = None,
) -> list[Path]:
    """Mix the codes of ``a`` and ``b`` at ``steps`` weights 0..1, decode every mix, write
    ``out/interp-i.wav`` and ``out/rainbowgrams.png``; returns the WAV paths then the sheet.

    Both sounds are cut to the shorter one (and to ``seconds`` if given) so their codes have
    the same frames; step 0 is the reconstruction of ``a``, the last that of ``b``.
    """
    import torch

    from waveloom.device import set_threads
    from waveloom.sampling.sample import decode

    options = options or SamplingOptions()
    if steps < 2:
        raise ConfigError(f"--steps {steps}: need at least 2 (the two endpoints)")
    check_positive("--seconds", seconds)
    paths = [Path(a), Path(b)]
    _check_files(paths, "audio")
    set_threads(options.threads)
    model, run = load_autoencoder(checkpoint, device)
    sr = run.data.sample_rate
    label = _pitch(model, pitch)
    clips = [_load_clip(p, sr, seconds) for p in paths]
    length = min(len(c) for c in clips)
    clips = [c[:length] for c in clips]
    with torch.no_grad():
        za, zb = (model.encode(c[None])[0] for c in clips)
    alphas = torch.linspace(0.0, 1.0, steps, device=za.device)
    mixes = (1.0 - alphas)[:, None, None] * za + alphas[:, None, None] * zb
    audio = decode(model, mixes, label, length, options).float().cpu().numpy()
    return _write_interpolation(Path(out), paths, [c.numpy() for c in clips],
                                alphas.tolist(), audio, sr)


def _write_interpolation(out: Path, paths: list[Path], ends: list[np.ndarray],
                         alphas: list[float], audio: np.ndarray, sr: int) -> list[Path]:
    """``interp-i.wav`` per mix and ``rainbowgrams.png`` (A, the mixes, B); WAVs then sheet."""
    from waveloom.audio.io import save_audio
    from waveloom.audio.plots import plot_sheet

    written = []
    items: list[tuple[object, str]] = [(ends[0], f"A: {paths[0].stem}")]
    for i, (alpha, clip) in enumerate(zip(alphas, audio)):
        written.append(save_audio(out / f"interp-{i}.wav", clip, sr))
        items.append((clip, f"a = {alpha:.2f}"))
    items.append((ends[1], f"B: {paths[1].stem}"))
    sheet = plot_sheet(items, sr, out / "rainbowgrams.png", kind="rainbow",
                       ncols=min(len(items), 4),
                       title=f"{paths[0].name} -> {paths[1].name}: code mixes (1-a) z_A + a z_B")
    return written + [sheet]
