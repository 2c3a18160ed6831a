"""Checks and set-up before a run's first step: the data's vocabulary and rate, the precision,
Fabric, and ``train.init_from``'s weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from waveloom.config import RunConfig
from waveloom.errors import CheckpointError, ConfigError


def precision(requested: str, accelerator: str) -> str:
    """``train.precision``, with ``auto`` resolved: bf16-mixed on a GPU that has it, else 32."""
    if requested != "auto":
        return requested
    if accelerator == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def launch_fabric(cfg: RunConfig, accelerator: str, devices: int | str, num_nodes: int,
                  strategy: str) -> Any:
    """Start Lightning Fabric (processes, devices, precision) and seed every RNG."""
    import lightning as L

    device_kind = accelerator if accelerator != "auto" else (
        "cuda" if torch.cuda.is_available() else "cpu")
    fabric = L.Fabric(accelerator=accelerator, devices=devices, num_nodes=num_nodes,
                      strategy=strategy, precision=precision(cfg.train.precision, device_kind))
    fabric.launch()
    fabric.seed_everything(cfg.train.seed, workers=True, verbose=False)
    return fabric


def check_vocabulary(cfg: RunConfig, cache: Any) -> None:
    """Fail before training if the cache has more instruments than the model has embeddings."""
    n_cache = len(cache.info.get("instruments", []))
    n_model = getattr(cfg.model, "num_instruments", None)
    wants = getattr(cfg.model, "instrument_conditioning", True)
    if n_model is not None and wants and n_cache > n_model:
        raise ConfigError(
            f"{cache.root} has {n_cache} instruments but model.num_instruments={n_model}; "
            f"pass model.num_instruments={n_cache} (or more)"
        )
    model_sr = getattr(cfg.model, "sample_rate", None)
    if model_sr is not None and model_sr != cfg.data.sample_rate:
        raise ConfigError(
            f"model.sample_rate={model_sr} but data.sample_rate={cfg.data.sample_rate}; "
            "set both to the cache's rate"
        )


def init_from(model: torch.nn.Module, cfg: RunConfig, path: Path) -> None:
    """Load ``train.init_from``'s weights into the freshly built ``model`` (one-line errors)."""
    from waveloom.checkpoint import load_weights, tied_names
    from waveloom.models.load import read_config

    if not path.is_file():
        raise CheckpointError(f"train.init_from={path}: no such file; pass a .safetensors "
                              "checkpoint (e.g. a run's model.safetensors)")
    family = read_config(path).family
    if family != cfg.family:
        raise CheckpointError(f"train.init_from={path}: a {family!r} checkpoint cannot start a "
                              f"{cfg.family!r} run; pass one of the same family")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        shapes = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    differ = sorted(k for k in expected if k in shapes and shapes[k] != expected[k])
    extra = sorted(set(shapes) - set(expected))
    twins = tied_names(model)  # tied tensors are stored once
    missing = sorted(k for k in set(expected) - set(shapes) if twins.get(k) not in shapes)
    if differ or extra or missing:
        what = (f"{differ[0]} is {shapes[differ[0]]} there, {expected[differ[0]]} here" if differ
                else f"it has {extra[0]}, which this model lacks" if extra
                else f"it lacks {missing[0]}")
        raise CheckpointError(f"train.init_from={path}: its model is shaped differently ({what}); "
                              "use the preset and model.* overrides it was trained with")
    load_weights(model, path)
