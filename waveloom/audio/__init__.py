"""The signal layer: file I/O, mu-law, spectral transforms, plots (no torch.nn here).

Plots live in :mod:`waveloom.audio.plots` and are not re-exported, so importing the audio layer
(e.g. in data-loader workers) does not import matplotlib.
"""

from waveloom.audio.io import (
    AUDIO_EXTENSIONS,
    AudioInfo,
    audio_info,
    load_audio,
    resample,
    save_audio,
)
from waveloom.audio.mulaw import MU, dequantize, mulaw_decode, mulaw_encode, quantize
from waveloom.audio.spectral import (
    cqt,
    cqt_frequencies,
    griffin_lim,
    hz_to_mel,
    instantaneous_frequency,
    istft,
    log_magnitude,
    magnitude,
    mel_filterbank,
    mel_spectrogram,
    mel_to_hz,
    multiscale_spectral_distance,
    phase_from_if,
    spectral_convergence,
    stft,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "MU",
    "AudioInfo",
    "audio_info",
    "cqt",
    "cqt_frequencies",
    "dequantize",
    "griffin_lim",
    "hz_to_mel",
    "instantaneous_frequency",
    "istft",
    "load_audio",
    "log_magnitude",
    "magnitude",
    "mel_filterbank",
    "mel_spectrogram",
    "mel_to_hz",
    "mulaw_decode",
    "mulaw_encode",
    "multiscale_spectral_distance",
    "phase_from_if",
    "quantize",
    "resample",
    "save_audio",
    "spectral_convergence",
    "stft",
]
