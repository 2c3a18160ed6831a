"""Family name -> (config dataclass, model class, training objective).

Adding a family is one line in ``_FAMILIES`` plus its model file and presets; the trainer,
``generate``, ``evaluate`` and the contract tests pick it up from here. Model modules are imported
lazily so reading a config does not import every family.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from waveloom.errors import ConfigError

# name -> ("module:ModelClass", objective)
_FAMILIES: dict[str, tuple[str, str]] = {
    "wavenet": ("waveloom.models.wavenet:WaveNet", "likelihood"),
    "samplernn": ("waveloom.models.samplernn:SampleRNN", "truncated_bptt"),
    "nsynth_ae": ("waveloom.models.nsynth_ae:NSynthAE", "likelihood"),
    "spectral_ae": ("waveloom.models.spectral_ae:SpectralAE", "reconstruction"),
    "wavegan": ("waveloom.models.wavegan:WaveGAN", "adversarial"),
    "specgan": ("waveloom.models.specgan:SpecGAN", "adversarial"),
    "gansynth": ("waveloom.models.gansynth:GANSynth", "adversarial"),
    "melgan": ("waveloom.models.melgan:MelGAN", "adversarial"),
    "codec": ("waveloom.models.codec:Codec", "adversarial"),
    "ada": ("waveloom.models.ada:ADA", "likelihood"),
    "code_prior": ("waveloom.models.code_prior:CodePrior", "likelihood"),
    "codec_lm": ("waveloom.models.codec_lm:CodecLM", "likelihood"),
    "diffwave": ("waveloom.models.diffwave:DiffWave", "denoising"),
    "waveglow": ("waveloom.models.waveglow:WaveGlow", "likelihood"),
    "student": ("waveloom.models.student:Student", "distillation"),
    "latent_diffusion": ("waveloom.models.latent_diffusion:LatentDiffusion", "denoising"),
    "translator": ("waveloom.models.translator:Translator", "likelihood"),
    "ddsp": ("waveloom.models.ddsp:DDSP", "reconstruction"),
    "music_transformer": ("waveloom.models.music_transformer:MusicTransformer", "token_likelihood"),
    "transcriber": ("waveloom.models.transcriber:Transcriber", "transcription"),
}


@dataclass(frozen=True)
class FamilyEntry:
    name: str
    model: type
    config: type
    objective: str


def family_names() -> list[str]:
    return sorted(_FAMILIES)


def get_family(name: str) -> FamilyEntry:
    if name not in _FAMILIES:
        raise ConfigError(f"unknown model family {name!r}; known: {', '.join(family_names())}")
    target, objective = _FAMILIES[name]
    module_name, cls_name = target.split(":")
    model_cls = getattr(importlib.import_module(module_name), cls_name)
    return FamilyEntry(name, model_cls, model_cls.config_class, objective)


#: Bytes per parameter while training: the weights, their gradient and Adam's two moments.
TRAIN_BYTES_PER_PARAM = 4 * 4


def parameter_count(entry: FamilyEntry, model_config) -> int | None:
    """Parameters of ``entry``'s model built on the meta device (no memory, no RNG draws), or
    None when the family cannot be built there (then no estimate is made)."""
    import torch

    try:
        with torch.device("meta"), _skip_init():
            model = entry.model(model_config)
    except ConfigError:
        raise
    except Exception:  # noqa: BLE001 (a family that needs real tensors in __init__)
        return None
    return sum(p.numel() for p in model.parameters())


#: In-place initialisers (``torch.nn.init.*`` and the ``Tensor`` methods they call).
_INITIALISERS = frozenset({
    "normal_", "uniform_", "trunc_normal_", "orthogonal_", "kaiming_uniform_",
    "kaiming_normal_", "xavier_uniform_", "xavier_normal_",
})


def _skip_init() -> Any:
    """A torch function mode that skips weight initialisation: a meta tensor has no values to
    draw, and meta ``normal_`` goes through torch's Python decompositions, whose first use
    imports ``torch._dynamo`` (~1-3 s of every ``generate``'s start-up). So do most other ops
    on meta tensors (their Python references' first ``torch._check`` imports sympy, 0.3 s, and
    often dynamo), so the factories that start a buffer's or parameter's arithmetic
    (``arange``, ``eye``, ``randn``, ``rand``) are answered by :func:`_counting_factory`: small
    ones on the CPU, where the arithmetic that follows runs in C++."""
    import torch
    from torch.overrides import TorchFunctionMode

    class SkipInit(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            kwargs = kwargs or {}
            name = getattr(func, "__name__", "")
            if name in _INITIALISERS:
                return args[0] if args else kwargs.get("tensor")
            if func in (torch.arange, torch.randn, torch.rand, torch.eye):
                return _counting_factory(name, args, kwargs)
            return func(*args, **kwargs)

    return SkipInit()


#: Elements up to which a counted model's factory tensors are made on the CPU (16 MB float32).
CPU_FACTORY_LIMIT = 1 << 22


def _counting_factory(name: str, args: tuple, kwargs: dict) -> Any:
    """``torch.<name>(*args, **kwargs)`` for a parameter count: the same shape and dtype, on
    the CPU when it has at most :data:`CPU_FACTORY_LIMIT` elements (``arange`` and ``eye``
    with their values; ``randn`` and ``rand`` uninitialised: no random draw, so the global
    generator is left as it was), else an empty meta tensor (no allocation however large)."""
    import math

    import torch

    dtype = kwargs.get("dtype")
    if name == "arange":
        ends = [float(a) for a in args[:3]] or [float(kwargs.get("end", 0))]
        start, end, step = (0.0, ends[0], 1.0) if len(ends) == 1 else (
            ends[0], ends[1], ends[2] if len(ends) == 3 else 1.0)
        integral = all(isinstance(a, int) for a in args[:3])
        shape = (max(0, math.ceil((end - start) / step)),)
        dtype = dtype or (torch.int64 if integral else torch.get_default_dtype())
    elif name == "eye":
        shape = (int(args[0]), int(args[1]) if len(args) > 1 else int(args[0]))
    else:  # randn, rand: sizes as ints or one sequence
        size = args[0] if len(args) == 1 and not isinstance(args[0], int) else args
        shape = tuple(int(v) for v in (size or kwargs.get("size", ())))
    dtype = dtype or torch.get_default_dtype()
    if math.prod(shape) > CPU_FACTORY_LIMIT:
        return torch.empty(shape, dtype=dtype, device="meta")
    if name in ("arange", "eye"):
        return getattr(torch, name)(*args, **{**kwargs, "device": "cpu"})
    return torch.empty(shape, dtype=dtype, device="cpu")


def build_model(run_config):
    """Instantiate the model described by a :class:`~waveloom.config.RunConfig`, after checking
    that it fits in memory (``model.residual_channels=1e9`` is one line, not a kernel kill)."""
    from waveloom.memory import check_allocation, human

    entry = get_family(run_config.family)
    count = parameter_count(entry, run_config.model)
    if count is not None:
        check_allocation(count * TRAIN_BYTES_PER_PARAM,
                         f"a {entry.name} model of {count:,} parameters "
                         f"({human(count * 4)} of weights, x4 with gradients and Adam)",
                         "the model.* sizes (channels, layers)")
    return entry.model(run_config.model)
