"""A training run's folder: the checks before a run, resume.pt, and the exported checkpoint.

A run folder holds::

    RUN/config.yaml          the resolved config
    RUN/model.safetensors    the latest exported weights (EMA when enabled) -> `waveloom generate`
    RUN/resume.pt            weights + optimisers + schedules + EMA + step + RNG (tensors only)
    RUN/tb/                  TensorBoard scalars, audio samples and spectrogram images
    RUN/samples/             the same samples as WAV + PNG

resume.pt is a flat dict: ``step``, ``model``, ``rng`` (written here) and whatever the
objective's ``state_dict`` returns (``optimizer``, ``scheduler``, ``ema``, and a second player's
``optimizer_d``/``scheduler_d``): the same keys the trainer wrote before objectives existed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from waveloom.checkpoint import default_file_mode, save_checkpoint
from waveloom.config import RunConfig
from waveloom.errors import CheckpointError, DataError

RESUME_FILE = "resume.pt"
MODEL_FILE = "model.safetensors"


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save to a temp file in the same folder, then rename: never a half-written file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, default_file_mode())
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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

    def __init__(self, out: str | Path, resume: bool) -> None:
        self.root, self.resume = Path(out), resume
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as err:
            raise DataError(
                f"{self.root}: run folder is not writable ({err.strerror}); pass another --out"
            ) from None
        if self.resume_path.exists() and not resume:
            raise DataError(
                f"{self.root} already holds a run ({RESUME_FILE}); pass --resume to continue it "
                "or choose another --out"
            )

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
        """Write resume.pt, then model.safetensors (the objective's export weights); rank 0
        writes, every rank waits."""
        fabric.barrier()
        if fabric.is_global_zero:
            raw = getattr(model, "module", model)
            atomic_torch_save({
                "step": step,
                "model": {k: v.detach().cpu() for k, v in raw.state_dict().items()},
                **objective.state_dict(),
                "rng": rng_state(fabric.device),
            }, self.resume_path)
            self.export(objective.export_weights(model), cfg, step, instruments)
        fabric.barrier()

    def export(self, weights: dict[str, torch.Tensor], cfg: RunConfig, step: int,
               instruments: list[str]) -> None:
        """model.safetensors from a CPU state dict (a fresh model holds it, so tied tensors are
        stored once)."""
        from waveloom.models.registry import build_model

        with torch.random.fork_rng(devices=[]):  # building draws init weights
            export_model = build_model(cfg)
        export_model.load_state_dict(weights)
        save_checkpoint(self.model_path, export_model, cfg, extra={
            "step": step,
            # Names for `generate --instrument NAME`: ids are the cache's vocabulary.
            "instruments": list(instruments),
        })
