"""Drawing from a packed note WaveNet without torch: labels, clocks, uniforms, kernel, audio.

:func:`draw_packed` is the fast engine's ``stream_fast`` for a WaveNet packed by
:func:`pack_note_model` (:class:`~waveloom.sampling.packed.PackedWaveNet` plus what drawing
needs beyond the network: the labels' embedding rows, the head's decode table, the context,
the silence code, the local features' recipe). It runs on :class:`~waveloom.sampling.
kernel_engine.KernelEngine` with the pitch excitation and note clock of
:mod:`waveloom.sampling.clock_signals` and the uniforms of :mod:`waveloom.sampling.uniforms`,
each equal to its torch reference bit for bit, so a packed model draws the samples the torch
model draws for a seed (``tests/test_generate_packed.py``). ``waveloom generate`` keeps packs
in its cache and runs them without importing torch (:mod:`waveloom.app._generate_packed`).

Packable: the ``wavenet`` family conditioned on nothing, pitch and/or instrument labels, the
pitch excitation and the note clock (not a mel or roll: the upsampler is a torch network).
Only :func:`pack_note_model` imports torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from waveloom.errors import ConfigError
from waveloom.sampling.packed import PackedWaveNet


@dataclass
class Packed:
    """A packed note WaveNet and what drawing from it needs beyond the network."""

    net: PackedWaveNet
    arrays: dict[str, np.ndarray]  # pitch_table, instrument_table, decode

    @property
    def info(self) -> dict[str, Any]:
        return self.net.extra

    @property
    def keys(self) -> tuple[str, ...]:
        """The labels the model takes (its ``conditioning_keys()``)."""
        return tuple(self.info["keys"])


class ClockFeatures:
    """A note model's local features [n, L, total] on demand (the pitch excitation then the
    note clock, as the model concatenates them), sliced like the tensor they stand for
    (``local[..., a:b]``); positions count from the start of the silent history, the note
    starting at ``onset``."""

    def __init__(self, n: int, total: int, pitch: int | None, onset: int,
                 info: dict[str, Any]) -> None:
        self.n, self.pitch, self.onset, self.info = n, pitch, onset, info
        self.shape = (n, int(info["local_channels"]), total)

    def span(self, lo: int, hi: int) -> np.ndarray:
        from waveloom.sampling import clock_signals

        total = self.shape[-1]
        lo, hi = max(0, min(lo, total)), max(0, min(hi, total))
        positions = np.broadcast_to(np.arange(lo, hi, dtype=np.int64), (self.n, hi - lo))
        times = positions - self.onset
        sr, clock = int(self.info["sample_rate"]), self.info["clock"]
        parts = []
        if clock["excitation"]:
            onset_phase = bool(clock["onset_phase"])
            pitch = None if self.pitch is None else np.full(self.n, self.pitch)
            parts.append(clock_signals.pitch_excitation(
                pitch, times if onset_phase else positions, sr, onset_phase=onset_phase))
        if clock["note_clock"]:
            parts.append(clock_signals.note_clock(times, sr, tuple(clock["taus"])))
        return np.concatenate(parts, axis=1)

    def __getitem__(self, key: Any) -> np.ndarray:
        if not (isinstance(key, tuple) and len(key) == 2 and key[0] is Ellipsis
                and isinstance(key[1], slice) and key[1].step in (None, 1)):
            raise TypeError("ClockFeatures supports local[..., a:b] only")
        lo, hi, _ = key[1].indices(self.shape[-1])
        return self.span(lo, hi)


def global_vector(packed: Packed, n: int, pitch: int | None, instrument: int | None
                  ) -> np.ndarray | None:
    """The [n, G] global vector of the labels (the embedding rows, pitch's then the
    instrument's, as the model's GlobalConditioning concatenates them; -1/None: unknown)."""
    parts = []
    for key, label, table in (("pitch", pitch, "pitch_table"),
                              ("instrument", instrument, "instrument_table")):
        if table not in packed.arrays:
            continue
        rows = packed.arrays[table]
        index = rows.shape[0] - 1 if label is None or label < 0 else int(label)
        if index >= rows.shape[0] - 1 and key == "instrument" and label is not None:
            count = rows.shape[0] - 1
            raise ConfigError(f"cond: instrument {label} is outside 0..{count - 1} "
                              f"(model.num_instruments={count}; -1 means unknown)")
        parts.append(np.broadcast_to(rows[index], (n, rows.shape[1])))
    return np.concatenate(parts, axis=1).astype(np.float32) if parts else None


def draw_packed(packed: Packed, n: int, length: int, *, pitch: int | None,
                instrument: int | None, seed: int | None, temperature: float,
                progress: bool, segment: int) -> Iterator[np.ndarray]:
    """Audio [n, t] float32 in [-1, 1], ``segment`` samples at a time: the fast engine's
    ``stream_fast`` on the packed network (same history, labels, features and uniforms)."""
    from tqdm.auto import tqdm

    from waveloom.sampling.kernel_engine import KernelEngine
    from waveloom.sampling.uniforms import UniformStream

    info = packed.info
    ctx = int(info["context"])
    label = pitch if "pitch" in packed.keys else None  # None or -1: the unknown pitch
    engine = KernelEngine(packed.net)
    engine.reset(n, global_vector(packed, n, label, instrument))
    local = None
    if info["clock"]["excitation"] or info["clock"]["note_clock"]:
        local = ClockFeatures(n, ctx + length, label, ctx, info)
    prefix = np.full((n, ctx), int(info["silence_code"]), np.int32)
    engine.prime(prefix, None if local is None else local[..., 1 : ctx + 1])
    uniforms = UniformStream(seed)
    decode = packed.arrays["decode"]
    per_step = int(info["uniforms_per_step"])
    bar = tqdm(total=length, disable=not progress, unit="sample", desc="fast sampling")
    try:
        for s0 in range(0, length, segment):
            s1 = min(length, s0 + segment)
            codes = engine.generate(s1 - s0, uniforms.draw(s1 - s0, n, per_step), temperature,
                                    local=local, local_offset=ctx + 1 + s0, progress=bar,
                                    final=s1 == length)
            yield decode[codes]
    finally:
        bar.close()




# --------------------------------------------------------------------------- packing (torch)


def pack_note_model(model: Any, sample_rate: int, weights: str = "float32") -> Packed | None:
    """A loaded WaveNet packed for :func:`draw_packed` on the C kernel (None when it is not
    packable: not a plain note WaveNet, or no C kernel here)."""
    from waveloom.sampling import cbuild
    from waveloom.sampling.fast import FastWaveNet, unsupported_reason

    if type(model).__name__ != "WaveNet" or getattr(model, "upsample", True) is not None:
        return None
    if unsupported_reason(model) is not None or cbuild.library_name() is None:
        return None
    net = FastWaveNet(model.stack, model.head, weights=weights, backend="c").prep
    net.extra = _model_info(model, sample_rate)
    return Packed(net, _model_arrays(model))


def _model_info(model: Any, sample_rate: int) -> dict[str, Any]:
    """What drawing needs to know of a WaveNet beside its weights (JSON)."""
    from waveloom.models.plan import history_prefix
    from waveloom.nn.pitch_clock import NOTE_CLOCK_TAUS

    config = model.config
    prefix, _, _ = history_prefix(None, 1, model.context, "cpu")
    return {
        "family": "wavenet", "sample_rate": int(sample_rate), "context": int(model.context),
        "silence_code": int(prefix[0, 0]), "keys": list(model.conditioning_keys()),
        "uniforms_per_step": int(model.head.uniforms_per_step),
        "local_channels": int(model.stack.local_channels or 0),
        "clock": {"excitation": bool(config.pitch_excitation),
                  "onset_phase": config.excitation_phase == "onset",
                  "note_clock": bool(config.note_clock), "taus": list(NOTE_CLOCK_TAUS)},
    }


def _model_arrays(model: Any) -> dict[str, np.ndarray]:
    """The labels' embedding tables (``pitch_table`` [129, dim], ``instrument_table`` [I + 1,
    dim]; last row: unknown) and the head's ``decode`` table (code -> audio in [-1, 1])."""
    import torch

    arrays: dict[str, np.ndarray] = {}
    cond = model.global_cond
    for key in ("pitch", "instrument"):
        table = None if cond is None else getattr(cond, key, None)
        if table is not None:
            arrays[f"{key}_table"] = table.weight.detach().cpu().float().numpy().copy()
    with torch.no_grad():
        codes = torch.arange(int(model.head.levels), device=model.stack.out2.weight.device)
        arrays["decode"] = model.output(codes[None])[0].float().cpu().numpy().copy()
    return arrays
