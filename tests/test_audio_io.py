"""waveloom.audio.io: every format libsndfile writes here, mono/float/resampling, and an
AudioError naming the file (one line) for every way a file can be broken."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waveloom.audio.io import AUDIO_EXTENSIONS, audio_info, load_audio, save_audio
from waveloom.errors import AudioError

SR = 44100


def sine(f_hz: float, n: int, sr: int, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * f_hz * np.arange(n) / sr)).astype(np.float32)


def peak_hz(x: np.ndarray, sr: int) -> float:
    """Frequency of the largest FFT bin, refined by parabolic interpolation of log magnitudes."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    k = int(np.argmax(spec[1:-1])) + 1
    a, b, c = np.log(spec[k - 1 : k + 2] + 1e-20)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / len(x)


def writable(fmt: str, subtype: str, sr: int) -> bool:
    """Whether this libsndfile can write ``fmt/subtype`` (mp3 needs libsndfile >= 1.1)."""
    if fmt not in sf.available_formats():
        return False
    try:
        sf.write(io.BytesIO(), np.zeros(64, np.float32), sr, format=fmt, subtype=subtype)
    except (sf.LibsndfileError, TypeError, ValueError, RuntimeError):
        return False
    return True


def assert_audio_error(path: Path, match: str | None = None, **kwargs) -> str:
    with pytest.raises(AudioError) as info:
        load_audio(path, **kwargs)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg, msg
    if match:
        assert match in msg, msg
    return msg


# (extension, format, subtype, sample rate, lossy)
FORMATS = [
    ("wav", "WAV", "PCM_16", SR, False),
    ("flac", "FLAC", "PCM_24", SR, False),
    ("aiff", "AIFF", "PCM_16", SR, False),
    ("ogg", "OGG", "VORBIS", SR, True),
    ("opus", "OGG", "OPUS", 48000, True),  # Opus allows only 8/12/16/24/48 kHz
    ("mp3", "MP3", "MPEG_LAYER_III", SR, True),
]


@pytest.mark.parametrize("ext,fmt,subtype,sr,lossy", FORMATS, ids=[f[0] for f in FORMATS])
def test_load_each_format(tmp_path, ext, fmt, subtype, sr, lossy):
    if not writable(fmt, subtype, sr):
        pytest.skip(f"this libsndfile ({sf.__libsndfile_version__}) cannot write {fmt}/{subtype}")
    assert f".{ext}" in AUDIO_EXTENSIONS
    x = sine(440.0, sr // 2, sr)
    path = tmp_path / f"tone.{ext}"
    sf.write(path, x, sr, format=fmt, subtype=subtype)
    audio, file_sr = load_audio(path)
    assert file_sr == sr
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert np.abs(audio).max() <= 1.0
    # Codecs may add priming/padding; lossless formats must not.
    assert abs(len(audio) - len(x)) <= (0 if not lossy else sr // 10)
    assert abs(peak_hz(audio, sr) - 440.0) < 2.0
    if not lossy:
        assert np.abs(audio - x).max() < 1e-4
    info = audio_info(path)
    assert info.sample_rate == sr and info.channels == 1


def test_stereo_mixes_to_mono(tmp_path):
    left, right = sine(440.0, 4000, SR), sine(660.0, 4000, SR, amp=0.25)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), SR, subtype="FLOAT")
    audio, _ = load_audio(path)
    assert audio.shape == (4000,)
    assert np.allclose(audio, (left + right) / 2, atol=1e-7)
    both, _ = load_audio(path, mono=False)
    assert both.shape == (2, 4000) and np.allclose(both[1], right)
    info = audio_info(path)
    assert info.channels == 2 and info.frames == 4000
    assert info.duration == pytest.approx(4000 / SR)


def test_int16_and_float_files_come_back_float32_in_unit_range(tmp_path):
    ints = np.array([-32768, -16384, 0, 16384, 32767], dtype=np.int16)
    sf.write(tmp_path / "int16.wav", ints, SR, subtype="PCM_16")
    audio, _ = load_audio(tmp_path / "int16.wav")
    assert audio.dtype == np.float32
    assert np.allclose(audio, ints / 32768.0, atol=1e-7)  # -32768 -> exactly -1
    loud = np.array([-1.5, -0.5, 0.0, 0.5, 1.5], dtype=np.float32)
    sf.write(tmp_path / "float.wav", loud, SR, subtype="FLOAT")
    audio, _ = load_audio(tmp_path / "float.wav")
    assert audio.dtype == np.float32
    assert np.array_equal(audio, np.clip(loud, -1, 1))  # overs are clipped to [-1, 1]


@pytest.mark.parametrize("n", [SR, 12345])
def test_resampling_keeps_pitch_and_duration(tmp_path, n):
    path = tmp_path / "a440.wav"
    sf.write(path, sine(440.0, n, SR), SR, subtype="FLOAT")
    audio, sr = load_audio(path, sr=16000)
    assert sr == 16000 and audio.dtype == np.float32
    assert abs(len(audio) - n * 16000 / SR) <= 1
    assert abs(peak_hz(audio, sr) - 440.0) < 0.5
    # and nothing happens when the rate already matches
    same, sr_same = load_audio(path, sr=SR)
    assert sr_same == SR and len(same) == n


# -------------------------------------------------------------------------- broken files


@pytest.fixture()
def wav_bytes() -> bytes:
    buf = io.BytesIO()
    sf.write(buf, sine(440.0, 1000, SR), SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_missing_empty_and_folder(tmp_path):
    assert_audio_error(tmp_path / "nope.wav", "no such file")
    (tmp_path / "empty.wav").write_bytes(b"")
    assert_audio_error(tmp_path / "empty.wav", "empty")
    (tmp_path / "folder.wav").mkdir()
    assert_audio_error(tmp_path / "folder.wav", "folder")
    for bad in (tmp_path / "nope.wav", tmp_path / "empty.wav", tmp_path / "folder.wav"):
        with pytest.raises(AudioError, match=str(bad.name)):
            audio_info(bad)


@pytest.mark.parametrize("cut", [4, 8, 20, 36, 44], ids=lambda n: f"{n}_bytes")
def test_truncated_wav(tmp_path, wav_bytes, cut):
    """Cut inside the RIFF header, inside the fmt chunk, or right after the 44-byte header."""
    path = tmp_path / "cut.wav"
    path.write_bytes(wav_bytes[:cut])
    assert_audio_error(path)


def test_corrupt_unsupported_and_nan(tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert_audio_error(junk, "corrupt")
    text = tmp_path / "notes.mp3"
    text.write_text("this is a text file, not an mp3\n" * 20)
    msg = assert_audio_error(text)
    assert "does not exist" not in msg  # libsndfile's misleading reason is replaced
    for bad in (np.nan, np.inf):
        path = tmp_path / f"bad_{bad}.wav"
        data = sine(440.0, 100, SR)
        data[50] = bad
        sf.write(path, data, SR, subtype="FLOAT")
        assert_audio_error(path, "NaN or infinite")


PREFIXES = [b"", b"RIFF\x24\x08\x00\x00WAVEfmt ", b"fLaC", b"OggS\x00\x02", b"ID3\x03", b"FORM"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.sampled_from(PREFIXES),
    body=st.binary(min_size=0, max_size=2048),
    ext=st.sampled_from(AUDIO_EXTENSIONS),
)
def test_random_bytes_raise_only_audio_error(prefix, body, ext):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"random{ext}"
        path.write_bytes(prefix + body)
        try:
            audio, sr = load_audio(path)
        except AudioError as err:
            assert str(path) in str(err) and "\n" not in str(err)
            return
        assert audio.dtype == np.float32 and audio.ndim == 1 and len(audio) > 0
        assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0 and sr > 0


# ----------------------------------------------------------------------------- saving


@pytest.mark.parametrize("ext", ["wav", "flac"])
def test_save_round_trip(tmp_path, ext):
    x = sine(440.0, 8000, 16000, amp=0.8)
    out = save_audio(tmp_path / "deep" / f"x.{ext}", x, 16000)  # creates the folder
    assert out == tmp_path / "deep" / f"x.{ext}"
    y, sr = load_audio(out)
    assert sr == 16000 and len(y) == len(x)
    assert np.abs(y - x).max() <= 1.0 / 32768 + 1e-7  # 16-bit PCM rounding
    stereo = torch.from_numpy(np.stack([x, -x]))
    both, _ = load_audio(save_audio(tmp_path / f"s.{ext}", stereo, 16000), mono=False)
    assert both.shape == (2, len(x)) and np.abs(both[1] + x).max() <= 1.0 / 32768 + 1e-7


def test_save_rejects_bad_extension_nan_and_unwritable(tmp_path):
    x = sine(440.0, 100, 16000)
    for name in ("x.mp3", "x.ogg", "x"):
        with pytest.raises(AudioError, match="use .wav or .flac"):
            save_audio(tmp_path / name, x, 16000)
    with pytest.raises(AudioError, match="NaN"):
        save_audio(tmp_path / "nan.wav", np.full(10, np.nan, np.float32), 16000)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AudioError, match="cannot write"):
        save_audio(blocker / "x.wav", x, 16000)  # parent is a file
    assert not os.path.exists(tmp_path / "x.mp3")
