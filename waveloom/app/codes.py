"""``waveloom encode-codes`` and ``waveloom hierarchy``: building hierarchies of ADA levels.

encode-codes: a trained ADA level turns a cache into the next level's cache. Every example of
the input cache (all splits, labels kept) is encoded whole by the level's encoder and
bottleneck; the codes are written as a new cache in the layout of :mod:`waveloom.data.prepare`
whose "samples" are ``code + 1`` (0 = no code, see :mod:`waveloom.models.codes`) at the code
rate ``sample_rate / hop``. The next level, or the prior, then trains on it with
``waveloom train ... --data CODES``.

Long examples are encoded in chunks with a margin of the encoder's reach on each side, so the
codes equal those of encoding the whole example at once while memory stays bounded.

hierarchy: a manifest (:func:`waveloom.sampling.hierarchy.write_manifest`) stringing a code
prior and its levels together, which ``waveloom generate`` samples top-down.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from waveloom.app.common import add_device_arg, add_quiet_arg
from waveloom.errors import ConfigError, DataError
from waveloom.shipped import checkpoint_path

if TYPE_CHECKING:
    import torch


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    ec = subparsers.add_parser("encode-codes", help="encode a cache with an ADA level into a "
                               "code cache (the next level's or the prior's training data)")
    ec.add_argument("checkpoint", type=checkpoint_path,
                    help="model.safetensors of an 'ada' level or a "
                    "'codec' (its codes for the codec LM)")
    ec.add_argument("--bandwidth", type=float, default=None,
                    help="codec only: kbps, i.e. how many codebooks (default: all)")
    ec.add_argument("--data", type=Path, required=True, help="the cache the level was trained on")
    ec.add_argument("--out", type=Path, required=True, help="folder of the code cache")
    add_device_arg(ec, default="cpu")
    add_quiet_arg(ec)
    ec.set_defaults(run=run)
    hi = subparsers.add_parser("hierarchy", help="write a manifest stringing a code prior and "
                               "ADA levels together (then: waveloom generate H.json)")
    hi.add_argument("--prior", type=Path, required=True, help="model.safetensors of a "
                    "'code_prior' run")
    hi.add_argument("--levels", type=Path, nargs="+", required=True,
                    help="'ada' checkpoints, top level first, the waveform level last")
    hi.add_argument("--out", type=Path, required=True, help="manifest to write (.json)")
    hi.set_defaults(run=run)


def run(args: argparse.Namespace) -> int | None:
    if args.verb == "hierarchy":
        from waveloom.sampling.hierarchy import write_manifest

        print(write_manifest(args.out, args.prior, args.levels))
        return 0
    print(encode_cache(args.checkpoint, args.data, args.out, device=args.device,
                       progress=not args.quiet, bandwidth=args.bandwidth))
    return 0


@dataclass
class EncodeSummary:
    out: Path
    n_examples: int
    n_codes: int
    code_rate: int
    codebook_size: int
    perplexity: float

    def __str__(self) -> str:
        return (f"encoded {self.n_examples} examples into {self.n_codes} codes "
                f"({self.code_rate} codes/s, K={self.codebook_size}, perplexity "
                f"{self.perplexity:.1f}) in {self.out}")


def encode_example(level: Any, x: torch.Tensor, chunk: int = 1 << 18) -> torch.Tensor:
    """The codes [ceil(T / hop)] of one example ``x`` [T] (audio, or codes for a code level),
    encoded in chunks of ``chunk`` steps (rounded to the hop) with the encoder's reach of
    margin, which gives the codes of one whole-example pass."""
    import torch

    hop = level.hop
    total = x.shape[-1]
    frames = -(-total // hop)
    chunk = max(hop, (chunk // hop) * hop)
    margin = -(-level.encoder.reach // hop) * hop + hop  # + one frame of slack
    with torch.no_grad():
        if total <= chunk + 2 * margin:
            return level.encode(x[None])[0]
        out = []
        for start in range(0, frames * hop, chunk):
            lo, hi = max(0, start - margin), min(total, start + chunk + margin)
            codes = level.encode(x[None, lo:hi])[0]
            first = (start - lo) // hop
            n = min(chunk, frames * hop - start) // hop
            out.append(codes[first:first + n])
        return torch.cat(out)[:frames]


def encode_cache(
    checkpoint: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    device: str = "cpu",
    progress: bool = True,
    bandwidth: float | None = None,
) -> EncodeSummary:
    """Encode every example of the cache ``data`` with the ADA level (or codec: see
    :mod:`waveloom.app._codec_codes`) ``checkpoint`` into a code cache at ``out``."""
    from waveloom.data.prepare import CACHE_VERSION, SCALE, _write_json_atomic
    from waveloom.device import pick_device
    from waveloom.nn.quantize import perplexity_of_counts

    dev = pick_device(device)
    level, cache = _open_level_and_cache(checkpoint, data, dev, bandwidth)
    out = Path(out)
    if out.resolve() == cache.root.resolve():
        raise ConfigError("--out must differ from --data")
    out.mkdir(parents=True, exist_ok=True)
    (out / "cache.json").unlink(missing_ok=True)
    if not hasattr(level, "codes_in"):  # a codec
        from waveloom.app._codec_codes import encode_codec_cache

        return encode_codec_cache(level, Path(checkpoint), cache, out, dev, bandwidth, progress)
    manifest, rows, counts = _encode_examples(level, cache, out, dev, progress)
    ppl = float(perplexity_of_counts(counts)) if counts.sum() else 0.0
    info = dict(cache.info)
    info.update(
        version=CACHE_VERSION, sample_rate=cache.sample_rate // level.hop,
        total_samples=rows, dtype="int16", scale=SCALE, n_examples=len(manifest),
        n_notes=0, source=str(cache.root.resolve()),
        codes={"codebook_size": level.codebook_size, "hop": level.hop,
               "checkpoint": str(Path(checkpoint).resolve()), "perplexity": ppl,
               "below": cache.info.get("codes")},
    )
    _write_json_atomic(out / "cache.json", info)
    return EncodeSummary(out, len(manifest), rows, info["sample_rate"],
                         level.codebook_size, ppl)


def _open_level_and_cache(checkpoint: str | Path, data: str | Path,
                          device: torch.device, bandwidth: float | None = None
                          ) -> tuple[Any, Any]:
    """The ADA level (or codec) and the cache it encodes, checked to fit each other (rate,
    input kind; a codec's own checks are in :mod:`waveloom.app._codec_codes`)."""
    from waveloom.data.cache import AudioCache
    from waveloom.models.ada import ADA
    from waveloom.models.codec import Codec
    from waveloom.models.load import load_checkpoint

    level, run = load_checkpoint(checkpoint, map_location=device)
    if isinstance(level, Codec):
        return level.eval(), AudioCache(data)
    if not isinstance(level, ADA):
        raise ConfigError(f"{checkpoint}: a {run.family!r} checkpoint; encode-codes needs an "
                          "'ada' level or a 'codec'")
    if bandwidth is not None:
        raise ConfigError("--bandwidth is for a codec; an ADA level has one codebook")
    cache = AudioCache(data)
    cache.check_sample_rate(run.data.sample_rate)
    if cache.sample_rate % level.hop:
        raise DataError(f"{cache.root}: {cache.sample_rate} steps/s is not a multiple of the "
                        f"level's hop {level.hop}; the code rate would not be an integer")
    is_codes = "codes" in cache.info
    if is_codes != level.codes_in:
        want = "a code cache" if level.codes_in else "an audio cache"
        raise DataError(f"{cache.root}: this level reads {want} (model.input="
                        f"{level.config.input})")
    return level, cache


def _encode_examples(level: Any, cache: Any, out: Path, device: torch.device,
                     progress: bool) -> tuple[list[dict], int, torch.Tensor]:
    """Write ``out``'s code cache from an ADA level; return the manifest, the total codes and
    the usage count of each code (for the perplexity)."""
    import torch

    from waveloom.models.codes import tokens_from_samples

    counts = torch.zeros(level.codebook_size)

    def encode_one(clip: torch.Tensor):
        x = (tokens_from_samples(clip[None], level.config.input_codebook)[0]
             if level.codes_in else clip)
        codes = encode_example(level, x).cpu()
        counts.add_(torch.bincount(codes, minlength=level.codebook_size).float())
        return (codes + 1).numpy().astype("<i2")

    manifest, rows = write_code_cache(cache, out, encode_one, cache.sample_rate // level.hop,
                                      device, progress)
    return manifest, rows, counts


def write_code_cache(cache: Any, out: Path, encode_one: Any, rate: int, device: Any,
                     progress: bool) -> tuple[list[dict], int]:
    """Write ``out``'s audio.npy (``encode_one(clip)`` of every example, int16), an empty
    notes.npy and manifest.jsonl (labels kept, offsets and rate the codes'); return the
    manifest and the total stored values. A failure leaves no half-written audio.npy."""
    import json
    import os

    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from waveloom.data.prepare import NpyStreamWriter

    writer = NpyStreamWriter(out / "audio.npy.partial", "<i2")
    manifest = []
    try:
        for i in tqdm(range(len(cache)), disable=not progress, unit="example",
                      desc="encoding"):
            stored = encode_one(torch.from_numpy(cache.clip(i)).to(device))
            entry = dict(cache.entries[i])
            entry.update(offset=writer.rows, length=int(stored.size), sample_rate=rate,
                         notes_offset=0, notes_count=0)
            writer.append(stored)
            manifest.append(entry)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    np.save(out / "notes.npy", np.zeros((0, 5), np.int64))
    os.replace(out / "audio.npy.partial", out / "audio.npy")
    with open(out / "manifest.jsonl", "w") as f:
        for entry in manifest:
            f.write(json.dumps(entry) + "\n")
    return manifest, writer.rows
