"""Family name -> (config dataclass, model class, training objective).

Adding a family is one line in ``_FAMILIES`` plus its model file and presets; the trainer,
``generate``, ``evaluate`` and the contract tests pick it up from here. Model modules are imported
lazily so reading a config does not import every family.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

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
    """Parameters of ``entry``'s model, counted by a cheap CPU build that stops past what
    could fit (:mod:`waveloom.models.counting`: no random draws, no allocation beyond a
    quarter of the free memory); None when the family cannot be counted (no estimate)."""
    from waveloom.memory import available_bytes
    from waveloom.models.counting import count_parameters

    free = available_bytes()
    limit = (free // 4 // 4) if free else 1 << 33  # elements of 4 bytes in a quarter of it
    return count_parameters(lambda: entry.model(model_config), limit)


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
