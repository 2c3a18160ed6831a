"""Copy a run's model.safetensors into waveloom/assets/ with its training recipe in the metadata.

A shipped checkpoint must say how it was made (``extra.training``: data, command, steps, time,
loss) and what it can be asked for (``extra.instruments`` / ``extra.domains``), and stay under
20 MB. This writes ``OUT`` with the run's tensors and metadata, ``extra.training`` set to
``--training`` and ``extra.instruments`` to ``--instruments`` (comma-separated) when given
(``--domains``: a translator's domain names, from the cache's instruments) and
``extra.sampling.temperature`` to ``--temperature`` (the temperature it was measured at, which
verbs then use by default; a diffusion model's ``--steps`` and ``--sampler`` likewise), then
reads it back
through the loader every user goes through.

    python scripts/ship_checkpoint.py runs/ddsp-flute/model.safetensors \\
        waveloom/assets/ddsp-flute.safetensors --instruments flute --training "..."
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

from waveloom.app.common import RECOMMENDABLE, sampling_fields
from waveloom.errors import CheckpointError

LIMIT = 20 * 1000 * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_model", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--training", required=True, help="the recipe, in words and commands")
    p.add_argument("--instruments", help="comma-separated vocabulary (extra.instruments)")
    p.add_argument("--no-instruments", action="store_true",
                   help="drop the training cache's instrument names (a vocoder takes none)")
    p.add_argument("--domains", action="store_true",
                   help="a translator: write its domain names (the training cache's "
                        "instruments) as extra.domains")
    p.add_argument("--temperature", type=float, default=None,
                   help="the sampling temperature the model was measured at, recorded as "
                        "extra.sampling.temperature: verbs use it when --temperature is not "
                        "given (and say so)")
    p.add_argument("--steps", type=int, default=None,
                   help="a diffusion model's denoising steps it was measured at "
                        "(extra.sampling.steps; verbs use it when --steps is not given)")
    p.add_argument("--sampler", default=None,
                   help="a diffusion model's sampler it was measured with "
                        "(extra.sampling.sampler)")
    args = p.parse_args()
    with safe_open(str(args.run_model), framework="pt") as f:
        meta = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    extra = json.loads(meta.get("extra", "{}"))
    extra["training"] = args.training
    if args.instruments:
        extra["instruments"] = args.instruments.split(",")
    if args.domains:
        if not extra.get("instruments"):
            raise SystemExit(f"{args.run_model}: no instrument names to turn into domains")
        extra["domains"] = list(extra["instruments"])
    asked = {key: getattr(args, key) for key in RECOMMENDABLE if getattr(args, key) is not None}
    if asked:
        extra["sampling"] = {**(extra.get("sampling") or {}), **asked}
        try:  # refused before anything is written, with the rules the verbs read it by
            sampling_fields(extra["sampling"], str(args.out))
        except CheckpointError as e:
            raise SystemExit(str(e)) from None
    if args.no_instruments:
        extra.pop("instruments", None)
    meta["extra"] = json.dumps(extra)
    save_file(tensors, str(args.out), metadata=meta)
    os.chmod(args.out, 0o644)
    size = args.out.stat().st_size
    if size > LIMIT:
        raise SystemExit(f"{args.out}: {size / 1e6:.1f} MB is over the 20 MB limit for assets")
    from waveloom.models.load import load_checkpoint

    model, run = load_checkpoint(args.out, map_location="cpu")
    n = sum(p.numel() for p in model.parameters())
    print(f"{args.out}: {size / 1e6:.1f} MB, {run.family}, {n:,} parameters, step "
          f"{extra.get('step')}, instruments {extra.get('instruments')}")


if __name__ == "__main__":
    main()
