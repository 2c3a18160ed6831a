"""Streaming DDSP synthesis: blocks of frames in, audio out, equal to the offline path.

Blocks are whole frames (any number per call, including zero): at 250 frames/s a 10 ms block
is 2.5 frames, so a caller at that rate alternates blocks of 2 and 3 frames (or runs the model
at 100 frames/s, where 10 ms is one frame). What crosses block boundaries:

* the oscillator phase (float64 cycles, so chaining is exact);
* the frames the blend and the anti-aliasing mask look at: frame ``i``'s samples need the
  controls of frame ``i + 1`` and the f0 of frame ``i + 2``, so the output runs **two frames
  behind** the input (8 ms at 250 Hz, hop 64 at 16 kHz); after pushing ``A`` frames in all,
  ``(A - 2) * hop`` samples have come out;
* the noise FIR overlap-add tail (each block's filtered noise spills ``2 (N - 1) - 1`` samples
  into the following blocks);
* the reverb tail: the reverb runs as a uniformly partitioned convolution
  (:mod:`waveloom.nn.ddsp.partitioned`, partitions of ``hop`` samples) whose frequency-domain
  delay line carries the past input; its impulse response is read at the first push.

:meth:`SynthStream.flush` renders the last frames with the ends held exactly as the offline
path holds them, and drops the reverb tail past the end as :class:`Reverb` does, so the
concatenated outputs equal :func:`waveloom.nn.ddsp.synth.synthesize` on all the frames.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from waveloom.errors import ConfigError
from waveloom.nn.ddsp.harmonic import harmonic_core
from waveloom.nn.ddsp.noise import filter_blocks, overlap_add, white_noise
from waveloom.nn.ddsp.partitioned import PartitionedConvolver
from waveloom.nn.ddsp.reverb import Reverb

LOOK_AHEAD = 2  # frames: see the module docstring


class SynthStream:
    """Incremental :func:`~waveloom.nn.ddsp.synth.synthesize` (harmonic + noise + reverb).

    ``push(f0 [B, n], amplitude [B, n], distribution [B, n, K], magnitudes [B, n, N],
    noise [B, n*hop] | None)`` returns the audio that is now complete; ``flush()`` the rest.
    Noise, when not given, is drawn per push from ``generator`` (so it equals the offline noise
    only when the caller passes the same noise; the tests do).
    """

    def __init__(self, sample_rate: int, hop: int, reverb: Reverb | None = None,
                 generator: torch.Generator | None = None):
        self.sample_rate, self.hop = sample_rate, hop
        self.reverb, self.generator = reverb, generator
        self._f0: Tensor | None = None  # frames R - 1 .. A - 1 (R = frames rendered)
        self._amp: Tensor | None = None  # frames R .. A - 1
        self._dist: Tensor | None = None
        self._phase: Tensor | None = None  # cycles, float64 [B]
        self._ola: Tensor | None = None  # undelayed noise overlap-add from sample _ola_start
        self._ola_start = 0
        self._rendered = 0
        self._convolver: PartitionedConvolver | None = None  # the reverb, with its tail
        self._delay = 0  # noise FIR delay (bands - 1), set by the first push

    def _append(self, f0: Tensor, amplitude: Tensor, distribution: Tensor) -> None:
        if self._f0 is None:
            self._f0 = torch.cat([f0[:, :1], f0], dim=1)  # offline holds frame 0 before it
            self._amp, self._dist = amplitude, distribution
            self._phase = torch.zeros(f0.shape[0], dtype=torch.float64, device=f0.device)
        else:
            self._f0 = torch.cat([self._f0, f0], dim=1)
            self._amp = torch.cat([self._amp, amplitude], dim=1)
            self._dist = torch.cat([self._dist, distribution], dim=1)

    def _add_noise(self, magnitudes: Tensor, noise: Tensor | None) -> None:
        batch, frames, bands = magnitudes.shape
        if noise is None:
            noise = white_noise((batch, frames * self.hop), self.generator, magnitudes.device)
        if noise.shape != (batch, frames * self.hop):
            raise ConfigError(f"SynthStream.push: noise {tuple(noise.shape)} must be "
                              f"[B, n*hop] = {(batch, frames * self.hop)}")
        start = self._amp.shape[1] - frames + self._rendered  # first new frame's index
        ola = overlap_add(filter_blocks(magnitudes, noise, self.hop), self.hop)
        if self._ola is None:
            self._ola, self._ola_start = ola.new_zeros(batch, 0), start * self.hop
        offset = start * self.hop - self._ola_start
        need = offset + ola.shape[1] - self._ola.shape[1]
        if need > 0:
            self._ola = torch.cat([self._ola, self._ola.new_zeros(batch, need)], dim=1)
        self._ola[:, offset : offset + ola.shape[1]] += ola.to(self._ola.dtype)
        self._delay = bands - 1

    def _noise_out(self, frames: int) -> Tensor:
        begin = self._rendered * self.hop + self._delay - self._ola_start
        end = begin + frames * self.hop
        out = self._ola[:, begin:end]
        self._ola, self._ola_start = self._ola[:, end:], self._ola_start + end
        return out

    def _render(self, frames: int, final: bool) -> Tensor:
        """Render the next ``frames`` frames (at the end, with the last frame held)."""
        f0, amp, dist = self._f0[:, : frames + 3], self._amp[:, : frames + 1], \
            self._dist[:, : frames + 1]
        if final:
            f0 = torch.cat([self._f0] + [self._f0[:, -1:]] * 2, dim=1)
            amp = torch.cat([self._amp, self._amp[:, -1:]], dim=1)
            dist = torch.cat([self._dist, self._dist[:, -1:]], dim=1)
        harmonic, end = harmonic_core(f0, amp, dist, self.sample_rate, self.hop,
                                      self._phase * (2 * math.pi))
        self._phase = end
        dry = harmonic + self._noise_out(frames).to(harmonic.dtype)
        self._f0, self._amp, self._dist = (self._f0[:, frames:], self._amp[:, frames:],
                                           self._dist[:, frames:])
        self._rendered += frames
        return self._reverb(dry)

    def _reverb(self, dry: Tensor) -> Tensor:
        """Mix in the reverb, streamed by partitioned convolution (the tail past the last
        sample is never produced, as the offline reverb truncates it)."""
        if self.reverb is None:
            return dry
        if self._convolver is None:
            self._convolver = PartitionedConvolver(self.reverb.ir.to(dry.dtype), self.hop)
        mix = self.reverb.mix()
        return (1.0 - mix) * dry + mix * self._convolver(dry)

    @torch.no_grad()
    def push(self, f0_hz: Tensor, amplitude: Tensor, distribution: Tensor, magnitudes: Tensor,
             noise: Tensor | None = None) -> Tensor:
        """Add ``n`` frames of controls; returns the audio completed by them ``[B, m * hop]``."""
        if magnitudes.shape[:2] != f0_hz.shape or amplitude.shape != f0_hz.shape \
                or distribution.shape[:2] != f0_hz.shape:
            raise ConfigError("SynthStream.push: f0, amplitude, distribution and magnitudes "
                              "must share [B, n] (frames)")
        if f0_hz.shape[1] == 0:
            return f0_hz.new_zeros(f0_hz.shape[0], 0)
        self._append(f0_hz, amplitude, distribution)
        self._add_noise(magnitudes, noise)
        ready = self._amp.shape[1] - LOOK_AHEAD
        if ready <= 0:
            return f0_hz.new_zeros(f0_hz.shape[0], 0)
        return self._render(ready, final=False)

    @torch.no_grad()
    def flush(self) -> Tensor:
        """The remaining audio (the last frames, ends held as offline); the stream is spent."""
        if self._amp is None or self._amp.shape[1] == 0:
            return torch.zeros(0, 0) if self._amp is None else self._amp.new_zeros(
                self._amp.shape[0], 0)
        return self._render(self._amp.shape[1], final=True)
