"""The signal layer: file I/O, mu-law, spectral transforms, plots (no torch.nn here)."""

from waveloom.audio.io import AUDIO_EXTENSIONS, AudioInfo, audio_info, load_audio, resample, save_audio
from waveloom.audio.mulaw import MU, dequantize, mulaw_decode, mulaw_encode, quantize

__all__ = [
    "AUDIO_EXTENSIONS",
    "MU",
    "AudioInfo",
    "audio_info",
    "dequantize",
    "load_audio",
    "mulaw_decode",
    "mulaw_encode",
    "quantize",
    "resample",
    "save_audio",
]
