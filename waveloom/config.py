"""Typed dataclass configs, YAML presets and ``key=value`` overrides.

A run is described by :class:`RunConfig`: the model family's own config dataclass plus the
family-agnostic :class:`DataConfig` and :class:`TrainConfig`. A preset YAML file is a small diff
over the dataclass defaults; overrides such as ``model.residual_channels=32`` are applied on top.
Unknown keys are rejected with the list of valid ones, and values are coerced to the declared
type, so a typo never silently falls back to a default. The resolved config is saved in every
checkpoint, which is why ``generate`` needs nothing but the checkpoint.

This module is generic (it imports nothing above it): which config class a family's ``model``
section is belongs to the registry, so reading a preset or a checkpoint's config into a
RunConfig is :func:`waveloom.models.load.load_config` / ``build_run_config`` / ``read_config``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from waveloom.errors import ConfigError

T = TypeVar("T")


@dataclass
class ModelConfig:
    """Base of every family's model config. ``validate`` rejects values that cannot work."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` for a value the model cannot be built with."""


def parse_instrument_weights(text: str) -> dict[str, float]:
    """``data.instrument_weights`` ("NAME=W,NAME=W") -> {name: weight}; one-line errors."""
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            w = float(value)
        except ValueError:
            w = float("nan")
        if not sep or not name.strip() or not w > 0 or w == float("inf"):
            raise ConfigError(f"data.instrument_weights: {part!r} is not NAME=WEIGHT with a "
                              "weight > 0 (e.g. organ_synthetic_004=3,brass_synthetic_000=2)")
        weights[name.strip()] = w
    return weights


@dataclass
class DataConfig:
    """Where training windows come from and how they are conditioned."""

    sample_rate: int = 16000
    window: int = 8192  # samples per training example (the receptive field is added on top)
    batch_size: int = 8
    num_workers: int = 0
    train_split: str = "train"
    val_split: str = "valid"
    # Drop windows quieter than this RMS (silence teaches a WaveNet little); 0 disables.
    min_rms: float = 0.0
    # Fraction of windows whose predicted part starts near an example's beginning: for data sets
    # of notes, where generation starts from silence and attacks are otherwise rare.
    onset_fraction: float = 0.0
    # Samples per piano-roll frame for MIDI sources (only used when a model asks for a roll).
    roll_hop: int = 256
    # Families trained by truncated BPTT (SampleRNN): a training sequence is this many
    # consecutive windows of one file, the recurrent state carried from each to the next.
    chunks: int = 1
    # Symbolic families: each training window is transposed by a random whole number of
    # semitones in [-transpose, transpose] (Huang et al. 2018 used +-3): the same chorale in
    # another key is another plausible chorale, and a 190k-event corpus otherwise overfits.
    transpose: int = 0
    # Audio families that read scores (the transcriber): play each training window through a
    # random EQ, room, gain and noise (waveloom.data.augment), so it hears unseen SoundFonts.
    augment: bool = False
    # With augment: the probability that a window also goes through a random chorus (1-3
    # detuned, drifting copies): ensemble timbres such as a SoundFont's choir (0 = never, as
    # before this option existed).
    chorus: float = 0.0
    # With augment: the probability of random formants (2-5 narrow resonances or notches of
    # -12..+15 dB): SoundFonts differ most in such peaks.
    formants: float = 0.0
    # Draw some instruments' examples more often: "NAME=W,NAME=W" (weights > 0 multiply an
    # example's share, which is otherwise its length; '' = every example by length, as before
    # this option existed). For fine-tuning the instruments a pitch grid shows are weak.
    instrument_weights: str = ""

    def validate(self) -> None:
        check_ranges(self, _DATA_RANGES)
        parse_instrument_weights(self.instrument_weights)


@dataclass
class TrainConfig:
    """Family-agnostic optimisation settings (the objective comes from the registry)."""

    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    max_steps: int = 1000
    warmup_steps: int = 0
    lr_decay: str = "none"  # none | cosine
    grad_clip: float = 1.0
    ema_decay: float = 0.0  # 0 disables EMA weights
    precision: str = "auto"  # auto | 32 | bf16-mixed | 16-mixed
    # torch.compile of the model's training loss (waveloom/train/compile.py); pays on GPUs,
    # measured on CPU in docs/wavenet.md. compile_backend: inductor | aot_eager | eager.
    compile: bool = False
    compile_backend: str = "inductor"
    checkpoint_every: int = 500
    log_every: int = 50
    sample_every: int = 0  # steps between audio samples logged to TensorBoard; 0 disables
    sample_seconds: float = 1.0
    val_every: int = 0  # steps between validation losses on data.val_split; 0 disables
    val_batches: int = 4  # batches of data.batch_size items scored at each validation
    # Also write best.safetensors (the export weights, with the step and validation loss in
    # its metadata) at every new lowest validation loss: the early-stopping weights of a run
    # that overfits, e.g. a codec LM on a thousand notes (docs/codec_lm.md). Needs val_every.
    keep_best: bool = False
    seed: int = 0
    # Start from these weights (a .safetensors checkpoint of the same family and shape, e.g.
    # the shipped demo model) instead of a random init: fine-tuning on your own recordings, or
    # continuing a finished run with a new schedule. Ignored when --resume finds a run.
    init_from: str = ""

    def validate(self) -> None:
        check_ranges(self, _TRAIN_RANGES)
        if self.lr_decay not in ("none", "cosine"):
            raise ConfigError(f"train.lr_decay={self.lr_decay!r}: use 'none' or 'cosine'")
        if self.precision not in ("auto", "32", "bf16-mixed", "16-mixed"):
            raise ConfigError(
                f"train.precision={self.precision!r}: use auto, 32, bf16-mixed or 16-mixed"
            )
        if not isinstance(self.compile, bool):
            raise ConfigError(f"train.compile={self.compile!r}: use true or false")
        if self.keep_best and not self.val_every:
            raise ConfigError("train.keep_best=true needs a validation loss: set train.val_every "
                              "(e.g. 500)")
        if self.compile_backend not in ("inductor", "aot_eager", "eager"):
            raise ConfigError(f"train.compile_backend={self.compile_backend!r}: use inductor, "
                              "aot_eager or eager")


@dataclass
class RunConfig:
    """Everything needed to train (and later to rebuild) one model."""

    family: str
    model: ModelConfig
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        self.model.validate()
        self.data.validate()
        self.train.validate()

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def require_positive(obj: Any, *names: str) -> None:
    """Raise :class:`ConfigError` naming the first of ``names`` whose value is not > 0 (NaN and
    infinity included); the check every config's ``validate`` starts with."""
    section = {DataConfig: "data", TrainConfig: "train"}.get(type(obj), "model")
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{section}.{name}={value}: must be a finite number > 0")
        if value <= 0:
            raise ConfigError(f"{section}.{name}={value} must be > 0")


#: (lowest, highest, highest included) of every numeric DataConfig / TrainConfig field: a
#: NaN lr or a negative warmup would otherwise train silently into garbage. The lowest bound
#: is included, bar the ones written as ``_ABOVE``.
_ABOVE = "above"
_DATA_RANGES: dict[str, tuple[Any, ...]] = {
    "sample_rate": (_ABOVE, 0), "window": (_ABOVE, 0), "batch_size": (_ABOVE, 0),
    "num_workers": (0,), "min_rms": (0.0, 1.0), "onset_fraction": (0.0, 1.0),
    "roll_hop": (_ABOVE, 0), "chunks": (_ABOVE, 0), "transpose": (0, 24),
    "chorus": (0.0, 1.0), "formants": (0.0, 1.0),
}
_TRAIN_RANGES: dict[str, tuple[Any, ...]] = {
    "lr": (_ABOVE, 0), "weight_decay": (0.0,), "betas": (0.0, 1.0, False),
    "max_steps": (_ABOVE, 0), "warmup_steps": (0,), "grad_clip": (0.0,),
    "ema_decay": (0.0, 1.0, False), "checkpoint_every": (_ABOVE, 0), "log_every": (_ABOVE, 0),
    "sample_every": (0,), "sample_seconds": (_ABOVE, 0), "val_every": (0,),
    "val_batches": (0,), "seed": (0,),
}


def check_ranges(obj: Any, ranges: dict[str, tuple[Any, ...]]) -> None:
    """Raise a one-line :class:`ConfigError` for the first field of ``obj`` outside its range
    in ``ranges`` (a tuple field: each item), e.g. ``train.lr=nan: must be a finite number >
    0``. Integers keep the message the tests have always matched (``must be >= 0``)."""
    section = {DataConfig: "data", TrainConfig: "train"}.get(type(obj), "model")
    for name, bounds in ranges.items():
        value = getattr(obj, name)
        for item in value if isinstance(value, tuple) else (value,):
            problem = _out_of_range(item, bounds)
            if problem:
                raise ConfigError(f"{section}.{name}={_show(value)}{problem}")


def _out_of_range(value: Any, bounds: tuple[Any, ...]) -> str:
    """'' when ``value`` lies within ``bounds`` (see _DATA_RANGES), else the error's tail."""
    strict = bounds[0] == _ABOVE
    low = bounds[1] if strict else bounds[0]
    high = None if strict or len(bounds) < 2 else bounds[1]
    closed = len(bounds) < 3 or bounds[2]
    if high is not None:
        want = f"in [{low:g}, {high:g}{']' if closed else ')'}"
    else:
        want = f"{'>' if strict else '>='} {low:g}"
    is_float = isinstance(value, float)
    finite = not is_float or math.isfinite(value)
    ok = finite and (value > low if strict else value >= low) and (
        high is None or (value <= high if closed else value < high))
    if ok:
        return ""
    return f": must be a finite number {want}" if is_float else f" must be {want}"


def _show(value: Any) -> str:
    """A field's value as a user would type it back: ``0.9,nan`` for a tuple."""
    return ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


# Sampling engines every autoregressive family can run on (see waveloom.sampling.engine).
ENGINES = ("auto", "torch", "fast", "cuda-graph")
WEIGHT_PRECISIONS = ("float32", "float16", "int8")


@dataclass(frozen=True)
class SamplingOptions:
    """How to draw samples, for every family and every verb: validated once, here.

    ``seed`` makes the draw reproducible (None: a fresh one); ``temperature`` > 0 scales the
    logits of autoregressive families and the latent of GANs; ``engine`` and ``weights`` pick
    the autoregressive sampling engine and the fast engine's weight precision (other families
    refuse a non-default value rather than ignore it); ``threads`` the CPU threads of torch and
    the fast engine (None: leave as is); ``progress`` shows a bar on long loops. Diffusion
    adds ``denoising_steps`` and ``sampler`` (a sampler the model does not have is refused by
    the sampler, which knows the list).
    """

    seed: int | None = 0
    temperature: float = 1.0
    engine: str = "auto"
    weights: str = "float32"
    threads: int | None = None
    progress: bool = True
    denoising_steps: int | None = None  # diffusion: steps (--steps; None: the model's)
    sampler: str | None = None  # diffusion: ddpm | ddim | dpm-solver (None: the model's)

    def __post_init__(self) -> None:
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(
                self.seed, int) or self.seed < 0):
            raise ConfigError(f"--seed {self.seed!r}: must be an integer >= 0")
        if not (isinstance(self.temperature, (int, float)) and 0 < self.temperature < 1e4):
            raise ConfigError(f"--temperature {self.temperature!r}: must be a number in (0, 1e4)")
        if self.engine not in ENGINES:
            raise ConfigError(f"--engine {self.engine!r}: use one of {', '.join(ENGINES)}")
        if self.weights not in WEIGHT_PRECISIONS:
            raise ConfigError(f"--weights {self.weights!r}: use one of "
                              f"{', '.join(WEIGHT_PRECISIONS)}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(
                self.threads, int) or self.threads < 1):
            raise ConfigError(f"--threads {self.threads!r}: must be an integer >= 1")
        steps = self.denoising_steps
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)
                                  or not 1 <= steps <= 10_000):
            raise ConfigError(f"--steps {steps!r}: must be an integer in 1..10000")

    @property
    def is_default_engine(self) -> bool:
        """True when neither the engine nor the weight precision was chosen."""
        return self.engine == "auto" and self.weights == "float32"


# --------------------------------------------------------------------------- conversion


def to_dict(obj: Any) -> Any:
    """Dataclass (nested) -> plain dict of YAML/JSON-safe values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def _unknown_key_error(key: str, where: str, valid: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(
        f"unknown key {where}{key!r}{hint}; valid keys: {', '.join(sorted(valid))}"
    )


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert ``value`` to the annotated type ``tp``, or raise a ConfigError naming ``where``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [v for v in value.replace(",", " ").split() if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}={value!r}: expected a list")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}={value!r}: expected {len(args)} values")
            return tuple(_coerce(v, a, where) for v, a in zip(value, args))
        inner = args[0] if args else Any
        items = [_coerce(v, inner, where) for v in value]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
            return False
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{where}={value!r}: expected true or false")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}={value!r}: expected an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}={value!r}: expected an integer")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}={value!r}: expected a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}={value!r}: expected a number") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}={value!r}: expected a string")
        return str(value)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(tp, value, prefix=f"{where}.")
    return value


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and ill-typed values are rejected."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise _unknown_key_error(str(key), prefix, list(fields))
        kwargs[key] = _coerce(value, hints[key], f"{prefix}{key}")
    try:
        return cls(**kwargs)
    except TypeError as err:  # a required field is missing
        raise ConfigError(f"{prefix or 'config'}: {err}") from None


# --------------------------------------------------------------------------- presets


def parse_override(text: str) -> tuple[list[str], Any]:
    """``'model.layers=10'`` -> (['model', 'layers'], 10). The value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not key=value (e.g. model.layers=10)")
    key, raw = text.split("=", 1)
    path = [k for k in key.strip().split(".") if k]
    if not path:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return path, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of the nested dict ``data`` with each ``key=value`` applied."""
    import copy

    data = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for key in path[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {key!r} is not a section")
        node[path[-1]] = value
    return data


class _DuplicateKey(yaml.YAMLError):
    """A mapping names one key twice (PyYAML would silently keep the last)."""

    def __init__(self, key: Any, line: int) -> None:
        super().__init__(f"key {key!r} appears twice")
        self.key, self.line = key, line


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice: in a preset the second value
    would win without a word, so a typo-level slip changes a run silently."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                if key in seen:
                    raise _DuplicateKey(key, key_node.start_mark.line + 1)
                seen.add(key)
            except TypeError:  # an unhashable key: the base class words that error
                continue
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found (presets live in configs/<family>/)")
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}  # noqa: S506 - safe
    except _DuplicateKey as err:
        raise ConfigError(f"{path} line {err.line}: key {err.key!r} appears twice; keep one"
                          ) from None
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        where = f" line {line + 1}" if line is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML; fix the syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a YAML mapping of sections")
    return data


RUN_SECTIONS = ("family", "model", "data", "train")


def run_family(data: dict[str, Any], source: str, known: list[str]) -> str:
    """The ``family`` of a run's nested dict, after rejecting unknown top-level sections;
    ``known`` (the registered families) only words the error of a missing family."""
    for key in data:
        if key not in RUN_SECTIONS:
            raise ConfigError(f"{source}: {_unknown_key_error(str(key), '', sorted(RUN_SECTIONS))}")
    family = data.get("family")
    if not family:
        raise ConfigError(f"{source}: no 'family' key; one of {', '.join(known)}")
    return str(family)


def run_config_from_dict(data: dict[str, Any], model_config: type[ModelConfig],
                         source: str = "config") -> RunConfig:
    """Nested dict -> validated :class:`RunConfig` whose model section is ``model_config``.

    Generic on purpose: which config class a family uses is the registry's knowledge
    (:func:`waveloom.models.load.build_run_config` looks it up and calls this).
    """
    try:
        run = RunConfig(
            family=str(data["family"]),
            model=from_dict(model_config, data.get("model") or {}, prefix="model."),
            data=from_dict(DataConfig, data.get("data") or {}, prefix="data."),
            train=from_dict(TrainConfig, data.get("train") or {}, prefix="train."),
        )
        run.validate()
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    return run
