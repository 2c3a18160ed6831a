"""Checkpoints: weights in safetensors, with the resolved config and a format version.

A checkpoint is one ``.safetensors`` file whose metadata holds the format version, the family and
the resolved :class:`~waveloom.config.RunConfig` as JSON, so ``generate`` rebuilds the model from
the file alone. Loading never unpickles anything, so a checkpoint cannot run code. Resume state
(optimiser, step, RNG) lives apart, in the trainer's own files.

Generic on purpose (nothing above config is imported, bar the transitional aliases at the
end): rebuilding the model a checkpoint describes needs the registry, so
:func:`waveloom.models.load.load_checkpoint` does it with :func:`load_weights` from here.

Writes are atomic (temp file in the same folder, then ``os.replace``): a reader never sees a half
file, and a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError, safe_open

from waveloom.config import RunConfig
from waveloom.errors import CheckpointError

if TYPE_CHECKING:  # torch is imported where weights are read or written: reading metadata
    import torch  # (generate's recommended temperature, a packed model's key) needs none

FORMAT_VERSION = 1
_MAGIC = "waveloom"
#: Suffix of the temp files atomic writes leave only when killed mid-write (cleaned at start).
TMP_SUFFIX = ".tmp"


def save_file(tensors: dict[str, torch.Tensor], path: str, metadata: dict[str, str]) -> None:
    """``safetensors.torch.save_file``, imported when a checkpoint is written (reading one's
    metadata needs no torch)."""
    from safetensors.torch import save_file as write

    write(tensors, path, metadata=metadata)


def _state_for_saving(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State dict with tied tensors stored once (safetensors refuses shared storage)."""
    state: dict[str, torch.Tensor] = {}
    seen: dict[tuple[int, int, tuple[int, ...]], str] = {}
    for name, tensor in model.state_dict().items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key in seen:
            continue
        seen[key] = name
        state[name] = tensor.detach().to("cpu").contiguous()
    return state


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    run_config: RunConfig,
    extra: dict[str, Any] | None = None,
    *,
    temp: bool = False,
) -> Path:
    """Write ``model``'s weights + ``run_config`` to ``path`` atomically; return the path.

    ``temp``: write only the temp file beside ``path`` and return it, for a caller that renames
    several files together (the trainer: resume.pt and model.safetensors of one step).
    """
    path = Path(path)
    metadata = {
        "format": _MAGIC,
        "format_version": str(FORMAT_VERSION),
        "family": run_config.family,
        "config": json.dumps(run_config.to_dict()),
        "extra": json.dumps(extra or {}),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CheckpointError(
            f"{path}: cannot write checkpoint ({err.strerror}); choose a writable --out folder"
        ) from None
    state = _state_for_saving(model)
    tmp = write_temp(path, lambda tmp: save_file(state, tmp, metadata=metadata))
    if temp:
        return tmp
    os.replace(tmp, path)
    return path


def atomic_write(path: Path, write: Any) -> None:
    """``write(tmp)`` into a temp file beside ``path``, then ``os.replace`` it over ``path``:
    a reader never sees half a file (see :func:`write_temp`)."""
    os.replace(write_temp(path, write), path)


def write_temp(path: Path, write: Any) -> Path:
    """``write(tmp)`` into a new temp file beside ``path``; return the temp file's path.

    A failed write (a full disk) leaves no temp file behind and ``path`` as it was; an
    ``OSError`` becomes a one-line CheckpointError. The mode is set after writing
    (``safetensors`` recreates the file 0600): the umask's, as a plain ``open`` would give, so
    a checkpoint can be shared.
    """
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
        os.close(fd)
        write(tmp)
        os.chmod(tmp, default_file_mode())
        return Path(tmp)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, (OSError, SafetensorError)):
            reason = getattr(err, "strerror", None) or str(err).splitlines()[0]
            raise CheckpointError(
                f"{path}: cannot write it ({reason}); the previous file is kept: free space "
                "or choose another --out"
            ) from None
        raise


def default_file_mode() -> int:
    """0666 minus the process umask: the mode a plain open() would have given the file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def read_metadata(path: str | Path) -> dict[str, str]:
    """The checkpoint's metadata, after checking it is a waveloom checkpoint we can read."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found (`waveloom models` lists the "
                              "shipped ones by name)")
    try:
        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        hint = (
            "it is a pickle (.pt/.ckpt); waveloom never unpickles checkpoints, use the "
            ".safetensors file a waveloom run writes"
            if _looks_like_pickle(path)
            else f"not a safetensors file ({err})"
        )
        raise CheckpointError(f"{path}: cannot read checkpoint: {hint}") from None
    if meta.get("format") != _MAGIC:
        raise CheckpointError(
            f"{path}: a safetensors file without waveloom metadata; "
            "train with `waveloom train` to get a loadable checkpoint"
        )
    version = meta.get("format_version", "?")
    if version != str(FORMAT_VERSION):
        raise CheckpointError(
            f"{path}: checkpoint format version {version}, this waveloom reads version "
            f"{FORMAT_VERSION}; use the waveloom release that wrote it"
        )
    return meta


def _looks_like_pickle(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(4)
    return head[:1] == b"\x80" or head[:2] == b"PK"


def read_run_dict(path: str | Path) -> dict[str, Any]:
    """The resolved run config stored in a checkpoint, as the nested dict it was saved from
    (:func:`waveloom.models.load.read_config` turns it into a RunConfig: that needs the
    registry, which lives above this module)."""
    meta = read_metadata(path)
    try:
        data = json.loads(meta["config"])
    except (KeyError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: checkpoint metadata has no readable config") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: checkpoint metadata has no readable config")
    return data


def read_extra(path: str | Path) -> dict[str, Any]:
    """The ``extra`` metadata of a checkpoint (step, instrument vocabulary, ...)."""
    try:
        extra = json.loads(read_metadata(path).get("extra", "{}"))
    except json.JSONDecodeError:
        extra = None
    if not isinstance(extra, dict):
        raise CheckpointError(f"{path}: its 'extra' metadata is not a JSON object; re-export "
                              "the checkpoint with waveloom train")
    return extra


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load safetensors weights into ``model``, with one-line errors on any mismatch."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: cannot read weights ({err})") from None
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    # Tied tensors are stored once: fill a missing name from its twin with the same storage.
    twins = tied_names(model)
    for name in list(missing):
        src = twins.get(name)
        if src is not None and src in tensors:
            tensors[name] = tensors[src]
            missing.remove(name)
    check_finite(tensors, path)
    unexpected = [k for k in tensors if k not in expected]
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not match the model described by its config "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}); the file is corrupt or was "
            "edited by hand"
        )
    for name, value in tensors.items():
        if tuple(value.shape) != tuple(expected[name].shape):
            raise CheckpointError(
                f"{path}: tensor {name} has shape {tuple(value.shape)}, the model expects "
                f"{tuple(expected[name].shape)}; the config and weights disagree"
            )
    model.load_state_dict(tensors, strict=True)


def check_finite(tensors: dict[str, torch.Tensor], path: str | Path) -> None:
    """Refuse weights holding NaN or infinity, naming the first such tensor: such a model
    generates a full-scale constant (DC) instead of failing. One pass over the weights, at
    load only, in numpy: ~0.5 ms for the shipped SampleRNN's 6.4 MB, where torch's parallel
    reduction took 0.35 s with the other core busy (its threads wait on each other; one torch
    thread: 9-13 ms), see docs/reliability.md."""
    import numpy as np
    import torch

    for name, tensor in tensors.items():
        if not tensor.is_floating_point():
            continue
        values = tensor.detach().cpu()
        finite = np.isfinite((values.float() if values.dtype == torch.bfloat16 else values)
                             .numpy())
        if not finite.all():
            bad = int(finite.size - np.count_nonzero(finite))
            raise CheckpointError(
                f"{path}: tensor {name} holds {bad} non-finite value(s) (NaN or inf); the run "
                "diverged or the file is corrupt: use an earlier checkpoint"
            )


def tied_names(model: torch.nn.Module) -> dict[str, str]:
    """Each state-dict name whose tensor shares storage with an earlier one -> that name."""
    first: dict[tuple[int, int, tuple[int, ...]], str] = {}
    twins: dict[str, str] = {}
    for name, tensor in model.state_dict().items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key in first:
            twins[name] = first[key]
        else:
            first[key] = name
    return twins
