"""``waveloom encode-codes CODEC --data CACHE --out CODES``: a codec's codes as a code cache.

The codec token LM (:mod:`waveloom.models.codec_lm`) trains on these. Every example of the
audio cache (labels and splits kept) is encoded by the codec in 10-s chunks through
:class:`~waveloom.models.codec.CodecStream` (equal to encoding it whole, tested, with bounded
memory), with the codebooks ``--bandwidth`` buys, and stored frame by frame with each code
tagged by its codebook (:mod:`waveloom.data.codec_codes`) at ``frame_rate x K`` values/s.
cache.json records the codec (fingerprint, n_q, codebook size, hop, frame rate), so an LM and a
decoder can refuse codes from another codec.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from waveloom.errors import ConfigError, DataError

CHUNK_SECONDS = 10.0


def encode_codec_cache(codec: Any, checkpoint: Path, cache: Any, out: Path, device: Any,
                       bandwidth: float | None, progress: bool) -> Any:
    """Write the code cache ``out`` of ``cache`` encoded by ``codec``; return its summary."""
    import torch

    from waveloom.app._codec_io import fingerprint
    from waveloom.app.codes import EncodeSummary, write_code_cache
    from waveloom.data.codec_codes import check_fits, stored_from_codes
    from waveloom.data.prepare import CACHE_VERSION, SCALE, _write_json_atomic
    from waveloom.models.codec import CodecStream
    from waveloom.nn.quantize import perplexity_of_counts

    if "codes" in cache.info:
        raise DataError(f"{cache.root}: a code cache; a codec encodes audio (give the audio "
                        "cache it was trained on)")
    cache.check_sample_rate(codec.config.sample_rate)
    k, size, hop = codec.codebooks_for(bandwidth), codec.config.codebook_size, codec.hop
    check_fits(k, size)
    if cache.sample_rate % hop:
        raise ConfigError(f"{cache.root}: {cache.sample_rate} Hz is not a multiple of the "
                          f"codec's hop {hop}")
    chunk = max(1, int(CHUNK_SECONDS * cache.sample_rate) // hop) * hop
    counts = torch.zeros(size)

    def encode_one(clip: torch.Tensor):
        stream, parts = CodecStream(codec, bandwidth), []
        for lo in range(0, clip.shape[-1], chunk):
            piece = clip[lo:lo + chunk]
            piece = torch.nn.functional.pad(piece, (0, (-piece.shape[-1]) % hop))
            parts.append(stream.encode(piece[None])[0])
        codes = torch.cat(parts, -1).cpu()
        counts.add_(torch.bincount(codes[0], minlength=size).float())
        return stored_from_codes(codes, size)

    frame_rate = cache.sample_rate // hop
    manifest, rows = write_code_cache(cache, out, encode_one, frame_rate * k, device, progress)
    ppl = float(perplexity_of_counts(counts))
    info = dict(cache.info)
    info.update(version=CACHE_VERSION, sample_rate=frame_rate * k, total_samples=rows,
                dtype="int16", scale=SCALE, n_examples=len(manifest), n_notes=0,
                source=str(cache.root.resolve()),
                codes={"codec": {"fingerprint": fingerprint(codec), "n_q": k,
                                 "codebook_size": size, "hop": hop, "frame_rate": frame_rate,
                                 "checkpoint": str(Path(checkpoint).resolve())},
                       "codebook_size": size, "hop": hop, "perplexity": ppl})
    _write_json_atomic(out / "cache.json", info)
    return EncodeSummary(out, len(manifest), rows, info["sample_rate"], size, ppl)
