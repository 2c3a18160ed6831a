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
#: Chorus: extra voices, their delay (s), the slow sweep's rate (Hz) and its largest pitch
#: deviation (cents), and each voice's level relative to the dry signal.
CHORUS_VOICES = (1, 3)
CHORUS_DELAY = (0.008, 0.025)
CHORUS_RATE = (0.3, 3.0)
CHORUS_CENTS = (3.0, 15.0)
CHORUS_LEVEL = (0.3, 0.7)
#: Formants: how many resonances, their centre (Hz), gain (dB) and width (octaves, the
#: Gaussian bump's standard deviation on a log-frequency axis).
FORMANTS = (2, 5)
FORMANT_HZ = (150.0, 6000.0)
FORMANT_DB = (-12.0, 15.0)
FORMANT_OCTAVES = (0.08, 0.5)


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


def _match_rms(out: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``out`` (float64) scaled to ``reference``'s RMS, as float32: an effect that changes
    the timbre should not also change the level (gain has its own augmentation)."""
    rms_in = np.sqrt(np.mean(np.square(reference, dtype=np.float64)))
    rms_out = np.sqrt(np.mean(out**2))
    return (out * (rms_in / rms_out if rms_out > 0 else 0.0)).astype(np.float32)


def random_formants(audio: np.ndarray, rng: np.random.Generator,
                    sample_rate: int = 16000) -> np.ndarray:
    """A random vowel: 2-5 resonances (or notches), each a Gaussian bump of -12 to +15 dB and
    0.08-0.5 octaves on a log-frequency axis centred at 150 Hz-6 kHz, applied in one FFT
    round trip and scaled back to the input's RMS.

    Why: :func:`random_eq` is smooth (8 knots of +-6 dB), while SoundFonts differ most in
    narrow spectral peaks: FluidR3's choir has a formant near 2.8 kHz and a hole at 1.2-2.5 kHz
    where TimGM6mb's has energy (docs/transcriber.md), and the transcriber lost most of its
    notes. Peaks move partials' relative levels without moving their frequencies, so the
    labels stay true.
    """
    n = len(audio)
    spectrum = np.fft.rfft(audio.astype(np.float64))
    octave = np.log2(np.maximum(np.fft.rfftfreq(n, 1.0 / sample_rate), 1.0))
    curve_db = np.zeros_like(octave)
    for _ in range(int(rng.integers(FORMANTS[0], FORMANTS[1] + 1))):
        centre = rng.uniform(*np.log2(FORMANT_HZ))
        width = rng.uniform(*FORMANT_OCTAVES)
        curve_db += rng.uniform(*FORMANT_DB) * np.exp(-0.5 * ((octave - centre) / width) ** 2)
    return _match_rms(np.fft.irfft(spectrum * 10 ** (curve_db / 20), n), audio)


def random_chorus(audio: np.ndarray, rng: np.random.Generator,
                  sample_rate: int = 16000) -> np.ndarray:
    """An ensemble of the same line: 1-3 copies, each delayed by 8-25 ms with its delay swept
    by a slow sine (0.3-3 Hz) so that its pitch wavers by at most 3-15 cents, mixed in at
    0.3-0.7 of the dry level; the sum is scaled back to the input's RMS.

    Why: a SoundFont's choir or string section is several detuned, drifting voices, which
    smears the upper partials that a solo sample keeps sharp. The held-out FluidR3 choir was
    where the transcriber lost most notes (docs/transcriber.md). The dry signal stays, so the
    onsets stay where the labels put them (the copies lag by at most ~30 ms).
    """
    n = len(audio)
    t = np.arange(n, dtype=np.float64)
    dry = audio.astype(np.float64)
    out = dry.copy()
    for _ in range(int(rng.integers(CHORUS_VOICES[0], CHORUS_VOICES[1] + 1))):
        rate = rng.uniform(*CHORUS_RATE)
        # delay d(t) = base + depth sin(w t): the copy's pitch ratio is 1 - d'(t), whose
        # largest deviation is depth * w; choose depth for the drawn cents.
        deviation = 2 ** (rng.uniform(*CHORUS_CENTS) / 1200) - 1
        w = 2 * np.pi * rate / sample_rate
        depth = deviation / w
        base = max(rng.uniform(*CHORUS_DELAY) * sample_rate, depth + 1.0)
        delay = base + depth * np.sin(w * t + rng.uniform(0.0, 2 * np.pi))
        out += rng.uniform(*CHORUS_LEVEL) * np.interp(t - delay, t, dry, left=0.0)
    return _match_rms(out, dry)


def augment(audio: np.ndarray, rng: np.random.Generator, sample_rate: int = 16000,
            chorus: float = 0.0, formants: float = 0.0) -> np.ndarray:
    """All four in a fixed order (EQ, reverb, gain, noise), then clipped to [-1, 1]; after
    the EQ, with probability ``formants`` a :func:`random_formants` and with probability
    ``chorus`` a :func:`random_chorus` (a probability of 0 draws nothing more from ``rng``, so
    recipes from before these options see the same windows)."""
    audio = random_eq(audio, rng)
    if formants > 0 and rng.uniform() < formants:
        audio = random_formants(audio, rng, sample_rate)
    if chorus > 0 and rng.uniform() < chorus:
        audio = random_chorus(audio, rng, sample_rate)
    audio = random_reverb(audio, rng, sample_rate)
    audio = random_gain(audio, rng)
    audio = random_noise(audio, rng)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)
