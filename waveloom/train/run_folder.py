"""A training run's folder: the checks before a run, resume.pt, and the exported checkpoint.

A run folder holds::

    RUN/config.yaml          the resolved config
    RUN/run.json             the data folder and the resolved config, compared on --resume
    RUN/model.safetensors    the latest exported weights (EMA when enabled) -> `waveloom generate`
    RUN/resume.pt            weights + optimisers + schedules + EMA + step + RNG (tensors only)
    RUN/tb/                  TensorBoard scalars, audio samples and spectrogram images
    RUN/samples/             the same samples as WAV + PNG

resume.pt is a flat dict: ``step``, ``model``, ``rng`` (written here) and whatever the
objective's ``state_dict`` returns (``optimizer``, ``scheduler``, ``ema``, and a second player's
``optimizer_d``/``scheduler_d``): the same keys the trainer wrote before objectives existed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from waveloom.checkpoint import (
    TMP_SUFFIX,
    atomic_write,
    read_extra,
    save_checkpoint,
    write_temp,
)
from waveloom.config import RunConfig, run_config_from_dict
from waveloom.errors import CheckpointError, ConfigError, DataError

RESUME_FILE = "resume.pt"
MODEL_FILE = "model.safetensors"
BEST_FILE = "best.safetensors"  # train.keep_best: the weights of the lowest validation loss
RUN_FILE = "run.json"

#: Keys a resumed run may change without ``--override``: how long it runs and what it logs.
#: Anything else (the lr, the model, the data) would make the result neither run's.
RESUMABLE_CHANGES = frozenset({
    "train.max_steps", "train.checkpoint_every", "train.log_every", "train.sample_every",
    "train.sample_seconds", "train.val_every", "train.val_batches", "train.init_from",
    "data.num_workers", "data.val_split", "train.keep_best",
})


def _read_today(saved: dict[str, Any], cfg: RunConfig) -> dict[str, Any]:
    """A saved run's config, flat, as today's code reads it: a key added to waveloom after the
    run started takes its default (the behaviour the run had), so resuming an older run is
    not refused for it; a key today's code no longer knows stays as saved (and shows as
    changed)."""
    try:
        return _flat(run_config_from_dict(saved, type(cfg.model)).to_dict())
    except ConfigError:
        return _flat(saved)


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'train': {'lr': 1}} -> {'train.lr': 1}."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def load_resume_state(path: Path) -> dict[str, Any]:
    """Read resume.pt with ``weights_only=True``: tensors and plain containers, never code."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad resume file
        raise CheckpointError(
            f"{path}: cannot resume from it ({type(err).__name__}); delete it to start over"
        ) from None


def rng_state(device: torch.device) -> dict[str, Any]:
    """The RNG states a step draws from: the CPU's, and the GPU's when training on one."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


class RunFolder:
    """The folder ``out`` of one run; checked writable (and not holding a run unless
    ``resume``) when made."""

    def __init__(self, out: str | Path, resume: bool, overwrite: bool = False) -> None:
        self.root, self.resume = Path(out), resume
        if resume and overwrite:
            raise ConfigError("--resume continues the run in --out, --overwrite replaces it; "
                              "pass one of them")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as err:
            raise DataError(
                f"{self.root}: run folder is not writable ({err.strerror}); pass another --out"
            ) from None
        self._check_existing(resume, overwrite)

    def _check_existing(self, resume: bool, overwrite: bool) -> None:
        """Refuse to write over a run or a model unless asked to (``--resume``/``--overwrite``)."""
        if overwrite:
            return
        if self.resume_path.exists() and not resume:
            raise DataError(
                f"{self.root} already holds a run ({RESUME_FILE}); pass --resume to continue it, "
                "--overwrite to replace it, or choose another --out"
            )
        if self.model_path.exists() and not self.resume_path.exists():
            raise DataError(
                f"{self.root} already holds a model ({MODEL_FILE}) and no {RESUME_FILE} to "
                "--resume from; choose another --out, or pass --overwrite to replace it"
            )

    def clear(self) -> None:
        """``--overwrite``: remove the old run's files once the new run's inputs are checked
        (so a typo in --data costs nothing), and before anything is written (so a crash cannot
        leave the old resume.pt beside the new config)."""
        for name in (RESUME_FILE, MODEL_FILE, RUN_FILE, BEST_FILE):
            (self.root / name).unlink(missing_ok=True)

    def clean_orphans(self, fabric: Any) -> None:
        """Delete temp files that a run killed mid-save left (``.model.safetensors.*.tmp``)."""
        for name in (MODEL_FILE, RESUME_FILE, RUN_FILE):
            for tmp in self.root.glob(f".{name}.*{TMP_SUFFIX}"):
                tmp.unlink(missing_ok=True)
                fabric.print(f"note: removed {tmp.name}, left by an interrupted save")

    def check_resume(self, cfg: RunConfig, data: str | Path, override: bool, fabric: Any
                     ) -> None:
        """On ``--resume``, refuse a changed data folder or config (bar RESUMABLE_CHANGES),
        naming the keys, unless ``override``; a run without run.json (older) is not checked."""
        path = self.root / RUN_FILE
        if not (self.resume and self.resume_path.exists() and path.exists()):
            return
        try:
            saved = json.loads(path.read_text())
            before = {"data folder": saved["data"], **_read_today(saved["config"], cfg)}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            fabric.print(f"note: {path} is unreadable; the resumed config is not compared")
            return
        now = {"data folder": str(Path(data).resolve()), **_flat(cfg.to_dict())}
        changed = sorted(k for k in before.keys() | now.keys()
                         if k not in RESUMABLE_CHANGES and before.get(k) != now.get(k))
        if changed and not override:
            shown = ", ".join(f"{k} ({before.get(k)!r} -> {now.get(k)!r})" for k in changed[:4])
            raise ConfigError(f"{self.root}: --resume with changed {shown}; resume with the "
                              "run's settings, or pass --override to continue with the new ones")
        if changed:
            fabric.print(f"note: --override: continuing with changed {', '.join(changed)}")

    def write_run(self, cfg: RunConfig, data: str | Path) -> None:
        """config.yaml (to read) and run.json (the data folder + config, compared on resume)."""
        self.write_config(cfg)
        text = json.dumps({"data": str(Path(data).resolve()), "config": cfg.to_dict()}, indent=1)
        # Atomic: under DDP another rank may be reading it in check_resume.
        atomic_write(self.root / RUN_FILE, lambda tmp: Path(tmp).write_text(text))

    def model_step(self) -> int | None:
        """The step model.safetensors was exported at; None when it is missing or unreadable."""
        try:
            return int(read_extra(self.model_path).get("step", -1))
        except (CheckpointError, ValueError, TypeError, AttributeError):
            return None

    @property
    def resume_path(self) -> Path:
        return self.root / RESUME_FILE

    @property
    def model_path(self) -> Path:
        return self.root / MODEL_FILE

    def load_resume(self, fabric: Any) -> dict[str, Any] | None:
        """resume.pt's state when resuming a run that has one, else None."""
        if self.resume and self.resume_path.exists():
            return load_resume_state(self.resume_path)
        if self.resume:
            fabric.print(f"note: {self.resume_path} not found; starting from step 0")
        return None

    def restore(self, load: Callable[[], Any]) -> None:
        """Run ``load`` (restoring weights or an objective's state from resume.pt), a mismatch
        or a missing key turned into a one-line CheckpointError."""
        try:
            load()
        except (KeyError, RuntimeError, ValueError) as err:
            raise CheckpointError(
                f"{self.resume_path}: does not match this config ({str(err).splitlines()[0]}); "
                "resume with the config the run was started with"
            ) from None

    def write_config(self, cfg: RunConfig) -> None:
        (self.root / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    def save(self, fabric: Any, step: int, model: nn.Module, objective: Any, cfg: RunConfig,
             instruments: list[str]) -> None:
        """Write resume.pt and model.safetensors (the objective's export weights) of ``step``;
        rank 0 writes, every rank waits. Both are written to temp files first and renamed only
        when both are complete, so a failed save (a full disk) keeps the previous pair."""
        fabric.barrier()
        if fabric.is_global_zero:
            raw = getattr(model, "module", model)
            state = {
                "step": step,
                "model": {k: v.detach().cpu() for k, v in raw.state_dict().items()},
                **objective.state_dict(),
                "rng": rng_state(fabric.device),
            }
            resume_tmp = write_temp(self.resume_path, lambda tmp: torch.save(state, tmp))
            try:
                model_tmp = self.export(objective.export_weights(model), cfg, step, instruments,
                                        temp=True)
            except BaseException:
                resume_tmp.unlink(missing_ok=True)
                raise
            os.replace(resume_tmp, self.resume_path)
            os.replace(model_tmp, self.model_path)
        fabric.barrier()

    def export(self, weights: dict[str, torch.Tensor], cfg: RunConfig, step: int,
               instruments: list[str], temp: bool = False, path: Path | None = None,
               **extra: Any) -> Path:
        """model.safetensors (or ``path``) from a CPU state dict (a fresh model holds it, so
        tied tensors are stored once); ``temp``: only its temp file, returned (see save)."""
        from waveloom.models.registry import build_model

        with torch.random.fork_rng(devices=[]):  # building draws init weights
            export_model = build_model(cfg)
        export_model.load_state_dict(weights)
        return save_checkpoint(path or self.model_path, export_model, cfg, temp=temp, extra={
            "step": step,
            # Names for `generate --instrument NAME`: ids are the cache's vocabulary.
            "instruments": list(instruments),
            **extra,
        })

    @property
    def best_path(self) -> Path:
        return self.root / BEST_FILE

    def best_val_loss(self) -> float:
        """The validation loss best.safetensors was kept at (inf: none yet), so a resumed run
        replaces it only with better weights."""
        if not self.best_path.is_file():
            return float("inf")
        return float(read_extra(self.best_path).get("val_loss", float("inf")))

    def save_best(self, fabric: Any, step: int, model: nn.Module, objective: Any,
                  cfg: RunConfig, instruments: list[str], val_loss: float) -> None:
        """best.safetensors: the export weights of ``step``, at validation loss ``val_loss``
        (atomically; rank 0 writes)."""
        if fabric.is_global_zero:
            self.export(objective.export_weights(model), cfg, step, instruments,
                        path=self.best_path, val_loss=float(val_loss))
