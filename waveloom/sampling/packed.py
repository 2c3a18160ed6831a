"""A WaveNet packed for the fast engine's kernels, as plain numpy arrays, and its file form.

:class:`PackedWaveNet` is everything :class:`~waveloom.sampling.kernel_engine.KernelEngine`
runs on: the kernels' weight layout (:class:`~waveloom.sampling.layout.Net`), the
conditioning projections and the head's description. :class:`~waveloom.sampling.fast.
FastWaveNet` makes one from a torch model; :func:`save_packed` / :func:`load_packed` keep it
in a safetensors file, so ``waveloom generate`` can run a model it packed before without
importing torch (:mod:`waveloom.app._generate_packed`: torch's import is ~1.5 s, the largest
part of a short clip's command). No torch here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from waveloom.sampling import layout

#: Bumped whenever the packed layout or what it means changes: older files are then misses.
PACK_VERSION = 1


@dataclass(frozen=True)
class HeadSpec:
    """The output head as the kernels draw from it (:class:`~waveloom.sampling.layout.Head`
    without the temperature): ``kind`` is ``layout.CATEGORICAL | LOGISTIC_MIXTURE |
    GAUSSIAN``; ``input_map`` [levels] int32 maps a drawn code to the next input code."""

    kind: int
    levels: int
    components: int
    log_scale_min: float
    input_map: np.ndarray

    @property
    def gaussian(self) -> bool:
        """Whether draws read a standard normal deviate instead of the uniform."""
        return self.kind == layout.GAUSSIAN


@dataclass
class PackedWaveNet:
    """A WaveNet stack + head in the kernels' layout (float32 numpy unless noted).

    ``conv_bias`` [n, 2D]; ``global_w`` [n, 2D, G] and ``local_w`` [L, n * 2D] (step form:
    gate half halved) where the stack has such conditioning; ``kernel_local_w`` [n, L, 2D] in
    the C kernel's panels where it projects up to ``KERNEL_LOCAL_MAX`` local features itself.
    ``backend`` ('c' | 'numba') and ``weights`` ('float32' | 'float16' | 'int8') say what the
    matrices were packed for (the C panels depend on the built kernel's block width).
    """

    net: layout.Net
    conv_bias: np.ndarray
    global_w: np.ndarray | None
    local_w: np.ndarray | None
    head: HeadSpec
    residual_channels: int
    dilation_channels: int
    receptive_field: int
    backend: str
    weights: str
    kernel_local_w: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # what a caller stores beside it

    @property
    def blocks(self) -> int:
        """Residual layers in the stack."""
        return int(self.net.dil.shape[0])

    @property
    def kernel_size(self) -> int:
        return int(self.net.kernel)


_NET_SCALARS = ("kernel", "n_res", "scaled")


def save_packed(packed: PackedWaveNet, path: str | Path, arrays: dict[str, np.ndarray] | None
                = None) -> Path:
    """Write ``packed`` (+ a caller's ``arrays``, stored under ``extra.NAME``) to ``path``
    atomically (a temporary file renamed into place: concurrent writers are harmless)."""
    from safetensors.numpy import save_file

    path = Path(path)
    tensors: dict[str, np.ndarray] = {}
    for name, value in packed.net._asdict().items():
        if name not in _NET_SCALARS:
            tensors[f"net.{name}"] = np.ascontiguousarray(value)
    for name in ("conv_bias", "global_w", "local_w", "kernel_local_w"):
        value = getattr(packed, name)
        if value is not None:
            tensors[name] = np.ascontiguousarray(value)
    tensors["head.input_map"] = np.ascontiguousarray(packed.head.input_map)
    for name, value in (arrays or {}).items():
        tensors[f"extra.{name}"] = np.ascontiguousarray(value)
    meta = {
        "version": PACK_VERSION,
        "net": {k: getattr(packed.net, k) for k in _NET_SCALARS},
        "head": {"kind": packed.head.kind, "levels": packed.head.levels,
                 "components": packed.head.components,
                 "log_scale_min": packed.head.log_scale_min},
        "dims": {"residual_channels": packed.residual_channels,
                 "dilation_channels": packed.dilation_channels,
                 "receptive_field": packed.receptive_field},
        "backend": packed.backend, "weights": packed.weights, "extra": packed.extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(tensors)}.tmp")
    save_file(tensors, str(tmp), metadata={"waveloom_packed": json.dumps(meta)})
    tmp.replace(path)
    return path


def load_packed(path: str | Path) -> tuple[PackedWaveNet, dict[str, np.ndarray]]:
    """(the packed model, the caller's arrays) from :func:`save_packed`'s file. Raises
    ValueError for a file of another :data:`PACK_VERSION` or not a packed model."""
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        meta = json.loads((f.metadata() or {}).get("waveloom_packed", "null") or "null")
        if not isinstance(meta, dict) or meta.get("version") != PACK_VERSION:
            raise ValueError(f"{path}: not a packed model of version {PACK_VERSION}")
        t = {k: f.get_tensor(k) for k in f.keys()}
    fields = {k[4:]: v for k, v in t.items() if k.startswith("net.")}
    net_meta = meta["net"]
    net = layout.Net(**fields, kernel=int(net_meta["kernel"]), n_res=int(net_meta["n_res"]),
                     scaled=bool(net_meta["scaled"]))
    h = meta["head"]
    head = HeadSpec(kind=int(h["kind"]), levels=int(h["levels"]),
                    components=int(h["components"]),
                    log_scale_min=float(h["log_scale_min"]), input_map=t["head.input_map"])
    packed = PackedWaveNet(
        net=net, conv_bias=t["conv_bias"], global_w=t.get("global_w"),
        local_w=t.get("local_w"), head=head, backend=meta["backend"],
        weights=meta["weights"], kernel_local_w=t.get("kernel_local_w"),
        extra=meta.get("extra") or {}, **{k: int(v) for k, v in meta["dims"].items()},
    )
    arrays = {k[6:]: v for k, v in t.items() if k.startswith("extra.")}
    return packed, arrays
