"""``waveloom generate`` for a codec token LM: draw codes, decode them with the LM's codec.

The LM's config names its codec (``model.codec``, recorded from the code cache it trained on,
and its codebooks' fingerprint); the codec is looked for at that path, then beside the LM's
checkpoint and in ``waveloom/assets`` by file name, and refused when its fingerprint differs
(its codes would decode to noise). ``--prime AUDIO`` is encoded by the codec and continued;
``--seconds`` of 30 and more run window by window (:mod:`waveloom.sampling.codec_lm`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from waveloom.errors import ConfigError, DataError

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_CFG = 3.0  # MusicGen's guidance scale


def find_codec(lm: Any, checkpoint: Path, device: Any, encodes: bool = True) -> Any:
    """The codec that decodes ``lm``'s codes, loaded and checked by fingerprint; built to
    decode only (no vector-quantize-pytorch import, 1.4 s) unless it ``encodes`` a prime."""
    import contextlib

    from waveloom.app._codec_io import fingerprint
    from waveloom.models.codec import decode_only
    from waveloom.models.load import load_checkpoint

    named = Path(lm.config.codec) if lm.config.codec else None
    if named is None:
        raise ConfigError(f"{checkpoint}: this codec LM names no codec (model.codec); train it "
                          "on a cache from `waveloom encode-codes CODEC`")
    places = [named, Path(checkpoint).parent / named.name, ASSETS / named.name]
    found = next((p for p in places if p.is_file()), None)
    if found is None:
        raise ConfigError(f"{checkpoint}: its codec {named} is not at "
                          f"{', '.join(str(p) for p in places)}; put it there")
    with contextlib.nullcontext() if encodes else decode_only():
        codec, _ = load_checkpoint(found, map_location=device)
    want = lm.config.codec_fingerprint
    if want and fingerprint(codec) != want:
        raise DataError(f"{found}: codebooks {fingerprint(codec)} differ from those the LM "
                        f"was trained on ({want}); give the LM's own codec")
    return codec.eval()


def prime_codes(codec: Any, lm: Any, prime: Path | None, sample_rate: int) -> Any:
    """The prime audio's codes ``[1, K, P]`` (None without a prime)."""
    if prime is None:
        return None
    import torch

    from waveloom.audio.io import load_audio

    audio, _ = load_audio(prime, sample_rate)
    if audio.shape[-1] < codec.hop:
        raise DataError(f"--prime {prime}: {audio.shape[-1]} samples is shorter than one codec "
                        f"frame ({codec.hop} samples, {1000 * codec.hop / sample_rate:g} ms)")
    whole = audio[: audio.shape[-1] - audio.shape[-1] % codec.hop]
    return codec.encode(torch.from_numpy(whole)[None])[:, : lm.config.n_q]


def draw_codes_to_folder(source: Any, checkpoint: Path, out: Path, *, n: int, seconds: float,
                         cond: dict, prime: Path | None, top_k: int, top_p: float,
                         cfg: float | None, options: Any) -> list[Path]:
    """Draw ``n`` pieces of ``seconds`` (after the prime) and write them as WAV + spectrogram."""
    from waveloom.app.generate import write_samples
    from waveloom.sampling.codec_lm import CodeSampling, decode_codes, sample_codes

    lm = source.model
    codec = find_codec(lm, checkpoint, source.device, encodes=prime is not None)
    head = prime_codes(codec, lm, prime, codec.config.sample_rate)
    frames = max(1, int(round(seconds * lm.config.frame_rate)))
    guided = cfg if cfg is not None else (DEFAULT_CFG if lm.conditioning_keys() else 1.0)
    opts = CodeSampling(cfg=guided, temperature=options.temperature, top_k=top_k, top_p=top_p,
                        seed=options.seed, progress=options.progress)
    codes = sample_codes(lm, n, frames, cond, head, opts)
    audio = decode_codes(codec, codes).float().cpu().numpy()
    out.mkdir(parents=True, exist_ok=True)
    return write_samples(audio, out, codec.config.sample_rate, "sample")
