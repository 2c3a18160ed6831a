"""Load and save audio: any format libsndfile reads, mono float32 in [-1, 1], soxr resampling.

Every failure a user can cause (missing, empty, truncated, corrupt or unsupported file) becomes an
:class:`~waveloom.errors.AudioError` that names the file and the reason, so ``prepare`` can skip
the file, list it, and go on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from waveloom.errors import AudioError

#: Extensions ``prepare`` picks up in a folder (everything libsndfile decodes that we test).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".aifc")

#: Formats :func:`save_audio` writes, by extension.
_SAVE_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16")}


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says, read without decoding the samples."""

    path: Path
    sample_rate: int
    frames: int
    channels: int
    format: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")


def _reason(err: Exception) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    # libsndfile prefixes messages with the path; keep only its reason.
    reason = text.split(": ", 1)[-1] if text.startswith("Error opening") else text
    if reason.startswith("File does not exist"):
        # What libsndfile's MPEG probe says about any non-MPEG data in an existing *.mp3 file.
        return "not a recognised audio format"
    return reason


def audio_info(path: str | Path) -> AudioInfo:
    """Header information of ``path`` (raises AudioError for unreadable files)."""
    path = Path(path)
    _check_exists(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise AudioError(f"{path}: unsupported or corrupt audio ({_reason(err)})") from None
    if info.channels < 1:
        raise AudioError(f"{path}: has no audio channels")
    return AudioInfo(path, int(info.samplerate), int(info.frames), int(info.channels), info.format)


def load_audio(
    path: str | Path, sr: int | None = None, *, mono: bool = True
) -> tuple[np.ndarray, int]:
    """Read ``path`` as float32 in [-1, 1], mixed to mono, resampled to ``sr`` if given.

    Returns ``(audio, sample_rate)``: audio is [T] when ``mono`` else [C, T]. Non-finite samples
    (NaN/inf) are an error rather than silently zeroed, because they signal a broken file.
    """
    path = Path(path)
    _check_exists(path)
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError) as err:
        raise AudioError(f"{path}: unsupported or corrupt audio ({_reason(err)})") from None
    except MemoryError:
        raise AudioError(f"{path}: too large to decode in memory") from None
    if data.shape[1] == 0:
        raise AudioError(f"{path}: has no audio channels")
    if data.shape[0] == 0:
        raise AudioError(f"{path}: contains no samples (empty or truncated)")
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: contains NaN or infinite samples (corrupt file)")
    audio = data.mean(axis=1) if mono else data.T
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if sr is not None and int(sr) != int(file_sr):
        audio = resample(audio, int(file_sr), int(sr))
        file_sr = int(sr)
    np.clip(audio, -1.0, 1.0, out=audio)
    return audio, int(file_sr)


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """High-quality resampling with soxr; works on [T] or [C, T] float arrays."""
    if sr_in <= 0 or sr_out <= 0:
        raise AudioError(f"cannot resample from {sr_in} Hz to {sr_out} Hz")
    if sr_in == sr_out:
        return np.asarray(audio, dtype=np.float32)
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        return soxr.resample(audio, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)
    out = soxr.resample(audio.T, sr_in, sr_out, quality="HQ")
    return np.ascontiguousarray(out.T, dtype=np.float32)


def save_audio(path: str | Path, audio, sr: int) -> Path:
    """Write [T] or [C, T] float audio as 16-bit WAV or FLAC (by extension); returns the path."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in _SAVE_FORMATS:
        raise AudioError(f"{path}: cannot write {ext or 'extension-less'} files; use .wav or .flac")
    if hasattr(audio, "detach"):  # accept a torch tensor too
        audio = audio.detach().cpu().numpy()
    audio = np.asarray(audio, dtype=np.float32)
    if not np.isfinite(audio).all():
        raise AudioError(f"{path}: refusing to write audio with NaN or infinite samples")
    data = np.clip(audio.T if audio.ndim == 2 else audio, -1.0, 1.0)
    fmt, subtype = _SAVE_FORMATS[ext]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), data, int(sr), format=fmt, subtype=subtype)
    except (OSError, sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(
            f"{path}: cannot write ({_reason(err)}); check the folder is writable"
        ) from None
    return path
