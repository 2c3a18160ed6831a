"""The signal layer: file I/O, mu-law, spectral transforms, plots (no torch.nn here).

Plots live in :mod:`waveloom.audio.plots` and are not re-exported, so importing the audio layer
(e.g. in data-loader workers) does not import matplotlib. The names below are loaded on first
use (PEP 562): file I/O and the mel scale need no torch, so ``waveloom generate`` on a packed
model (:mod:`waveloom.app._generate_packed`) writes and plots its samples without importing it.
"""

from __future__ import annotations

from waveloom.lazy import lazy_exports

#: Public name -> the module that defines it.
_WHERE = {
    "AUDIO_EXTENSIONS": "io",
    "AudioInfo": "io",
    "MU": "mulaw",
    "audio_info": "io",
    "cqt": "spectral",
    "cqt_frequencies": "spectral",
    "dequantize": "mulaw",
    "griffin_lim": "spectral",
    "hz_to_mel": "spectral",
    "instantaneous_frequency": "spectral",
    "istft": "spectral",
    "load_audio": "io",
    "log_magnitude": "spectral",
    "magnitude": "spectral",
    "mel_filterbank": "spectral",
    "mel_spectrogram": "spectral",
    "mel_to_hz": "spectral",
    "mulaw_decode": "mulaw",
    "mulaw_encode": "mulaw",
    "multiscale_spectral_distance": "spectral",
    "phase_from_if": "spectral",
    "quantize": "mulaw",
    "resample": "io",
    "save_audio": "io",
    "spectral_convergence": "spectral",
    "stft": "spectral",
}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
