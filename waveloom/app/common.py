"""Argument groups the verbs share, each defined once, and the one check of each value.

A flag that several verbs take (``--seed``, ``--temperature``, ``--engine``, ``--weights``,
``--threads``, ``--device``, ``-q``) is declared here so its name, default and help agree
everywhere. Values are *parsed* by argparse but *validated* in one place:
:class:`~waveloom.config.SamplingOptions` for the sampling flags (built by
:func:`sampling_options`), :func:`waveloom.device.pick_device` / ``set_threads`` for the
device and threads, :func:`check_positive` for lengths and counts, :func:`check_pitch` for
MIDI pitches. So a bad value is always the same one-line ``error: ...`` (exit 2), never an
argparse usage dump.

Only light modules are imported here: ``waveloom --help`` must not load torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

from waveloom.config import ENGINES, WEIGHT_PRECISIONS, SamplingOptions
from waveloom.errors import CheckpointError, ConfigError

#: The sampling flags, in the order they appear in ``--help``.
SAMPLING_ARGS = ("seed", "temperature", "engine", "weights", "threads")
#: What a verb that may sample a diffusion model adds (``generate``, ``vocode``).
DIFFUSION_ARGS = ("denoising_steps", "sampler")

_DEFAULTS = SamplingOptions()
_SPECS: dict[str, dict[str, Any]] = {
    "seed": dict(type=int, default=_DEFAULTS.seed,
                 help=f"sampling seed >= 0: the same seed gives the same audio "
                      f"(default {_DEFAULTS.seed})"),
    "temperature": dict(type=float, default=None,
                        help=f"sampling temperature > 0 (default: the temperature the "
                             f"checkpoint recommends, if it records one, else "
                             f"{_DEFAULTS.temperature:g})"),
    "engine": dict(default=_DEFAULTS.engine, metavar="|".join(ENGINES),
                   help="sampling engine: auto (fastest available: cuda-graph on a GPU, the "
                        "compiled fast engine on a CPU), torch (the plain reference), fast, "
                        "cuda-graph; all give the same audio for a seed"),
    "weights": dict(default=_DEFAULTS.weights, metavar="|".join(WEIGHT_PRECISIONS),
                    help="fast engine only: float32 (default: the torch engine's audio), "
                         "float16 (C kernel; ~1.25x faster on the shipped WaveNet, the same "
                         "code drawn 99.4%% of the time) or int8 (per-column scales; for "
                         "large models: on the shipped one only 86%%)"),
    "threads": dict(type=int, default=_DEFAULTS.threads,
                    help="CPU threads for torch and the fast engine (default: all cores)"),
    "denoising_steps": dict(type=int, default=None, metavar="N", flag="steps",
                            help="diffusion models: denoising steps (default: all the "
                                 "model's training steps)"),
    "sampler": dict(default=None, metavar="ddpm|ddim|dpm-solver",
                    help="diffusion models: the sampler (default: the model's)"),
}


def add_sampling_args(parser: argparse.ArgumentParser, names: tuple[str, ...] = SAMPLING_ARGS,
                      **helps: str) -> None:
    """Add ``--NAME`` for each of ``names`` (a subset of :data:`SAMPLING_ARGS`); ``helps``
    overrides a flag's help text where a verb gives it a narrower meaning."""
    for name in names:
        spec = dict(_SPECS[name])
        spec["help"] = helps.get(name, spec["help"])
        flag = spec.pop("flag", name)
        parser.add_argument(f"--{flag}", dest=name, **spec)


#: What a checkpoint may recommend: ``extra.sampling.KEY`` -> (the SamplingOptions field, the
#: flag that overrides it). ``scripts/ship_checkpoint.py`` writes them with the same flags.
RECOMMENDABLE = {"temperature": ("temperature", "--temperature"),
                 "steps": ("denoising_steps", "--steps"),
                 "sampler": ("sampler", "--sampler")}


def sampling_options(args: argparse.Namespace,
                     checkpoint: str | Path | None = None) -> SamplingOptions:
    """The validated :class:`SamplingOptions` of a verb's parsed flags (flags the verb does
    not take keep their defaults; ``-q`` turns the progress bars off).

    A flag not given (None) takes what the ``checkpoint`` records as measured
    (:func:`recommended_sampling`: ``extra.sampling.temperature``, ``.steps``, ``.sampler``,
    written by ``scripts/ship_checkpoint.py``), and a note on stderr says so: a continuous
    head's decoder may be measured best colder than 1 (docs/nsynth_ae.md), a diffusion model
    at a few steps (docs/diffwave.md), and a user should meet the model as it was measured.
    """
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(SamplingOptions)
             if hasattr(args, f.name)}
    given["progress"] = not getattr(args, "quiet", False)
    recommended = recommended_sampling(checkpoint)
    for key, (field, flag) in RECOMMENDABLE.items():
        if field in given and given[field] is None:  # the flag was not given
            del given[field]
            if field in recommended:
                value = given[field] = recommended[field]
                shown = f"{value:g}" if isinstance(value, float) else value
                print(f"note: {key} {shown}, the one {Path(str(checkpoint)).name} recommends "
                      f"(extra.sampling.{key}); {flag} overrides it", file=sys.stderr)
    return SamplingOptions(**given)


def checkpoint_temperature(checkpoint: str | Path | None) -> float:
    """The temperature to sample ``checkpoint`` at when none is asked for: the one it records
    (:func:`recommended_sampling`), else :class:`SamplingOptions`' default."""
    return recommended_sampling(checkpoint).get("temperature", _DEFAULTS.temperature)


def recommended_temperature(checkpoint: str | Path | None) -> float | None:
    """``extra.sampling.temperature`` of a checkpoint, or None (see
    :func:`recommended_sampling`)."""
    return recommended_sampling(checkpoint).get("temperature")


def recommended_sampling(checkpoint: str | Path | None) -> dict[str, Any]:
    """The :class:`SamplingOptions` fields a ``.safetensors`` checkpoint records as the ones it
    was measured at (``extra.sampling``: ``temperature``, ``steps`` -> ``denoising_steps``,
    ``sampler``); empty for no checkpoint, a hierarchy manifest or nothing recorded. A recorded
    value SamplingOptions refuses is a one-line CheckpointError naming the key."""
    if checkpoint is None or Path(str(checkpoint)).suffix != ".safetensors":
        return {}
    from waveloom.checkpoint import read_extra

    sampling = read_extra(checkpoint).get("sampling") or {}
    return sampling_fields(sampling if isinstance(sampling, dict) else {}, str(checkpoint))


def sampling_fields(sampling: dict[str, Any], where: str) -> dict[str, Any]:
    """An ``extra.sampling`` dict -> the :class:`SamplingOptions` fields it sets, each checked
    as its flag would be (a one-line CheckpointError naming ``where`` and the key otherwise);
    ``scripts/ship_checkpoint.py`` checks what it is about to write with the same rules."""
    out: dict[str, Any] = {}
    for key, (field, flag) in RECOMMENDABLE.items():
        value = sampling.get(key)
        if value is None:
            continue
        wrong = isinstance(value, bool) or (key == "sampler" and not isinstance(value, str))
        try:
            SamplingOptions(**{field: value})
        except ConfigError:
            wrong = True
        if wrong:
            raise CheckpointError(f"{where}: extra.sampling.{key}={value!r} is not a valid "
                                  f"{flag} value; re-ship it with scripts/ship_checkpoint.py "
                                  f"{flag}, or pass {flag}")
        out[field] = value
    return out


def add_device_arg(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    """``--device``: resolved (and checked) by :func:`waveloom.device.pick_device`."""
    parser.add_argument("--device", default=default,
                        help=f"auto | cpu | cuda | cuda:N (default {default})")


def add_quiet_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def check_positive(flag: str, value: float | None) -> None:
    """One line for a length or count that is not a finite number > 0 (nan, inf, 0, -1);
    None passes (it means "all" or "the default" where a flag is optional)."""
    if value is None:
        return
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{flag} {value}: must be a finite number > 0")


#: Bytes one output sample of one stream may cost while drawing: the autoregressive engines'
#: pre-drawn uniforms (and their numpy copy), the int32 and int64 codes and the float32 audio;
#: a one-shot family's last activations are of the same order.
BYTES_PER_OUTPUT_SAMPLE = 40


def check_output_memory(n: int, length: int, key: str, extra_per_sample: int = 0) -> None:
    """Refuse (one line, before any allocation) a request for ``n`` outputs of ``length``
    samples that cannot fit in memory: the estimate, the free memory and ``key``, the flag
    to lower. ``extra_per_sample``: bytes a caller's conditioning adds per sample (a
    decoder's upsampled codes)."""
    from waveloom.memory import check_allocation

    per_sample = BYTES_PER_OUTPUT_SAMPLE + int(extra_per_sample)
    check_allocation(int(n) * int(length) * per_sample,
                     f"{n} output(s) of {length:,} samples", key)


def check_pitch(pitch: int | None) -> None:
    """``--pitch``: a MIDI note number 0..127 (None passes: the verb's default)."""
    if pitch is not None and not 0 <= int(pitch) <= 127:
        raise ConfigError(f"--pitch {pitch}: MIDI pitches are 0..127")


def int_list(text: str) -> list[int]:
    """'0-7' -> [0..7]; '50,100' -> [50, 100]; '36-84,96' mixes ranges and single values."""
    values: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise argparse.ArgumentTypeError(f"{text!r} is not a list like 0-7 or 50,100")
        lo, hi = int(match[1]), int(match[2] or match[1])
        if hi < lo:
            raise argparse.ArgumentTypeError(f"{part!r}: the range runs backwards")
        values.extend(range(lo, hi + 1))
    return values


def write_json(target: str, payload: dict) -> None:
    """``--json FILE`` (or ``-`` for stdout): the machine-readable report."""
    text = json.dumps(payload, indent=2, allow_nan=False)
    if target == "-":
        print(text)
        return
    from waveloom.errors import ConfigError

    try:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(text + "\n")
    except OSError as err:
        raise ConfigError(f"--json {target}: cannot write it ({err.strerror or err}); the "
                          "results were printed above") from None
