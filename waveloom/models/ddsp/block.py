"""DDSP as a pure block function, ``(frames, state) -> (audio, state)``, for export.

:class:`~waveloom.models.ddsp.stream.DDSPStream` keeps its state in Python objects; a plugin
host or ONNX Runtime needs every piece of it as a tensor that goes in and comes out of each
call. :class:`DDSPBlock` is that function, built only from operators the ONNX exporter and
TorchScript handle at any block length (no FFTs, no data-dependent Python):

inputs (``n`` new frames; at 250 frames/s a 10 ms block alternates 2 and 3)::

    f0_hz [B, n], loudness_db [B, n]      the frame features (+ z [B, n, D] for ae models)
    noise [B, n * hop]                    white noise in [-1, 1), from the host's generator
    gru [1, B, H]                         the decoder's GRU state
    f0_hist [B, 3], amp_hist [B, 2],      the frames the synthesiser still looks at: f0 of
    dist_hist [B, 2, K]                   the last rendered frame and of the two pending ones
    phase [B] (float64, cycles)           the oscillator's phase
    noise_tail [B, S]                     filtered noise already overlap-added ahead
    reverb_tail [B, L - 1]                the last L - 1 dry samples (L = the IR's taps)

outputs: ``audio [B, n * hop]`` and the same state, updated. The audio runs two frames behind
the frames pushed (8 ms at 250 frames/s, the synthesiser's look-ahead, see
:mod:`waveloom.nn.ddsp.stream`). :meth:`DDSPBlock.initial_state` is silence; a stream that
starts from it fades in over its first two frames. :meth:`DDSPBlock.prime` instead takes the
first two frames and returns the state :class:`DDSPStream` holds after them, so the block
outputs that follow equal the offline render (``model.render``) sample for sample.

Two pieces are rewritten as fixed matrices so they export: the noise filters' inverse real FFT
(a zero-phase cosine sum, rotated and Hann-windowed, as :func:`~waveloom.nn.ddsp.noise.
frame_filters`) and their FFT convolution (a gather of noise windows times the taps); the
reverb's FFT convolution becomes a direct one over the dry history (16,000 taps x 160 samples
per 10 ms block: ~1 ms on one core). The harmonic bank is one matrix product over all
``K`` harmonics (``harmonic_core(..., all_harmonics=True)``; the offline path skips the zero
ones, a speed-up that needs Python).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from waveloom.errors import ConfigError
from waveloom.models.export_spec import ExportSpec
from waveloom.nn.ddsp.harmonic import harmonic_core
from waveloom.nn.ddsp.noise import filter_blocks, overlap_add

STATE_NAMES = ("gru", "f0_hist", "amp_hist", "dist_hist", "phase", "noise_tail", "reverb_tail")


def filter_design_matrix(bands: int) -> Tensor:
    """``[N, 2 (N - 1)]``: band magnitudes -> the windowed linear-phase FIR taps, equal to
    ``frame_filters`` (irfft of real magnitudes = a cosine sum; roll by half; Hann)."""
    taps = 2 * (bands - 1)
    k = torch.arange(bands, dtype=torch.float64)[:, None]
    t = torch.arange(taps, dtype=torch.float64)[None]
    weight = torch.full((bands, 1), 2.0, dtype=torch.float64)
    weight[0] = weight[-1] = 1.0
    basis = weight * torch.cos(2 * math.pi * k * t / taps) / taps  # [N, taps]
    basis = torch.roll(basis, shifts=taps // 2, dims=-1)
    hann = torch.hann_window(taps, periodic=True, dtype=torch.float64)
    return (basis * hann).float()


class DDSPBlock(nn.Module):
    """One block of a trained DDSP model as a function of explicit state (module docstring)."""

    def __init__(self, model) -> None:
        super().__init__()
        c = model.config
        self.model, self.hop, self.sample_rate = model, int(model.hop), int(c.sample_rate)
        self.bands, self.harmonics = int(c.n_noise_bands), int(c.n_harmonics)
        self.z_dims = int(c.z_dims)
        taps = 2 * (self.bands - 1)
        self.delay = self.bands - 1
        if self.delay > 2 * self.hop:
            raise ConfigError(f"model.n_noise_bands={self.bands}: the streaming noise needs "
                              f"n_noise_bands - 1 <= 2 x hop = {2 * self.hop}")
        self.block_len = self.hop + taps - 1  # one frame's filtered noise
        self.spans = -(-self.block_len // self.hop)  # hops a filtered block touches
        self.tail = self.hop - self.delay + self.block_len  # noise_tail's length S
        self.register_buffer("design", filter_design_matrix(self.bands), persistent=False)
        window = torch.arange(self.block_len)[:, None] + torch.arange(taps).flip(0)[None]
        self.register_buffer("windows", window, persistent=False)  # [hop + taps - 1, taps]
        self.reverb_taps = int(model.reverb.ir.numel()) if model.reverb is not None else 1

    # ------------------------------------------------------------------ state

    def initial_state(self, batch: int = 1) -> dict[str, Tensor]:
        """Silence: every state tensor at its shape, all zeros (a host allocates it so)."""
        hidden = self.model.decoder.gru.hidden_size
        z = torch.zeros
        return {"gru": z(1, batch, hidden), "f0_hist": z(batch, 3), "amp_hist": z(batch, 2),
                "dist_hist": z(batch, 2, self.harmonics), "phase": z(batch, dtype=torch.float64),
                "noise_tail": z(batch, self.tail), "reverb_tail": z(batch, self.reverb_taps - 1)}

    @torch.no_grad()
    def prime(self, f0_hz: Tensor, loudness_db: Tensor, noise: Tensor,
              z: Tensor | None = None) -> dict[str, Tensor]:
        """The state after the first two frames, as the offline render begins (frame 0's f0
        held before it); the blocks that follow then equal ``model.render`` of all frames."""
        if f0_hz.shape[1] != 2:
            raise ConfigError(f"DDSPBlock.prime takes the first 2 frames, got {f0_hz.shape[1]}")
        ctl, gru = self.model.controls(f0_hz, loudness_db, self.model._z_or_mean(z, f0_hz))
        ola = overlap_add(filter_blocks(ctl["magnitudes"], noise, self.hop), self.hop)
        state = self.initial_state(f0_hz.shape[0])
        state.update(gru=gru, f0_hist=torch.cat([f0_hz[:, :1], f0_hz], dim=1),
                     amp_hist=ctl["amplitude"], dist_hist=ctl["distribution"],
                     noise_tail=F.pad(ola, (0, self.delay + self.tail))[
                         :, self.delay : self.delay + self.tail])
        return state

    # ------------------------------------------------------------------ one block

    def _noise(self, magnitudes: Tensor, noise: Tensor, tail: Tensor) -> tuple[Tensor, Tensor]:
        """Filter the new frames' noise, overlap-add it ahead of the output; returns (the
        next ``n * hop`` samples of filtered noise, the new tail)."""
        batch, frames = magnitudes.shape[:2]
        taps = torch.matmul(magnitudes, self.design)  # [B, n, taps]
        padded = F.pad(noise.reshape(batch, frames, self.hop), (taps.shape[-1] - 1,) * 2)
        blocks = torch.matmul(padded[:, :, self.windows], taps.unsqueeze(-1)).squeeze(-1)
        blocks = F.pad(blocks, (0, self.spans * self.hop - self.block_len))
        parts = blocks.reshape(batch, frames, self.spans, self.hop)
        ola = sum(F.pad(parts[:, :, j], (0, 0, j, self.spans - 1 - j))
                  for j in range(self.spans)).reshape(batch, -1)
        offset = 2 * self.hop - self.delay  # new frames start two frames past the output
        buffer = F.pad(tail, (0, frames * self.hop)) + F.pad(ola, (offset, 0))[
            :, : self.tail + frames * self.hop]
        return buffer[:, : frames * self.hop], buffer[:, frames * self.hop :]

    def _reverb(self, dry: Tensor, history: Tensor) -> tuple[Tensor, Tensor]:
        if self.model.reverb is None:
            return dry, history
        x = torch.cat([history, dry], dim=1)
        ir = self.model.reverb.ir.flip(0)[None, None]
        wet = F.conv1d(x.unsqueeze(1), ir).squeeze(1)
        mix = self.model.reverb.mix()
        return (1.0 - mix) * dry + mix * wet, x[:, x.shape[1] - history.shape[1] :]

    def forward(self, f0_hz: Tensor, loudness_db: Tensor, noise: Tensor, gru: Tensor,
                f0_hist: Tensor, amp_hist: Tensor, dist_hist: Tensor, phase: Tensor,
                noise_tail: Tensor, reverb_tail: Tensor, z: Tensor | None = None
                ) -> tuple[Tensor, ...]:
        """One block: see the module docstring for every shape."""
        frames = f0_hz.shape[1]
        ctl, gru = self.model.controls(f0_hz, loudness_db, self.model._z_or_mean(z, f0_hz), gru)
        f0_ext = torch.cat([f0_hist, f0_hz], dim=1)
        amp_ext = torch.cat([amp_hist, ctl["amplitude"]], dim=1)
        dist_ext = torch.cat([dist_hist, ctl["distribution"]], dim=1)
        harmonic, phase = harmonic_core(f0_ext, amp_ext[:, : frames + 1],
                                        dist_ext[:, : frames + 1], self.sample_rate, self.hop,
                                        phase * (2 * math.pi), all_harmonics=True)
        filtered, noise_tail = self._noise(ctl["magnitudes"], noise, noise_tail)
        audio, reverb_tail = self._reverb(harmonic + filtered, reverb_tail)
        return (audio, gru, f0_ext[:, frames:], amp_ext[:, frames:], dist_ext[:, frames:],
                phase, noise_tail, reverb_tail)


def _example(block: DDSPBlock, frames: int, seed: int, warm_up: int = 5) -> tuple[Tensor, ...]:
    """Inputs for ``frames`` new frames from a state that ``warm_up`` frames have filled (a
    zero state would leave much of the graph untested)."""
    g = torch.Generator().manual_seed(seed)

    def frames_of(n: int) -> tuple[Tensor, ...]:
        f0 = 220.0 * 2.0 ** torch.rand(1, n, generator=g)  # 220-440 Hz
        loud = -45.0 + 25.0 * torch.rand(1, n, generator=g)
        noise = torch.rand(1, n * block.hop, generator=g) * 2 - 1
        z = (torch.randn(1, n, block.z_dims, generator=g),) if block.z_dims else ()
        return (f0, loud, noise, *z)

    state = block.initial_state(1)
    with torch.no_grad():
        warm = frames_of(warm_up)
        out = block(*warm[:3], *(state[k] for k in STATE_NAMES), *warm[3:])
    new = frames_of(frames)
    return (*new[:3], *out[1:], *new[3:])


def export_spec(model) -> ExportSpec:
    """The streaming block of a DDSP model, for ``waveloom export`` (module docstring)."""
    block = DDSPBlock(model).eval()
    c = model.config
    inputs = ["f0_hz", "loudness_db", "noise", *STATE_NAMES] + (["z"] if block.z_dims else [])
    outputs = ["audio", *(f"{name}_out" for name in STATE_NAMES)]
    dynamic = {"f0_hz": {0: "batch", 1: "frames"}, "loudness_db": {0: "batch", 1: "frames"},
               "noise": {0: "batch", 1: "samples"}, "audio": {0: "batch", 1: "samples"},
               "z": {0: "batch", 1: "frames"}}
    for name in STATE_NAMES:
        axis = {0: "batch"} if name != "gru" else {1: "batch"}
        dynamic[name] = dynamic[f"{name}_out"] = axis
    shapes = {k: [int(d) for d in v.shape[1:]] if k != "gru" else [1, "batch", v.shape[-1]]
              for k, v in block.initial_state(1).items()}
    info = {"sample_rate": c.sample_rate, "hop": block.hop, "frame_rate": c.frame_rate,
            "latency_frames": 2, "latency_ms": 2000.0 * block.hop / c.sample_rate,
            "block": f"any number of frames >= 1; 10 ms = alternate 2 and 3 frames at "
                     f"{c.frame_rate} frames/s",
            "f0_hz": "fundamental per frame in Hz (0 = unvoiced)",
            "loudness_db": "A-weighted loudness per frame in dB, floor -100 "
                           "(waveloom.audio.loudness)",
            "noise": "uniform white noise in [-1, 1), hop samples per frame",
            "state": {name: {"shape": ["batch", *shapes[name]] if name != "gru" else
                             shapes[name], "start": 0.0} for name in STATE_NAMES}}
    if block.z_dims:
        info["z"] = f"[batch, frames, {block.z_dims}] from the encoder (model.encode)"
    examples = [_example(block, n, seed) for n, seed in ((3, 0), (2, 1), (7, 2))]
    return ExportSpec(module=block, examples=examples, inputs=inputs, outputs=outputs,
                      dynamic=dynamic, state=[(k, f"{k}_out") for k in STATE_NAMES], info=info)
