"""Load and save audio: any format libsndfile reads, mono float32 in [-1, 1], soxr resampling.

Every failure a user can cause (missing, empty, truncated, corrupt or unsupported file) becomes an
:class:`~waveloom.errors.AudioError` that names the file and the reason, so ``prepare`` can skip
the file, list it, and go on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
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


#: Frames :func:`stream_audio` decodes at a time (about 6 MB of float32 for 44.1 kHz stereo).
READ_BLOCK = 1 << 18
#: What libsndfile's header log says of a chunk that claims more bytes than the file holds.
_TRUNCATED = re.compile(r"^\s*(data|SSND)\s*:\s*(\d+) \(should be (\d+)\)", re.MULTILINE)


@dataclass
class StreamReport:
    """What :func:`stream_audio` noticed while decoding (filled in as blocks are read).

    ``over_full_scale``: source samples with magnitude > 1 (float files), clipped to [-1, 1];
    ``peak``: the largest magnitude in the source; ``truncated``: the header's claim when the
    file is shorter than its header says (the samples present are still served); ``frames``:
    source frames read; ``sum_squares``: of the served (resampled, clipped) samples.
    """

    over_full_scale: int = 0
    peak: float = 0.0
    truncated: str | None = None
    frames: int = 0
    served: int = 0
    sum_squares: float = 0.0

    @property
    def rms(self) -> float:
        return (self.sum_squares / self.served) ** 0.5 if self.served else 0.0


def _truncation(log: str) -> str | None:
    match = _TRUNCATED.search(log or "")
    if match is None:
        return None
    return f"truncated: its header claims {match[2]} bytes of audio, the file holds {match[3]}"


def stream_audio(path: str | Path, sr: int | None = None, *, block: int | None = None,
                 report: StreamReport | None = None) -> Iterator[np.ndarray]:
    """Decode ``path`` block by block: mono float32 [t] blocks in [-1, 1], resampled to ``sr``
    with a streaming soxr resampler (the same samples as :func:`load_audio`, which decodes
    the whole file at once), so a two-hour file needs a few MB instead of gigabytes.
    ``report`` collects peaks, clipping and truncation. Errors as :func:`load_audio`."""
    path = Path(path)
    block = READ_BLOCK if block is None else int(block)
    report = report if report is not None else StreamReport()
    _check_exists(path)
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError) as err:
        raise AudioError(f"{path}: unsupported or corrupt audio ({_reason(err)})") from None
    with f:
        if f.channels < 1:
            raise AudioError(f"{path}: has no audio channels")
        report.truncated = _truncation(f.extra_info)
        stream = (soxr.ResampleStream(f.samplerate, int(sr), 1, dtype="float32", quality="HQ")
                  if sr is not None and int(sr) != f.samplerate else None)
        while True:
            data = _read_block(path, f, block)
            last = len(data) < block
            mono = _mono_block(path, data, report)
            if stream is not None:
                mono = stream.resample_chunk(mono, last=last)
            np.clip(mono, -1.0, 1.0, out=mono)
            report.served += len(mono)
            report.sum_squares += float(np.dot(mono, mono))
            if len(mono):
                yield mono
            if last:
                break
    if report.frames == 0:
        raise AudioError(f"{path}: contains no samples (empty or truncated)")


def _read_block(path: Path, f: sf.SoundFile, block: int) -> np.ndarray:
    try:
        return f.read(block, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError) as err:
        raise AudioError(f"{path}: unsupported or corrupt audio ({_reason(err)})") from None


def _mono_block(path: Path, data: np.ndarray, report: StreamReport) -> np.ndarray:
    """[t, C] -> mono float32 [t]; NaN/inf refused, samples beyond full scale counted."""
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: contains NaN or infinite samples (corrupt file)")
    report.frames += len(data)
    if len(data):
        peak = float(np.abs(data).max())
        report.peak = max(report.peak, peak)
        if peak > 1.0:
            report.over_full_scale += int(np.count_nonzero(np.abs(data) > 1.0))
    return np.ascontiguousarray(data.mean(axis=1), dtype=np.float32)


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


#: Frames :func:`save_audio` converts and writes at a time: an hour of audio is written without
#: a second full-length copy (clipped, interleaved, int16) in memory.
WRITE_BLOCK = 1 << 18


def save_audio(path: str | Path, audio, sr: int) -> Path:
    """Write [T] or [C, T] float audio as 16-bit WAV or FLAC (by extension); returns the path.

    Written in blocks of :data:`WRITE_BLOCK` frames; a block with NaN or infinite samples
    stops the write and removes the file (no half-written audio is left behind).
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in _SAVE_FORMATS:
        raise AudioError(f"{path}: cannot write {ext or 'extension-less'} files; use .wav or .flac")
    if hasattr(audio, "detach"):  # accept a torch tensor too
        audio = audio.detach().cpu().numpy()
    audio = np.asarray(audio)
    data = audio.T if audio.ndim == 2 else audio  # a view: [T] or [T, C]
    fmt, subtype = _SAVE_FORMATS[ext]
    channels = 1 if data.ndim == 1 else data.shape[1]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with sf.SoundFile(str(path), "w", int(sr), channels, subtype, format=fmt) as f:
            for start in range(0, len(data), WRITE_BLOCK):
                f.write(_checked_block(path, data[start:start + WRITE_BLOCK]))
    except AudioError:
        _remove(path)
        raise
    except (OSError, sf.LibsndfileError, RuntimeError, ValueError) as err:
        _remove(path)
        raise AudioError(
            f"{path}: cannot write ({_reason(err)}); check the folder is writable"
        ) from None
    return path


class AudioWriter:
    """A 16-bit WAV/FLAC written block by block (:func:`open_writer`): ``write`` float blocks
    [t] or [t, C] as they come, then ``close``; ``abort`` removes the half-written file."""

    def __init__(self, path: Path, sr: int, channels: int = 1):
        ext = path.suffix.lower()
        if ext not in _SAVE_FORMATS:
            raise AudioError(f"{path}: cannot write {ext or 'extension-less'} files; "
                             "use .wav or .flac")
        fmt, subtype = _SAVE_FORMATS[ext]
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = sf.SoundFile(str(path), "w", int(sr), channels, subtype, format=fmt)
        except (OSError, sf.LibsndfileError, RuntimeError, ValueError) as err:
            raise AudioError(
                f"{path}: cannot write ({_reason(err)}); check the folder is writable"
            ) from None

    def write(self, block: np.ndarray) -> None:
        try:
            self._file.write(_checked_block(self.path, block))
        except AudioError:
            self.abort()
            raise
        except (OSError, sf.LibsndfileError, RuntimeError) as err:
            self.abort()
            raise AudioError(f"{self.path}: cannot write ({_reason(err)})") from None

    def close(self) -> None:
        self._file.close()

    def abort(self) -> None:
        self._file.close()
        _remove(self.path)


def open_writer(path: str | Path, sr: int, channels: int = 1) -> AudioWriter:
    """An :class:`AudioWriter` for ``path`` (16-bit WAV or FLAC by extension)."""
    return AudioWriter(Path(path), sr, channels)


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:  # the parent is not a folder: there is nothing to remove
        pass


def _checked_block(path: Path, block: np.ndarray) -> np.ndarray:
    """One block as float32 clipped to [-1, 1]; NaN/inf refused."""
    block = np.asarray(block, dtype=np.float32)
    if not np.isfinite(block).all():
        raise AudioError(f"{path}: refusing to write audio with NaN or infinite samples")
    return np.clip(block, -1.0, 1.0)
