"""Runs from files: a :class:`~waveloom.config.RunConfig` from a preset YAML or a checkpoint,
and the model a checkpoint describes.

This is the loading that needs the registry (which family config class a run's ``model``
section is, which model class to build), so it lives at the models layer; the file formats
themselves stay generic below it (:mod:`waveloom.config` reads YAML and applies overrides,
:mod:`waveloom.checkpoint` reads safetensors weights and metadata). Everything above models
(verbs, evaluate, train, sampling's hierarchy manifests) loads through here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from waveloom.checkpoint import load_weights, read_extra, read_run_dict
from waveloom.config import (
    RunConfig,
    apply_overrides,
    read_yaml,
    run_config_from_dict,
    run_family,
)
from waveloom.errors import CheckpointError, ConfigError
from waveloom.models.registry import build_model, family_names, get_family

__all__ = ["build_run_config", "load_checkpoint", "load_config", "read_config", "read_extra"]


def build_run_config(data: dict[str, Any], source: str = "config") -> RunConfig:
    """Nested dict (from YAML, overrides or a checkpoint) -> validated :class:`RunConfig`;
    one-line :class:`ConfigError` prefixed with ``source`` for an unknown key or bad value."""
    data = dict(data)
    family = run_family(data, source, family_names())
    entry = get_family(family)
    return run_config_from_dict(data, entry.config, source)


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a preset YAML, apply ``key=value`` overrides, validate, return a RunConfig."""
    data = apply_overrides(read_yaml(path), list(overrides or []))
    return build_run_config(data, source=str(path))


def read_config(path: str | Path) -> RunConfig:
    """The resolved RunConfig stored in a checkpoint (a :class:`CheckpointError` when the
    stored config is not one this waveloom can build)."""
    data = read_run_dict(path)
    try:
        return build_run_config(data, source=str(path))
    except ConfigError as err:
        raise CheckpointError(str(err)) from None


def load_checkpoint(
    path: str | Path,
    map_location: str | torch.device = "cpu",
    expect_family: str | None = None,
) -> tuple[torch.nn.Module, RunConfig]:
    """Rebuild the model stored in ``path``; return ``(model in eval mode, run_config)``."""
    path = Path(path)
    run = read_config(path)
    if expect_family is not None and run.family != expect_family:
        raise CheckpointError(
            f"{path}: a {run.family!r} checkpoint, but a {expect_family!r} one is needed"
        )
    model = build_model(run)
    load_weights(model, path)
    model.to(map_location).eval()
    return model, run
