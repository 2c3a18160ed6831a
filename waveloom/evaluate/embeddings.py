"""Pluggable audio embeddings for FAD (and NDB): a small registry plus a TorchScript plug.

An :class:`Embedding` maps a clip to frame vectors ``[F, D]`` (a clip-level model returns one
frame). Sets are reduced either to one vector per clip (``pool='mean'``, the mean over a clip's
frames: the statistical unit is the clip, as for generated notes) or to every frame as a sample
(``pool='frames'``, the original FAD of Kilgour et al. 2019, which fits VGGish frame
embeddings). Every report names its embedding, e.g. ``fad[crepe-tiny]``, because FADs from
different embeddings are not comparable.

Built in:

* ``crepe-tiny`` / ``crepe-full``: CREPE's penultimate layer (the sixth conv block's output after
  ReLU, BatchNorm and max-pooling, flattened: 256-d / 2048-d), one frame every ``hop`` (50 ms by
  default) over 64 ms windows; frames quieter than -60 dBFS are dropped (CREPE normalises every
  frame, so near-silence would come out as amplified noise). CREPE was trained for pitch, so this
  space is most sensitive to pitch and periodicity, less to timbre.
* ``waveloom-classifier``: the penultimate layer of the instrument-family + pitch classifier
  trained by ``waveloom train-classifier`` (pass its file with ``--classifier``), one vector per
  clip; it captures timbre (family) as well as pitch.
* any TorchScript file (``torchscript:PATH``, or a path ending in .pt/.pth/.ts/.jit/.torchscript),
  e.g. a VGGish or CLAP export: the module takes float32 audio ``[1, T]`` in [-1, 1] at its
  ``sample_rate`` attribute (an ``int`` attribute of the scripted module; 16000 when absent) and
  returns ``[1, D]`` or ``[1, F, D]``. TorchScript runs the file's own graph: load only files you
  trust.

:func:`register_embedding` adds more names.

Embeddings of reference sets are cached on disk (``--stats-cache``, default
``$WAVELOOM_CACHE_DIR`` or ``~/.cache/waveloom/stats``) keyed by the embedding's settings and
the set's fingerprint (file list, sizes, modification times): recomputing CREPE-full over
thousands of references takes minutes, while loading takes milliseconds.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from waveloom.errors import ConfigError
from waveloom.evaluate.embedding_base import Embedding

__all__ = ["Embedding", "CrepeEmbedding", "TorchScriptEmbedding", "embed_set", "embed_set_frames",
           "pool_frames", "get_embedding",
           "register_embedding", "embedding_names", "default_cache_dir"]

POOLS = ("mean", "frames")
_SCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".jit", ".torchscript")


class CrepeEmbedding(Embedding):
    """CREPE's penultimate layer per frame (see the module docstring)."""

    def __init__(self, capacity: str = "tiny", *, hop_seconds: float = 0.05,
                 device: str = "cpu"):
        from waveloom.audio.crepe import EMBED_DIM, SAMPLE_RATE, load_crepe

        self.model = load_crepe(capacity, str(device))
        self.name = f"crepe-{capacity}"
        self.sample_rate = SAMPLE_RATE
        self.hop_seconds = hop_seconds
        self.layer = (f"conv6 block output (ReLU, BatchNorm, max-pool), flattened "
                      f"{EMBED_DIM[capacity]}-d; 64 ms frames every {hop_seconds * 1000:g} ms, "
                      "frames below -60 dBFS dropped")

    def key(self) -> str:
        return f"{self.name}:hop={self.hop_seconds}"

    def frames(self, audio: np.ndarray) -> np.ndarray:
        from waveloom.audio.crepe import SILENCE_DB, activations, frame_audio

        frames, rms_db = frame_audio(audio, self.sample_rate, self.hop_seconds)
        loud = rms_db > SILENCE_DB
        # An all-silent clip keeps its frames: dropping it would hide a silent generator.
        emb, _ = activations(self.model, frames[loud] if bool(loud.any()) else frames)
        return emb.numpy()


class TorchScriptEmbedding(Embedding):
    """A user's TorchScript model: ``[1, T]`` audio -> ``[1, D]`` or ``[1, F, D]``."""

    def __init__(self, path: str | Path, *, device: str = "cpu"):
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: embedding model not found")
        try:
            with warnings.catch_warnings():  # TorchScript is deprecated upstream, not broken
                warnings.simplefilter("ignore", DeprecationWarning)
                self.module = torch.jit.load(str(path), map_location=device).eval()
        except (RuntimeError, ValueError) as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else "unreadable"
            raise ConfigError(f"{path}: not a TorchScript file ({reason}); export the model "
                              "with torch.jit.script or torch.jit.trace and save it") from None
        self.device = device
        self.name = f"torchscript:{path.stem}"
        self.sample_rate = int(getattr(self.module, "sample_rate", 16000))
        self.layer = f"output of TorchScript module {path.name}"
        self._digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]

    def key(self) -> str:
        return f"{self.name}:{self._digest}:sr={self.sample_rate}"

    @torch.no_grad()
    def frames(self, audio: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None].to(self.device)
        out = self.module(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        out = out.detach().float().cpu()
        if out.ndim == 3:
            out = out[0]
        return out.reshape(-1, out.shape[-1]).numpy()


_REGISTRY: dict[str, Callable[..., Embedding]] = {
    "crepe-tiny": lambda device="cpu", **kw: CrepeEmbedding("tiny", device=device, **kw),
    "crepe-full": lambda device="cpu", **kw: CrepeEmbedding("full", device=device, **kw),
}


def register_embedding(name: str, factory: Callable[..., Embedding]) -> None:
    """Make ``name`` usable in ``--embeddings``; ``factory(device=..., **options)``."""
    _REGISTRY[name] = factory


def embedding_names() -> list[str]:
    return [*sorted(_REGISTRY), "waveloom-classifier", "torchscript:PATH"]


def get_embedding(spec: str, *, device: str = "cpu", classifier: str | Path | None = None,
                  **options) -> Embedding:
    """The embedding named ``spec`` (a registry name, ``waveloom-classifier`` or a file)."""
    if spec in _REGISTRY:
        return _REGISTRY[spec](device=str(device), **options)
    if spec == "waveloom-classifier" or spec.endswith(".safetensors"):
        from waveloom.evaluate.classifier import ClassifierEmbedding

        path = spec if spec.endswith(".safetensors") else classifier
        if path is None:
            raise ConfigError("embedding waveloom-classifier needs --classifier FILE "
                              "(train one with `waveloom train-classifier CACHE --out FILE`)")
        return ClassifierEmbedding(path, device=str(device))
    if spec.startswith("torchscript:") or Path(spec).suffix.lower() in _SCRIPT_SUFFIXES:
        return TorchScriptEmbedding(spec.removeprefix("torchscript:"), device=str(device))
    raise ConfigError(f"unknown embedding {spec!r}; available: {', '.join(embedding_names())}")


def default_cache_dir() -> Path:
    env = os.environ.get("WAVELOOM_CACHE_DIR")
    if env:
        return Path(env) / "stats"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "waveloom" / "stats"


def embed_set(
    embedding: Embedding,
    audio_set,
    *,
    pool: str = "mean",
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Embeddings of every clip of ``audio_set``: ``[N, D]`` (``pool='mean'``) or all frames.

    With ``cache_dir``, the result is stored as ``<embedding>-<pool>-<hash>.npz`` (keyed by
    :meth:`Embedding.key` and the set's fingerprint) and read back on the next call.
    """
    if pool not in POOLS:
        raise ConfigError(f"--fad-pool {pool!r}: choose one of {', '.join(POOLS)}")
    path = _cache_file(embedding, audio_set, pool, cache_dir)
    cached = _read_cached(path, "embeddings")
    if cached is not None:
        return cached[0]
    rows = []
    bar = tqdm(total=len(audio_set), desc=f"embed[{embedding.name}]", unit="clip",
               disable=not progress)
    for clip in audio_set.clips():
        frames = embedding.embed_clip(clip, audio_set.sample_rate)
        rows.append(frames.mean(axis=0, keepdims=True) if pool == "mean" else frames)
        bar.update(1)
    bar.close()
    out = np.concatenate(rows, axis=0)
    if path is not None:
        # The embeddings themselves are stored (NDB clusters them); mean and covariance, the
        # statistics FAD needs, are stored beside them for other tools.
        extra = {}
        if out.shape[0] >= 2:
            from waveloom.evaluate.fad import gaussian_stats

            stats = gaussian_stats(out)
            extra = {"mu": stats.mu, "sigma": stats.sigma}
        _write_cached(path, embedding, audio_set, embeddings=out, n=out.shape[0], **extra)
    return out


def embed_set_frames(
    embedding: Embedding,
    audio_set,
    *,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Every frame of every clip, ``[F, D]``, and the frames per clip ``[N]`` (int).

    One pass serves every pooling: :func:`pool_frames` gives the per-clip means (``pool='mean'``,
    identical to :func:`embed_set`'s) or all frames, and FAD-inf resamples the frames. Cached
    like :func:`embed_set` (as ``<embedding>-clips-<hash>.npz``, with the counts).
    """
    path = _cache_file(embedding, audio_set, "clips", cache_dir)
    cached = _read_cached(path, "embeddings", "counts")
    if cached is not None:
        return cached[0], cached[1]
    rows = []
    bar = tqdm(total=len(audio_set), desc=f"embed[{embedding.name}]", unit="clip",
               disable=not progress)
    for clip in audio_set.clips():
        rows.append(embedding.embed_clip(clip, audio_set.sample_rate))
        bar.update(1)
    bar.close()
    frames = np.concatenate(rows, axis=0)
    counts = np.array([len(r) for r in rows], dtype=np.int64)
    if path is not None:
        _write_cached(path, embedding, audio_set, embeddings=frames, counts=counts)
    return frames, counts


def _cache_file(embedding: Embedding, audio_set, tag: str,
                cache_dir: str | Path | None) -> Path | None:
    """``<cache_dir>/<embedding>-<tag>-<hash>.npz`` for this embedding and set, or None."""
    if cache_dir is None:
        return None
    key = hashlib.sha256(f"{embedding.key()}|{tag}|{audio_set.fingerprint}".encode())
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in embedding.name)
    return Path(cache_dir) / f"{safe}-{tag}-{key.hexdigest()[:24]}.npz"


def _read_cached(path: Path | None, *names: str) -> tuple[np.ndarray, ...] | None:
    """The arrays ``names`` of a cache file, or None when there is none (a damaged file is
    recomputed and overwritten, so it reads as none)."""
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path) as data:
            return tuple(data[name] for name in names)
    except (OSError, ValueError, KeyError):
        return None


def _write_cached(path: Path, embedding: Embedding, audio_set, **arrays: Any) -> None:
    """Write ``arrays`` (with the embedding key and set fingerprint) to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, key=embedding.key(), fingerprint=audio_set.fingerprint, **arrays)
    os.replace(tmp, path)


def pool_frames(frames: np.ndarray, counts: np.ndarray, pool: str) -> np.ndarray:
    """``[N, D]`` per-clip means (``'mean'``) or the frames themselves (``'frames'``)."""
    if pool not in POOLS:
        raise ConfigError(f"--fad-pool {pool!r}: choose one of {', '.join(POOLS)}")
    if pool == "frames":
        return frames
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.stack([frames[s : s + c].mean(axis=0) for s, c in zip(starts, counts)])
