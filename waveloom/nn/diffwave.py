"""DiffWave's denoiser (Kong et al. 2021, sec. 3.1 and fig. 2): a WaveNet without causality.

``eps_hat = net(x_t [B, T], tau [B], cond [B, Cc, T or 1] or None, local [B, Cl, T] or None)``.

* **Input**: a 1x1 conv of the noisy waveform to ``C`` residual channels, ReLU.
* **Diffusion-step embedding**: ``tau`` (a float step, so samplers can ask between training
  steps) -> 128-dim sinusoidal code -> two fully connected layers (512, swish) -> per layer a
  linear map to ``C`` channels added to the layer's input.
* **Residual layers**: a *non-causal* dilated conv (kernel 3, dilation ``2^(i mod cycle)``)
  to ``2C`` channels, plus the conditioner's ``2C`` (a 1x1 conv of the upsampled mel, or of
  the global label vector broadcast in time; plus a 1x1 conv of the ``local`` sample-rate
  clocks when there are any: a pitch excitation, a note clock), then the gated tanh x sigmoid
  unit and a 1x1
  conv to ``2C``: half goes back to the residual stream (scaled by 1/sqrt(2)), half to the
  skip sum (scaled by 1/sqrt(layers)).
* **Output**: ReLU, 1x1 conv, ReLU, 1x1 conv to one channel, the last initialised to zero
  (the paper's choice: the first predictions are zero noise).
* ``in_channels`` > 1 (an addition): the same network over a multi-channel frame sequence,
  such as the source-filter envelope ``[B, 2 x bands, F]`` DiffWave's ``source_filter`` mode
  denoises; the dilated convolutions then run along frames.

Why non-causal: the whole waveform is denoised at once, so every sample may see both sides;
the receptive field per pass (``layers / cycle`` cycles of ``2^cycle - 1`` x 2 + 1 samples)
grows further with each of the T passes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

STEP_CODE = 128  # sinusoidal code of the diffusion step
STEP_HIDDEN = 512


class StepEmbedding(nn.Module):
    """A float diffusion step ``[B]`` -> ``[B, 512]`` (sinusoid, then two swish layers)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(STEP_CODE, STEP_HIDDEN)
        self.fc2 = nn.Linear(STEP_HIDDEN, STEP_HIDDEN)

    def forward(self, tau: Tensor) -> Tensor:
        half = STEP_CODE // 2
        freqs = 10.0 ** (torch.arange(half, device=tau.device) * 4.0 / (half - 1))
        angles = tau.float()[:, None] * freqs[None]
        code = torch.cat([torch.sin(angles), torch.cos(angles)], 1)
        return F.silu(self.fc2(F.silu(self.fc1(code))))


class DiffWaveLayer(nn.Module):
    """One residual layer; ``cond_channels`` 0 means unconditional, ``with_step`` False drops
    the diffusion-step input (WaveGlow's coupling networks use the same layer without it);
    ``local_channels`` > 0 adds a 1x1 conv of sample-rate clocks. The clocks have their own
    conv, not a concatenation with ``cond``, so a label vector ``[B, G, 1]`` stays broadcast
    (a concatenation would cost a ``G``-channel conv at every sample)."""

    def __init__(self, channels: int, dilation: int, cond_channels: int,
                 with_step: bool = True, local_channels: int = 0) -> None:
        super().__init__()
        self.dilated = nn.Conv1d(channels, 2 * channels, 3, padding=dilation, dilation=dilation)
        self.step = nn.Linear(STEP_HIDDEN, channels) if with_step else None
        self.cond = nn.Conv1d(cond_channels, 2 * channels, 1) if cond_channels else None
        self.local = nn.Conv1d(local_channels, 2 * channels, 1) if local_channels else None
        self.out = nn.Conv1d(channels, 2 * channels, 1)

    def forward(self, x: Tensor, step: Tensor | None, cond: Tensor | None,
                local: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x`` [B, C, T], ``step`` [B, 512] (or None), ``cond`` [B, Cc, T or 1], ``local``
        [B, Cl, T] (or None) -> (residual, skip)."""
        if self.step is not None and step is not None:
            x_in = x + self.step(step)[..., None]
        else:
            x_in = x
        h = self.dilated(x_in)
        if self.cond is not None and cond is not None:
            h = h + self.cond(cond)
        if self.local is not None and local is not None:
            h = h + self.local(local)
        gate, filt = h.chunk(2, 1)
        res, skip = self.out(torch.sigmoid(gate) * torch.tanh(filt)).chunk(2, 1)
        return (x + res) / math.sqrt(2.0), skip


class DiffWaveNet(nn.Module):
    """The denoiser of the module docstring (``cond_channels``: mel bands or label width;
    ``local_channels``: sample-rate clock channels, 0 for none)."""

    def __init__(self, channels: int, layers: int, cycle: int, cond_channels: int = 0,
                 local_channels: int = 0, in_channels: int = 1) -> None:
        super().__init__()
        self.inp = nn.Conv1d(in_channels, channels, 1)
        self.embed = StepEmbedding()
        self.layers = nn.ModuleList(
            DiffWaveLayer(channels, 2 ** (i % cycle), cond_channels,
                          local_channels=local_channels) for i in range(layers))
        self.skip = nn.Conv1d(channels, channels, 1)
        self.head = nn.Conv1d(channels, in_channels, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: Tensor, tau: Tensor, cond: Tensor | None = None,
                local: Tensor | None = None) -> Tensor:
        """``x`` [B, T] noisy audio (or [B, in_channels, T] noisy frames, e.g. a spectral
        envelope's bands), ``tau`` [B] float steps, ``cond`` [B, Cc, T or 1], ``local``
        [B, Cl, T] -> predicted noise of ``x``'s shape."""
        h = F.relu(self.inp(x[:, None] if x.dim() == 2 else x))
        step = self.embed(tau)
        total = torch.zeros_like(h)
        for layer in self.layers:
            h, skip = layer(h, step, cond, local)
            total = total + skip
        out = F.relu(self.skip(total / math.sqrt(len(self.layers))))
        out = self.head(out)
        return out[:, 0] if x.dim() == 2 else out
