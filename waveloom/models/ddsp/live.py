"""Timbre transfer as a live input would run it: audio in 10 ms blocks, audio out, causal.

Offline, ``waveloom transfer`` analyses the whole file (f0 and loudness centred on each frame)
before rendering. Live, frame ``k``'s analysis window can only end at the newest sample, so the
features are the offline ones delayed: :class:`LiveFeatures` keeps the last ``window`` samples
(2048, the loudness analysis the model was trained on) and, as each hop of input completes,
computes YIN's f0 and the A-weighted loudness of that window, which is exactly the offline frame
centred ``window / 2`` samples earlier (zero padding at the start included): a feature latency
of ``window / 2 - hop`` samples (60 ms at 16 kHz). The synthesiser adds its two frames of
look-ahead (8 ms) and the block itself its own length.

f0 is YIN (the model's CREPE would cost ~10x the block budget per frame on a CPU); quiet
frames keep YIN's estimate and play at their (low) loudness, as offline.
:class:`LiveTransfer` times every block, so a user sees whether the machine keeps up: the worst
block against the block's own duration.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from waveloom.audio.f0 import FMAX, FMIN
from waveloom.audio.loudness import window_loudness
from waveloom.audio.yin import yin_window
from waveloom.errors import ConfigError
from waveloom.models.ddsp.stream import DDSPStream


class LiveFeatures:
    """``push(samples [hop])`` -> (f0 Hz, loudness dB) of the window ending there."""

    def __init__(self, sample_rate: int, hop: int, window: int = 2048) -> None:
        if window % hop or window < 2 * hop:
            raise ConfigError(f"live features: window {window} must be a multiple of hop {hop} "
                              "and at least two hops")
        self.sample_rate, self.hop, self.window = sample_rate, hop, window
        self.buffer = np.zeros(window, np.float64)

    @property
    def latency(self) -> int:
        """Samples between a frame's centre and the newest sample of its window."""
        return self.window // 2 - self.hop

    def push(self, samples: np.ndarray) -> tuple[float, float]:
        if len(samples) != self.hop:
            raise ConfigError(f"live features take one hop ({self.hop} samples) at a time")
        self.buffer = np.concatenate([self.buffer[self.hop :], samples])
        return (yin_window(self.buffer, self.sample_rate, FMIN, FMAX),
                window_loudness(self.buffer, self.sample_rate))


class LiveTransfer:
    """A DDSP instrument played by a live input: ``push(block [n * hop]) -> audio [n * hop]``
    (the first calls return less while the stream fills), each call timed in ``self.ms``."""

    def __init__(self, model, pitch_shift: float = 0.0, loudness_shift: float = 0.0,
                 seed: int = 0) -> None:
        if model.encoder is not None:
            raise ConfigError("transfer --stream plays solo instruments; an ae model needs "
                              "its encoder's z over a whole window (run transfer without "
                              "--stream)")
        self.model, self.hop = model, model.hop
        self.features = LiveFeatures(model.config.sample_rate, model.hop)
        self.stream = DDSPStream(model, 1, torch.Generator().manual_seed(int(seed)))
        self.shift, self.gain_db = 2.0 ** (pitch_shift / 12.0), loudness_shift
        self.low, self.high = model.f0_range()
        self.ms: list[float] = []

    def push(self, block: np.ndarray) -> np.ndarray:
        if len(block) % self.hop:
            raise ConfigError(f"live blocks must be whole hops ({self.hop} samples)")
        t0 = time.perf_counter()
        frames = [self.features.push(block[i : i + self.hop])
                  for i in range(0, len(block), self.hop)]
        f0 = np.clip(np.array([f for f, _ in frames]) * self.shift, self.low, self.high)
        loud = np.array([lo for _, lo in frames]) + self.gain_db
        out = self.stream.push(torch.tensor(f0, dtype=torch.float32)[None],
                               torch.tensor(loud, dtype=torch.float32)[None])
        self.ms.append(1000.0 * (time.perf_counter() - t0))
        return out[0].numpy()

    def flush(self) -> np.ndarray:
        return self.stream.flush()[0].numpy()

    @property
    def latency_ms(self) -> float:
        """Input sample -> the output sample it shaped: features + synthesiser look-ahead."""
        samples = self.features.latency + 2 * self.hop
        return 1000.0 * samples / self.model.config.sample_rate


def transfer_live(model, audio: np.ndarray, block_ms: float = 10.0, **kwargs
                  ) -> tuple[np.ndarray, LiveTransfer]:
    """Play mono ``audio`` through :class:`LiveTransfer` in blocks of ``block_ms`` (rounded
    to whole hops, alternating as 10 ms at 250 frames/s needs); returns (audio of the input's
    length, the player with its timings). The output is delayed by ``latency_ms``."""
    live = LiveTransfer(model, **kwargs)
    hop, sr = model.hop, model.config.sample_rate
    frames = -(-len(audio) // hop)
    padded = np.zeros(frames * hop, np.float32)
    padded[: len(audio)] = audio
    outs, done, k = [], 0, 1
    while done < frames:
        end = min(frames, int(k * block_ms * sr / 1000.0) // hop)
        k += 1
        if end > done:
            outs.append(live.push(padded[done * hop : end * hop]))
            done = end
    outs.append(live.flush())
    return np.concatenate(outs)[: len(audio)], live
