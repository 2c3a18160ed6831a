"""Top-down sampling of a hierarchy: code prior -> ADA level decoders -> waveform.

A *hierarchy* is a small JSON manifest naming checkpoints (paths relative to the manifest)::

    {"format": "waveloom-hierarchy", "version": 1,
     "prior": "prior/model.safetensors",
     "levels": ["level2/model.safetensors", "level1/model.safetensors"]}

``levels`` run top-down: the first reads the prior's codes, the last outputs audio. Each
checkpoint is an ordinary one (loaded without unpickling); the manifest only strings them
together, so a level can be retrained and swapped in. :func:`write_manifest` checks that the
codebooks and rates line up.

A :class:`Hierarchy` holds built models (the prior and its levels); :func:`load_hierarchy`
builds them from a manifest through :mod:`waveloom.models.load`. Sampling runs every stage on
the sampling engines (:mod:`waveloom.sampling.autoregressive`: the fast compiled kernel on a
CPU, CUDA graphs on a GPU), one progress bar per stage. Stage ``i`` (0 = prior) is drawn with
``seed + i``, so a hierarchy's sample equals drawing the prior and decoding level by level by
hand with those seeds.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from waveloom.config import SamplingOptions
from waveloom.errors import CheckpointError, ConfigError
from waveloom.sampling.autoregressive import decode_steps, sample_tokens

FORMAT = "waveloom-hierarchy"
VERSION = 1


@dataclass
class Hierarchy:
    """A prior and its levels (top-down), loaded and checked."""

    prior: Any  # CodePrior
    levels: list[Any]  # ADA, top-down; levels[-1] reads audio
    sample_rate: int
    path: Path | None = None
    instruments: list[str] = field(default_factory=list)  # the prior's label names

    @property
    def total_hop(self) -> int:
        """Audio samples per top-level code."""
        return math.prod(level.hop for level in self.levels)

    def conditioning_keys(self) -> tuple[str, ...]:
        return self.prior.conditioning_keys()

    @torch.no_grad()
    def generate(self, n: int, length: int, cond: dict[str, Any] | None = None,
                 options: SamplingOptions | None = None, return_codes: bool = False
                 ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """``n`` waveforms [n, length] in [-1, 1], drawn top-down as ``options`` says.

        The prior draws ``ceil(length / total_hop)`` codes; each level decodes them into
        ``hop`` times as many codes of the level below (the last level: audio, cropped to
        ``length``). ``cond`` holds the prior's labels (e.g. 'instrument'). Stage ``i`` uses
        seed ``options.seed + i`` (0 + i for a None seed). With ``return_codes`` also returns
        every stage's codes, top first.
        """
        options = options or SamplingOptions()
        if n <= 0 or length <= 0:
            raise ConfigError(f"n={n} and length={length} must be positive")
        base = 0 if options.seed is None else int(options.seed)
        frames = -(-int(length) // self.total_hop)
        stages = len(self.levels) + 1
        self._announce(options.progress, 1, stages, f"prior: {frames} codes")
        codes = sample_tokens(self.prior, n, frames, cond, replace(options, seed=base))
        trace = [codes]
        for i, level in enumerate(self.levels, start=1):
            last = i == len(self.levels)
            steps = length if last else codes.shape[-1] * level.hop
            what = "audio samples" if last else "codes"
            self._announce(options.progress, i + 1, stages, f"level {len(self.levels) - i + 1} "
                           f"(hop {level.hop}): {steps} {what}")
            codes = decode_steps(level, codes, steps, replace(options, seed=base + i))
            trace.append(codes)
        audio = self.levels[-1].decoded(codes)
        return (audio, trace) if return_codes else audio

    @staticmethod
    def _announce(progress: bool, i: int, total: int, text: str) -> None:
        if progress:
            print(f"[{i}/{total}] {text}", file=sys.stderr, flush=True)


def _resolve(base: Path, entry: Any, what: str) -> Path:
    if not isinstance(entry, str) or not entry:
        raise CheckpointError(f"{base}: '{what}' must be a checkpoint path")
    path = Path(entry)
    return path if path.is_absolute() else base.parent / path


def check_levels(prior: Any, levels: list[Any], where: str = "hierarchy") -> None:
    """Raise a one-line :class:`ConfigError` unless the codebooks and inputs line up."""
    from waveloom.models.ada import ADA
    from waveloom.models.code_prior import CodePrior

    if not isinstance(prior, CodePrior):
        raise ConfigError(f"{where}: the prior is a {type(prior).__name__}, not a code_prior")
    if not levels:
        raise ConfigError(f"{where}: needs at least one ADA level")
    for i, level in enumerate(levels):
        if not isinstance(level, ADA):
            raise ConfigError(f"{where}: level {i} is a {type(level).__name__}, not an ada")
    if prior.codebook_size != levels[0].codebook_size:
        raise ConfigError(f"{where}: the prior models {prior.codebook_size} codes but the top "
                          f"level has {levels[0].codebook_size}")
    for upper, lower in zip(levels[:-1], levels[1:]):
        if upper.config.input != "codes" or upper.config.input_codebook != lower.codebook_size:
            raise ConfigError(
                f"{where}: a level above one with {lower.codebook_size} codes must read "
                f"codes (model.input=codes, model.input_codebook={lower.codebook_size})")
    if levels[-1].config.input != "audio":
        raise ConfigError(f"{where}: the last level must read audio (model.input=audio)")


def load_hierarchy(path: str | Path, map_location: str | torch.device = "cpu") -> Hierarchy:
    """Read a manifest and load its checkpoints (one-line errors on any mismatch)."""
    from waveloom.models.load import load_checkpoint, read_extra

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: hierarchy manifest not found")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        reason = str(err).splitlines()[0]
        raise CheckpointError(f"{path}: not a hierarchy manifest ({reason})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a waveloom hierarchy manifest (make one with "
                              "`waveloom hierarchy --prior P --levels TOP ... BOTTOM`)")
    if data.get("version") != VERSION:
        raise CheckpointError(f"{path}: hierarchy version {data.get('version')}, this waveloom "
                              f"reads version {VERSION}")
    levels_in = data.get("levels")
    if not isinstance(levels_in, list) or not levels_in:
        raise CheckpointError(f"{path}: 'levels' must list the level checkpoints, top first")
    prior_path = _resolve(path, data.get("prior"), "prior")
    prior, _ = load_checkpoint(prior_path, map_location, expect_family="code_prior")
    levels, runs = [], []
    for i, entry in enumerate(levels_in):
        level, run = load_checkpoint(_resolve(path, entry, f"levels[{i}]"), map_location,
                                     expect_family="ada")
        levels.append(level)
        runs.append(run)
    check_levels(prior, levels, str(path))
    names = list(read_extra(prior_path).get("instruments", []))
    return Hierarchy(prior, levels, runs[-1].data.sample_rate, path, names)


def write_manifest(out: str | Path, prior: str | Path, levels: list[str | Path]) -> Path:
    """Write a manifest naming ``prior`` and ``levels`` (top-down), after loading them once to
    check they fit together. Paths are stored relative to the manifest's folder."""
    import os

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def rel(p: str | Path) -> str:
        return os.path.relpath(Path(p).resolve(), out.parent.resolve())

    data = {"format": FORMAT, "version": VERSION, "prior": rel(prior),
            "levels": [rel(p) for p in levels]}
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    try:
        load_hierarchy(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out)
    return out


def is_manifest(path: str | Path) -> bool:
    """True for a ``.json`` file (what ``waveloom generate`` treats as a hierarchy)."""
    return Path(path).suffix.lower() == ".json"
