"""DDSP hyper-parameters (Engel et al. 2020), validated in one place.

Defaults are the paper's solo-instrument model at 16 kHz: 250 control frames per second (hop 64),
60 harmonics, 65 noise bands, a 1 s learned reverb, a decoder of 3-layer MLPs around a GRU of
512, and the multi-scale spectral loss over FFT sizes 2048 .. 64. ``z_dims > 0`` adds the
MFCC -> GRU encoder of the autoencoder variant (16 dims per frame in the paper).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from waveloom.config import ModelConfig, require_positive
from waveloom.errors import ConfigError

F0_METHODS = ("crepe-full", "crepe-tiny", "yin", "pyin")  # waveloom.audio.f0.METHODS


@dataclass
class DDSPConfig(ModelConfig):
    """See the module docstring; ``hop = sample_rate / frame_rate`` samples per frame."""

    sample_rate: int = 16000
    frame_rate: int = 250  # control frames per second; must divide sample_rate
    n_harmonics: int = 60  # the paper uses 60 (solo) to 100
    n_noise_bands: int = 65  # filtered-noise bands, 0 Hz .. Nyquist
    reverb_seconds: float = 1.0  # learned impulse response length; 0: no reverb
    hidden: int = 512  # MLP width and GRU size of the decoder
    mlp_layers: int = 3
    z_dims: int = 0  # timbre code per frame (ae: 16); 0: no encoder
    n_mfcc: int = 30
    n_mels: int = 128
    encoder_hidden: int = 512
    encoder_fft: int = 1024
    f0_method: str = "crepe-tiny"  # how training/transfer features are tracked (audio.f0)
    fft_sizes: tuple[int, ...] = (2048, 1024, 512, 256, 128, 64)
    log_weight: float = 1.0  # weight of the log-magnitude term of the loss
    f0_min_hz: float = 32.7  # the f0 range the model accepts before it has seen data
    f0_max_hz: float = 1975.5
    # (velocity, dB): the median level of the training notes played at that velocity, so a
    # score's velocity asks for a level the model heard (models/ddsp/calibrate.py); ():
    # uncalibrated, velocity 127 plays at the loudest level seen.
    velocity_db: tuple[float, ...] = ()

    @property
    def hop(self) -> int:
        return self.sample_rate // self.frame_rate

    def validate(self) -> None:
        require_positive(self, "sample_rate", "frame_rate", "n_harmonics", "n_noise_bands",
                         "hidden", "mlp_layers", "n_mfcc", "n_mels", "encoder_hidden",
                         "encoder_fft", "f0_min_hz", "f0_max_hz")
        if self.sample_rate % self.frame_rate:
            raise ConfigError(f"model.frame_rate={self.frame_rate} must divide "
                              f"model.sample_rate={self.sample_rate} (a whole hop per frame)")
        if self.velocity_db and not (
                len(self.velocity_db) == 2 and 1 <= self.velocity_db[0] <= 127
                and math.isfinite(self.velocity_db[1])):
            raise ConfigError(f"model.velocity_db={list(self.velocity_db)}: give [velocity "
                              "1-127, level dB] or [] (run models/ddsp/calibrate.py)")
        if self.n_harmonics > 100:
            raise ConfigError(f"model.n_harmonics={self.n_harmonics}: at most 100 (DDSP uses "
                              "60 to 100)")
        if self.n_noise_bands - 1 > self.hop:
            raise ConfigError(f"model.n_noise_bands={self.n_noise_bands} must be at most hop + 1 "
                              f"= {self.hop + 1} (the noise FIR spans one frame)")
        if not 0.0 <= self.reverb_seconds <= 3.0:
            raise ConfigError(f"model.reverb_seconds={self.reverb_seconds} must be in [0, 3] "
                              "(0: no reverb)")
        if self.z_dims < 0:
            raise ConfigError(f"model.z_dims={self.z_dims} must be >= 0 (0: no encoder)")
        if self.f0_method not in F0_METHODS:
            raise ConfigError(f"model.f0_method={self.f0_method!r}: use one of "
                              f"{', '.join(F0_METHODS)}")
        if not self.fft_sizes or any(n < 16 for n in self.fft_sizes):
            raise ConfigError(f"model.fft_sizes={list(self.fft_sizes)}: give one or more FFT "
                              "sizes >= 16")
        if not self.log_weight >= 0:
            raise ConfigError(f"model.log_weight={self.log_weight} must be >= 0")
        if not self.f0_min_hz < self.f0_max_hz < self.sample_rate / 2:
            raise ConfigError(f"model.f0_min_hz={self.f0_min_hz} < model.f0_max_hz="
                              f"{self.f0_max_hz} < Nyquist ({self.sample_rate / 2:g}) must hold")
