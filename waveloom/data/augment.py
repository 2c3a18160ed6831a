"""Audio augmentation for a transcriber: the same score heard through other rooms and gear.

The goal is a transcriber that works on a SoundFont (or a recording) it never heard, so every
training window is played back a little differently: louder or softer, through a random
equaliser, in a random room, over a little noise. Each function takes float32 audio ``[T]``
in [-1, 1] and a numpy ``Generator`` (the data set seeds it per (seed, epoch, index), so an
item stays a pure function of its index) and returns float32 ``[T]``.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

#: Gain range in dB.
GAIN_DB = (-6.0, 6.0)
#: Reverb time (RT60) range in seconds, and the wet/dry mix range.
RT60 = (0.1, 1.2)
WET = (0.0, 0.5)
#: Noise level as a signal-to-noise ratio range in dB.
SNR_DB = (20.0, 50.0)


def random_gain(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scale by a gain drawn uniformly in :data:`GAIN_DB`."""
    return audio * np.float32(10 ** (rng.uniform(*GAIN_DB) / 20))


def random_eq(audio: np.ndarray, rng: np.random.Generator, bands: int = 8) -> np.ndarray:
    """A smooth random equaliser: ``bands`` gains of +-6 dB at log-spaced frequencies,
    interpolated over the FFT bins of the whole window and applied in one FFT round trip."""
    n = len(audio)
    spectrum = np.fft.rfft(audio)
    bins = np.arange(len(spectrum), dtype=np.float64)
    knots = np.geomspace(1.0, max(len(spectrum) - 1, 2), bands)
    curve_db = np.interp(np.log(np.maximum(bins, 1.0)), np.log(knots),
                         rng.uniform(-6.0, 6.0, bands))
    return np.fft.irfft(spectrum * 10 ** (curve_db / 20), n).astype(np.float32)


def random_reverb(audio: np.ndarray, rng: np.random.Generator,
                  sample_rate: int = 16000) -> np.ndarray:
    """A synthetic room: exponentially decaying noise (RT60 in :data:`RT60`) mixed in at a wet
    level in :data:`WET`; the output keeps the input's length."""
    rt60 = rng.uniform(*RT60)
    length = int(rt60 * sample_rate)
    t = np.arange(length) / sample_rate
    ir = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    ir /= np.sqrt(np.sum(ir**2)) + 1e-12
    wet = fftconvolve(audio, ir)[: len(audio)]
    mix = rng.uniform(*WET)
    return ((1 - mix) * audio + mix * wet).astype(np.float32)


def random_noise(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """White noise at an SNR drawn in :data:`SNR_DB` (relative to the window's RMS)."""
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    if rms == 0.0:
        return audio
    level = rms / 10 ** (rng.uniform(*SNR_DB) / 20)
    return (audio + level * rng.standard_normal(len(audio))).astype(np.float32)


def augment(audio: np.ndarray, rng: np.random.Generator, sample_rate: int = 16000
            ) -> np.ndarray:
    """All four in a fixed order (EQ, reverb, gain, noise), then clipped to [-1, 1]."""
    audio = random_eq(audio, rng)
    audio = random_reverb(audio, rng, sample_rate)
    audio = random_gain(audio, rng)
    audio = random_noise(audio, rng)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)
