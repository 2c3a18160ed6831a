"""``waveloom generate``: checkpoint in, WAV + spectrogram PNG per sample out.

This module only turns CLI-level requests (a pitch number, an instrument name, a priming file)
into the model's ``cond`` dict, draws through :func:`waveloom.sampling.sample.sample` and writes
files; the sampling engines live in :mod:`waveloom.sampling`. The same seed gives byte-identical
files. ``--list`` prints what the checkpoint can be asked for (its instruments, whether it takes
a pitch) instead of sampling.

:func:`resolve_instrument` and :func:`build_cond` are used by this verb only (the demo too);
they stay here until a lower layer needs them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from waveloom.app.common import (
    DIFFUSION_ARGS,
    SAMPLING_ARGS,
    add_device_arg,
    add_quiet_arg,
    add_sampling_args,
    check_output_memory,
    check_pitch,
    check_positive,
    sampling_options,
)
from waveloom.config import SamplingOptions
from waveloom.errors import ConfigError
from waveloom.shipped import checkpoint_path

if TYPE_CHECKING:
    import numpy as np
    import torch

DESCRIPTION = (
    "Sample audio from a checkpoint (or a hierarchy manifest) into --out: sample-i.wav per "
    "sample and a spectrogram sample-i.png for each of the first 8 (--plots N). --list prints "
    "the checkpoint's instruments (ids and names) and whether it takes --pitch, then exits. A "
    "model that takes an instrument uses id 0 when --instrument is omitted, and says so (id "
    "and name) on stderr."
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    ge = subparsers.add_parser("generate", help="sample audio from a checkpoint",
                               description=DESCRIPTION)
    ge.add_argument("checkpoint", type=checkpoint_path, help="model.safetensors from a run, or a "
                    "hierarchy manifest (.json, from `waveloom hierarchy`)")
    ge.add_argument("--out", type=Path, default=None, help="output folder (required unless "
                    "--list)")
    ge.add_argument("--list", action="store_true",
                    help="print the checkpoint's instruments and pitch conditioning; exit")
    ge.add_argument("-n", "--n", type=int, default=4, help="how many samples")
    ge.add_argument("--seconds", type=float, default=None,
                    help="length of each sample (default 2; symbolic models: stop once the "
                         "time shifts add up to this, default 20 unless --events)")
    ge.add_argument("--pitch", type=int, default=None,
                    help="MIDI pitch (pitch-conditioned models; default 60)")
    ge.add_argument("--instrument", default=None,
                    help="instrument id or name (instrument-conditioned models; default id 0, "
                         "printed on stderr; --list shows them)")
    ge.add_argument("--prime", type=Path, default=None, help="audio file to continue from "
                    "(symbolic models: a MIDI file whose events are the prompt)")
    ge.add_argument("--events", type=int, default=None, metavar="N",
                    help="symbolic models: stop after N new events (with --seconds: whichever "
                         "comes first)")
    ge.add_argument("--top-k", type=int, default=0,
                    help="symbolic and codec-LM models: draw among the k likeliest tokens "
                         "(default 0: all)")
    ge.add_argument("--top-p", type=float, default=1.0,
                    help="symbolic and codec-LM models: nucleus sampling mass in (0, 1] "
                         "(default 1: all)")
    ge.add_argument("--cfg", type=float, default=None, metavar="S",
                    help="codec-LM and latent diffusion models: classifier-free guidance scale "
                         "(codec LM default 3 for a conditioned model, else 1 = unguided)")
    add_sampling_args(ge, SAMPLING_ARGS + DIFFUSION_ARGS)
    add_device_arg(ge)
    ge.add_argument("--interpolate", type=int, default=None, metavar="N",
                    help="GANs: N samples along a spherical interpolation from latent --seed to "
                         "latent --seed + 1 (replaces --n)")
    ge.add_argument("--plots", type=int, default=MAX_PLOTS, metavar="N",
                    help=f"spectrograms for the first N samples (default {MAX_PLOTS}; 0: none). "
                         "Each costs ~0.3 s, more than drawing a GAN's note")
    add_quiet_arg(ge)
    ge.set_defaults(run=run)


def run(args: argparse.Namespace) -> int | None:
    from waveloom.app import _generate_packed as packing

    options = sampling_options(args, None if args.list else args.checkpoint)
    if args.plots < 0:
        raise ConfigError(f"--plots {args.plots}: must be >= 0 (0: no spectrograms)")
    packable = packing.packable_request(args)
    if packable:  # packed before: drawn without importing torch
        path = packing.pack_path(args.checkpoint, options.weights)
        packed = None if path is None else packing.load_pack(path)
        if packed is not None:
            from waveloom.device import choose_threads

            if options.threads is not None:
                choose_threads(options.threads)
            return _finish_packed(packed, args, options)
    source = load_source(args.checkpoint, args.device, options.threads)
    if args.list:
        print(describe(source))
        return 0
    if args.out is None:
        raise ConfigError("generate needs --out DIR (where the samples go), or --list")
    if is_symbolic(source.model):
        paths = draw_events_to_folder(source, args.out, n=args.n, seconds=args.seconds,
                                      events=args.events, prime=args.prime, top_k=args.top_k,
                                      top_p=args.top_p, options=options)
        print("\n".join(str(p) for p in paths))
        return 0
    seconds = 2.0 if args.seconds is None else args.seconds
    if getattr(source.model, "output_kind", "audio") == "codec_codes":
        from waveloom.app._generate_codes import draw_codes_to_folder

        check_positive("--n", args.n)
        check_positive("--seconds", seconds)
        cond = {"instrument": resolve_instrument(args.instrument, source.vocabulary)}
        if args.pitch is not None:
            check_pitch(args.pitch)
            cond["pitch"] = args.pitch
        paths = draw_codes_to_folder(source, args.checkpoint, args.out, n=args.n,
                                     seconds=seconds, cond=cond, prime=args.prime,
                                     top_k=args.top_k, top_p=args.top_p, cfg=args.cfg,
                                     options=options)
        print("\n".join(str(p) for p in paths))
        return 0
    if packable:
        packed = packing.pack_source(source.model, source.family, args.checkpoint,
                                     options.weights, options.engine, source.sample_rate)
        if packed is not None:
            return _finish_packed(packed, args, options)
    paths = draw_to_folder(source, args.out, n=args.n, seconds=seconds, pitch=args.pitch,
                           instrument=args.instrument, prime=args.prime,
                           interpolate=args.interpolate, options=options, cfg=args.cfg,
                           plots=args.plots > 0, max_plots=args.plots)
    for path in paths:
        print(path)
    note = default_instrument_note(source.model.conditioning_keys(), source.vocabulary,
                                   args.instrument, args.checkpoint)
    if note:
        print(note, file=sys.stderr)
    return 0


def _finish_packed(packed: Any, args: argparse.Namespace, options: SamplingOptions) -> int:
    """Draw ``args``' samples from a packed model (:mod:`waveloom.app._generate_packed`),
    print their paths and the default-instrument note, as the torch path does."""
    from waveloom.checkpoint import read_extra

    vocabulary = list(read_extra(args.checkpoint).get("instruments", []))
    seconds = 2.0 if args.seconds is None else args.seconds
    for path in draw_packed_to_folder(packed, args.out, vocabulary, n=args.n, seconds=seconds,
                                      pitch=args.pitch, instrument=args.instrument,
                                      options=options, max_plots=args.plots):
        print(path)
    note = default_instrument_note(packed.keys, vocabulary, args.instrument, args.checkpoint)
    if note:
        print(note, file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- conditioning


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
    """The ``cond`` dict of ``n`` samples: each label the model takes, [n] long tensors
    (pitch 60 and instrument 0 unless given, velocity 100), plus ``prime`` [n, T] if given."""
    import torch

    keys = set(model.conditioning_keys())
    cond: dict[str, torch.Tensor] = {}
    if "pitch" in keys:
        p = 60 if pitch is None else int(pitch)
        check_pitch(p)
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


# --------------------------------------------------------------------------- loading


@dataclass
class Source:
    """A loaded checkpoint or hierarchy, with what ``generate`` needs beside the network."""

    model: Any
    sample_rate: int  # Hz
    vocabulary: list[str]  # instrument names, by id ([] when the checkpoint saved none)
    device: torch.device
    family: str  # the model family, or "hierarchy"


def load_source(checkpoint: str | Path, device: str = "auto",
                threads: int | None = None) -> Source:
    """Load ``checkpoint`` (a run's weights or a hierarchy manifest) onto ``device``."""
    from waveloom.device import pick_device, set_threads
    from waveloom.models.load import load_checkpoint, read_extra
    from waveloom.sampling.hierarchy import is_manifest, load_hierarchy

    dev = pick_device(device)
    set_threads(threads)
    if is_manifest(checkpoint):  # a hierarchy: prior -> levels -> audio, drawn top-down
        model = load_hierarchy(checkpoint, map_location=dev)
        return Source(model, model.sample_rate, list(model.instruments), dev, "hierarchy")
    model, run = load_checkpoint(checkpoint, map_location=dev)
    vocabulary = list(read_extra(checkpoint).get("instruments", []))
    return Source(model, run.data.sample_rate, vocabulary, dev, run.family)


def describe(source: Source) -> str:
    """What ``--list`` prints: the labels the model takes and its instruments, one a line."""
    if is_symbolic(source.model):
        return (f"{source.family} model: symbolic (performance events); generate writes "
                "sample-K.mid + a piano roll; --seconds / --events, --temperature, --top-k, "
                "--top-p, --prime MIDI, --seed")
    keys = tuple(source.model.conditioning_keys())
    lines = [f"{source.family} model, {source.sample_rate} Hz; conditioned on: "
             f"{', '.join(keys) or 'nothing'}",
             "pitch: " + ("yes (--pitch 0..127, default 60)" if "pitch" in keys else "no")]
    if "instrument" not in keys:
        return "\n".join([*lines, "instruments: none (--instrument is ignored)"])
    if not source.vocabulary:
        count = getattr(getattr(source.model, "config", None), "num_instruments", None)
        span = f"ids 0..{count - 1}" if count else "ids"
        return "\n".join([*lines, f"instruments: {span}, no names saved (default 0)"])
    lines.append(f"instruments ({len(source.vocabulary)}; --instrument ID or NAME, default 0):")
    lines += [f"{i:4d}  {name}" for i, name in enumerate(source.vocabulary)]
    return "\n".join(lines)


def default_instrument_note(keys: tuple[str, ...], vocabulary: list[str],
                            instrument: int | str | None, checkpoint: str | Path) -> str | None:
    """The stderr line saying which instrument was used when ``--instrument`` was omitted
    (None when one was given or the model, taking the labels ``keys``, takes none)."""
    if instrument is not None or "instrument" not in keys:
        return None
    name = f" ({vocabulary[0]})" if vocabulary else ""
    return (f"note: no --instrument given, used instrument 0{name}; "
            f"`waveloom generate {checkpoint} --list` shows the others")


# --------------------------------------------------------------------------- drawing


def draw_to_folder(
    source: Source,
    out: str | Path,
    *,
    n: int = 4,
    seconds: float = 2.0,
    pitch: int | None = None,
    instrument: int | str | None = None,
    prime: str | Path | None = None,
    prefix: str = "sample",
    plots: bool = True,
    interpolate: int | None = None,
    options: SamplingOptions | None = None,
    cfg: float | None = None,
    max_plots: int | None = None,
) -> list[Path]:
    """Draw ``n`` samples of ``seconds`` each from ``source``; write ``prefix-i.wav`` (+ .png
    for the first ``max_plots``, all when None).

    ``interpolate`` (GANs): instead of ``n`` independent samples, that many points along the
    spherical path from latent ``seed`` to latent ``seed + 1``, written as ``interp-i.wav``.
    ``cfg``: the guidance scale of a model that has guidance (refused otherwise).
    """
    options = options or SamplingOptions()
    check_positive("--n", n)
    check_positive("--seconds", seconds)
    if interpolate is not None:
        _check_interpolation(source.model)
        n, prefix = interpolate, "interp"
    cond = build_cond(source.model, n, pitch=pitch, instrument=instrument,
                      vocabulary=source.vocabulary, prime=_load_prime(source, prime))
    cond = {k: v.to(source.device) for k, v in cond.items()}
    if cfg is not None:  # classifier-free guidance (a latent diffusion model)
        if not getattr(source.model, "guidance", False):
            raise ConfigError(f"--cfg: a {source.family} model has no guidance; it is for "
                              "codec LMs and latent diffusion models")
        cond["cfg"] = float(cfg)
    length = int(round(seconds * source.sample_rate))
    rainbow = getattr(source.model, "rainbowgram", False)
    if interpolate is not None:
        check_output_memory(n, length, "--seconds or --n")
        audio = source.model.interpolate(n, length, cond, seed=options.seed,
                                         temperature=options.temperature)
        return write_samples(audio.float().cpu().numpy(), Path(out), source.sample_rate,
                             prefix, plots=plots, rainbow=rainbow, max_plots=max_plots)
    from waveloom.sampling.sample import sample_stream, streams

    _check_output(n, length, out, streamed=streams(source.model, options))
    if plots:
        _preload_plots()
    pieces = sample_stream(source.model, n, length, cond, options, segment=SEGMENT)
    return write_stream(pieces, n, Path(out), source.sample_rate, prefix, plots=plots,
                        rainbow=rainbow, max_plots=max_plots)


def draw_packed_to_folder(packed: Any, out: str | Path, vocabulary: list[str], *, n: int,
                          seconds: float, pitch: int | None, instrument: int | str | None,
                          options: SamplingOptions, max_plots: int | None = None
                          ) -> list[Path]:
    """:func:`draw_to_folder` for a packed WaveNet, without torch: the same
    checks, labels (pitch 60 and instrument 0 unless given), samples and files."""
    from waveloom.sampling.packed_notes import draw_packed

    check_positive("--n", n)
    check_positive("--seconds", seconds)
    keys = packed.keys
    if "pitch" in keys:
        pitch = 60 if pitch is None else int(pitch)
        check_pitch(pitch)
    label = resolve_instrument(instrument, vocabulary) if "instrument" in keys else None
    sr = int(packed.info["sample_rate"])
    length = int(round(seconds * sr))
    _check_output(n, length, out, streamed=True)
    if max_plots != 0:
        _preload_plots()
    pieces = draw_packed(packed, n, length, pitch=pitch, instrument=label, seed=options.seed,
                         temperature=options.temperature, progress=options.progress,
                         segment=SEGMENT)
    return write_stream(pieces, n, Path(out), sr, "sample", plots=max_plots != 0,
                        max_plots=max_plots)


def _check_output(n: int, length: int, out: str | Path, *, streamed: bool) -> None:
    """One-line errors before drawing ``n`` x ``length`` samples into ``out``: the memory they
    hold (a segment each when ``streamed``) and the disk their WAV files take."""
    from waveloom.memory import check_disk

    check_output_memory(n, min(length, SEGMENT) if streamed else length, "--seconds or --n")
    check_disk(n * length * 2, out, f"{n} WAV file(s) of {length:,} samples", "--seconds or --n")


#: Samples drawn and written at a time where the engine streams (the fast engine): about a
#: minute at 16 kHz, so an hour of audio needs the memory of a minute.
SEGMENT = 1 << 20
#: Samples that ``generate`` draws a spectrogram of by default (``--plots N``): a picture
#: costs ~0.3 s of matplotlib, 64 of them 20 s where the notes of a GAN take 1 s.
MAX_PLOTS = 8
#: Seconds of a long sample that its spectrogram shows (a plot of an hour is no use and costs
#: gigabytes).
PLOT_SECONDS = 60.0


def _preload_plots() -> None:
    """Import the plotting module (matplotlib: ~0.5 s) on a background thread while the
    samples are drawn: the fast engine's kernels run without the GIL, and one stream leaves
    a core of two idle, so the import is off the command's critical path."""
    import threading

    def load() -> None:
        try:
            import waveloom.audio.plots  # noqa: F401
        except Exception:  # noqa: BLE001 (the plot step imports it again and reports)
            pass

    threading.Thread(target=load, name="waveloom-preload-plots", daemon=True).start()


def _check_interpolation(model: Any) -> None:
    from waveloom.models.adversarial import Adversarial

    if not isinstance(model, Adversarial):
        raise ConfigError(f"--interpolate: {type(model).__name__} has no latent to "
                          "interpolate; it is for GAN checkpoints (wavegan, specgan, gansynth)")


def _load_prime(source: Source, prime: str | Path | None) -> torch.Tensor | None:
    """The priming audio [1, T] at the model's rate, or None."""
    if prime is None:
        return None
    if source.family == "hierarchy":
        raise ConfigError("--prime: a hierarchy is sampled from its prior down; it cannot "
                          "continue an audio file")
    import torch

    from waveloom.audio.io import load_audio

    audio, _ = load_audio(prime, source.sample_rate)
    return torch.from_numpy(audio)[None]


def write_samples(audio: np.ndarray, out: Path, sr: int, prefix: str, *, plots: bool = True,
                  rainbow: bool = False, max_plots: int | None = None) -> list[Path]:
    """``out/prefix-i.wav`` for each row of ``audio`` [n, T] (+ a spectrogram, or a
    rainbowgram for phase-modelling families such as GANSynth, for the first ``max_plots``
    rows, all when None); returns the WAV paths."""
    from waveloom.audio.io import save_audio

    paths = []
    for i, clip in enumerate(audio):
        wav = save_audio(out / f"{prefix}-{i}.wav", clip, sr)  # written block by block
        paths.append(wav)
        if plots and (max_plots is None or i < max_plots):
            shown = clip[: int(PLOT_SECONDS * sr)]
            _plot(shown, sr, wav, rainbow, len(shown) < len(clip))
    return paths


def write_stream(pieces: Iterator[torch.Tensor], n: int, out: Path, sr: int, prefix: str, *,
                 plots: bool = True, rainbow: bool = False, max_plots: int | None = None
                 ) -> list[Path]:
    """``out/prefix-i.wav`` for each of the ``n`` rows of the pieces ([n, t] each) as they
    come, then the plots of their first :data:`PLOT_SECONDS` (of the first ``max_plots``
    rows, all when None); a failure removes the files."""
    import numpy as np

    from waveloom.audio.io import open_writer

    paths = [out / f"{prefix}-{i}.wav" for i in range(n)]
    heads: list[list[np.ndarray]] = [[] for _ in range(n)]
    kept, limit = 0, int(PLOT_SECONDS * sr)
    writers = [open_writer(p, sr) for p in paths]
    try:
        for piece in pieces:
            block = piece if isinstance(piece, np.ndarray) else piece.float().cpu().numpy()
            for i, w in enumerate(writers):
                w.write(block[i])
                if kept < limit:
                    heads[i].append(block[i, : limit - kept])
            kept += block.shape[1]
    except BaseException:
        for w in writers:
            w.abort()
        raise
    for w in writers:
        w.close()
    if plots:
        shown = paths if max_plots is None else paths[:max_plots]
        for path, head in zip(shown, heads):
            _plot(np.concatenate(head), sr, path, rainbow, kept > limit)
    return paths


def _plot(clip: np.ndarray, sr: int, wav: Path, rainbow: bool, cut: bool) -> None:
    from waveloom.audio.plots import plot_rainbowgram, plot_spectrogram

    plot = plot_rainbowgram if rainbow else plot_spectrogram
    title = f"{wav.stem} (first {PLOT_SECONDS:g} s)" if cut else wav.stem
    plot(clip, sr, wav.with_suffix(".png"), title=title)


def is_symbolic(model: Any) -> bool:
    """Whether ``model`` draws event tokens (its class says ``data_kind = "symbolic"`` and
    offers ``prime``/``step``), not audio: generate then writes MIDI, not WAV."""
    return getattr(model, "data_kind", "audio") == "symbolic"


def draw_events_to_folder(source: Source, out: str | Path, *, n: int = 4,
                          seconds: float | None = None, events: int | None = None,
                          prime: str | Path | None = None, top_k: int = 0, top_p: float = 1.0,
                          prefix: str = "sample", plots: bool = True,
                          options: SamplingOptions | None = None) -> list[Path]:
    """Draw ``n`` pieces from a symbolic model; write ``prefix-i.mid`` (+ a piano-roll .png).

    Length: ``seconds`` of time shifts (default 20 when ``events`` is not given either) and/or
    ``events`` new events; ``prime``: a MIDI file whose events the pieces continue (they are
    kept at the start of each file). Same seed -> byte-identical MIDI.
    """
    from waveloom.data.events import events_to_midi, events_to_notes, midi_to_events
    from waveloom.sampling.events import compose_events

    options = options or SamplingOptions()
    check_positive("--n", n)
    check_positive("--seconds", seconds)
    check_positive("--events", events)
    if seconds is None and events is None:
        seconds = 20.0
    head = None if prime is None else midi_to_events(Path(prime))
    pieces = compose_events(source.model, seconds, head, options.temperature, top_k, top_p,
                            options.seed, n=n, events=events)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, tokens in enumerate(pieces):
        path = out / f"{prefix}-{i}.mid"
        events_to_midi(tokens).write(str(path))
        paths.append(path)
        if plots:
            from waveloom.audio.plots import plot_notes

            plot_notes(events_to_notes(tokens), path.with_suffix(".png"))
    return paths


def generate_to_folder(checkpoint: str | Path, out: str | Path, *, device: str = "auto",
                       options: SamplingOptions | None = None, **request: Any) -> list[Path]:
    """Load ``checkpoint`` and :func:`draw_to_folder` (``request``: its keyword arguments):
    the whole verb as one call, for scripts and tests."""
    options = options or SamplingOptions()
    source = load_source(checkpoint, device, options.threads)
    return draw_to_folder(source, out, options=options, **request)
