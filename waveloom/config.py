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

    def validate(self) -> None:
        require_positive(self, "sample_rate", "window", "batch_size", "roll_hop", "chunks")
        if not 0.0 <= self.onset_fraction <= 1.0:
            raise ConfigError(f"data.onset_fraction={self.onset_fraction} must be in [0, 1]")
        if self.num_workers < 0:
            raise ConfigError(f"data.num_workers={self.num_workers} must be >= 0")


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
    checkpoint_every: int = 500
    log_every: int = 50
    sample_every: int = 0  # steps between audio samples logged to TensorBoard; 0 disables
    sample_seconds: float = 1.0
    val_every: int = 0  # steps between validation losses on data.val_split; 0 disables
    val_batches: int = 4  # batches of data.batch_size items scored at each validation
    seed: int = 0
    # Start from these weights (a .safetensors checkpoint of the same family and shape, e.g.
    # the shipped demo model) instead of a random init: fine-tuning on your own recordings, or
    # continuing a finished run with a new schedule. Ignored when --resume finds a run.
    init_from: str = ""

    def validate(self) -> None:
        require_positive(self, "lr", "max_steps", "checkpoint_every", "log_every")
        for name in ("val_every", "val_batches"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name}={getattr(self, name)} must be >= 0")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"train.ema_decay={self.ema_decay} must be in [0, 1)")
        if self.lr_decay not in ("none", "cosine"):
            raise ConfigError(f"train.lr_decay={self.lr_decay!r}: use 'none' or 'cosine'")
        if self.precision not in ("auto", "32", "bf16-mixed", "16-mixed"):
            raise ConfigError(
                f"train.precision={self.precision!r}: use auto, 32, bf16-mixed or 16-mixed"
            )


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
    """Raise :class:`ConfigError` naming the first of ``names`` whose value is not > 0; the
    check every config's ``validate`` starts with."""
    section = {DataConfig: "data", TrainConfig: "train"}.get(type(obj), "model")
    for name in names:
        value = getattr(obj, name)
        if value <= 0:
            raise ConfigError(f"{section}.{name}={value} must be > 0")


# Sampling engines every autoregressive family can run on (see waveloom.sampling.engine).
ENGINES = ("auto", "torch", "fast", "cuda-graph")
WEIGHT_PRECISIONS = ("float32", "int8")


@dataclass(frozen=True)
class SamplingOptions:
    """How to draw samples, for every family and every verb: validated once, here.

    ``seed`` makes the draw reproducible (None: a fresh one); ``temperature`` > 0 scales the
    logits of autoregressive families and the latent of GANs; ``engine`` and ``weights`` pick
    the autoregressive sampling engine and the fast engine's weight precision (other families
    refuse a non-default value rather than ignore it); ``threads`` the CPU threads of torch and
    the fast engine (None: leave as is); ``progress`` shows a bar on long loops. Later
    families add ``steps`` (diffusion), ``sampler`` and ``cfg_scale`` here.
    """

    seed: int | None = 0
    temperature: float = 1.0
    engine: str = "auto"
    weights: str = "float32"
    threads: int | None = None
    progress: bool = True

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


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found (presets live in configs/<family>/)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
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
