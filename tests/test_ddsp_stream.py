"""Streaming DDSP synthesis equals the offline path (issue #22)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from waveloom.errors import ConfigError
from waveloom.nn.ddsp import Reverb
from waveloom.nn.ddsp.stream import LOOK_AHEAD, SynthStream
from waveloom.nn.ddsp.synth import synthesize

SR, HOP = 16000, 64


def _controls(frames: int, seed: int = 0, batch: int = 2):
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(frames) / 250.0
    f0 = torch.stack([220 * 2 ** (0.5 * torch.sin(2 * np.pi * 1.3 * t)),
                      1200 + 900 * torch.sin(2 * np.pi * 0.7 * t)])[:batch]  # crosses Nyquist/k
    amp = torch.rand(batch, frames, generator=gen) * 0.3
    dist = torch.rand(batch, frames, 100, generator=gen)
    mags = torch.rand(batch, frames, 65, generator=gen) * 0.05
    noise = torch.rand(batch, frames * HOP, generator=gen) * 2 - 1
    return f0, amp, dist, mags, noise


def _stream(stream: SynthStream, controls, sizes) -> torch.Tensor:
    f0, amp, dist, mags, noise = controls
    outs, start = [], 0
    for n in sizes:
        end = start + n
        outs.append(stream.push(f0[:, start:end], amp[:, start:end], dist[:, start:end],
                                mags[:, start:end], noise[:, start * HOP : end * HOP]))
        start = end
    outs.append(stream.flush())
    return torch.cat(outs, dim=1)


def _random_sizes(total: int, rng: np.random.Generator) -> list[int]:
    sizes = []
    while sum(sizes) < total:
        sizes.append(int(min(rng.integers(0, 9), total - sum(sizes))))
    return sizes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stream_equals_offline_for_random_block_sizes(seed):
    frames = 300
    controls = _controls(frames, seed)
    reverb = Reverb(SR, seconds=0.3, seed=seed)
    offline = synthesize(*controls[:4], SR, HOP, reverb=reverb, noise=controls[4]).detach()
    sizes = _random_sizes(frames, np.random.default_rng(seed))
    streamed = _stream(SynthStream(SR, HOP, reverb=reverb), controls, sizes)
    assert streamed.shape == offline.shape == (2, frames * HOP)
    assert (streamed - offline).abs().max() < 1e-5


def test_ten_millisecond_blocks_and_latency():
    frames = 100
    controls = _controls(frames)
    offline = synthesize(*controls[:4], SR, HOP, noise=controls[4])
    stream = SynthStream(SR, HOP)
    sizes = [2, 3] * (frames // 5)  # 10 ms at 250 frames/s = 2.5 frames
    f0, amp, dist, mags, noise = controls
    outs, start = [], 0
    for n in sizes:
        out = stream.push(f0[:, start : start + n], amp[:, start : start + n],
                          dist[:, start : start + n], mags[:, start : start + n],
                          noise[:, start * HOP : (start + n) * HOP])
        start += n
        outs.append(out)
        assert sum(o.shape[1] for o in outs) == (start - LOOK_AHEAD) * HOP  # 2 frames behind
    outs.append(stream.flush())
    assert (torch.cat(outs, 1) - offline).abs().max() < 1e-5


def test_stream_without_reverb_single_frames_and_tiny_inputs():
    for frames in (1, 2, 3, 40):
        controls = _controls(frames, batch=1)
        offline = synthesize(*controls[:4], SR, HOP, noise=controls[4])
        streamed = _stream(SynthStream(SR, HOP), controls, [1] * frames)
        assert streamed.shape == offline.shape
        assert (streamed - offline).abs().max() < 1e-5


def test_stream_bad_input():
    with pytest.raises(ConfigError, match="share"):
        SynthStream(SR, HOP).push(torch.ones(1, 3), torch.ones(1, 2), torch.ones(1, 3, 60),
                                  torch.ones(1, 3, 65))


def test_partitioned_convolution_equals_direct_convolution():
    from waveloom.nn.ddsp.partitioned import PartitionedConvolver

    rng = np.random.default_rng(0)
    ir = rng.standard_normal(1000)  # not a multiple of the block: the last partition is padded
    x = rng.standard_normal((2, 64 * 50))
    conv = PartitionedConvolver(torch.from_numpy(ir), 64)
    outs, start = [], 0
    for n in [0, 1, 3, 16, 2, 28]:
        outs.append(conv(torch.from_numpy(x[:, start : start + 64 * n])))
        start += 64 * n
    got = torch.cat(outs, 1).numpy()
    for b in range(2):
        np.testing.assert_allclose(got[b], np.convolve(x[b], ir)[: x.shape[1]], atol=1e-10)
    with pytest.raises(ConfigError, match="whole number"):
        conv(torch.zeros(2, 65, dtype=torch.float64))


def test_render_offline_equals_streamed_render(monkeypatch):
    """perform.render goes offline for inputs that fit; it must give the streamed audio (the
    noise is drawn in the same blocks), for several lines and a block size that does not divide
    the input."""
    from waveloom.models.ddsp import perform
    from waveloom.models.ddsp.config import DDSPConfig
    from waveloom.models.ddsp.model import DDSP

    torch.manual_seed(0)
    model = DDSP(DDSPConfig(hidden=32, mlp_layers=1, n_harmonics=40, reverb_seconds=0.2)).eval()
    frames = 230
    t = np.arange(frames) / 250.0
    f0 = np.stack([220 * 2 ** (0.3 * np.sin(2 * np.pi * t)), 660 + 0 * t]).astype(np.float32)
    loud = np.stack([-30 + 10 * np.sin(3 * t), -40 + 0 * t]).astype(np.float32)
    controls = perform.Controls(f0, loud)
    monkeypatch.setattr(perform, "BLOCK_FRAMES", 64)
    offline = perform.render(model, controls, seed=3)
    monkeypatch.setattr(perform, "OFFLINE_FRAMES", 0)
    streamed = perform.render(model, controls, seed=3)
    assert offline.shape == streamed.shape == (frames * model.hop,)
    assert np.abs(offline).max() > 1e-3
    assert np.abs(offline - streamed).max() < 1e-5
