"""Inverse autoregressive flows with Gaussian noise: a student that samples a clip in one pass.

Parallel WaveNet (van den Oord et al. 2018) and ClariNet (Ping et al. 2019) distil an
autoregressive teacher into a stack of IAFs. Flow ``k`` maps its input ``x^{k-1}`` [B, T] to

    x^k_t = x^{k-1}_t * s^k_t + m^k_t,     (m^k_t, log s^k_t) = WaveNet_k(x^{k-1}_{<t})

where each WaveNet is causal and reads its input shifted by one sample, so step ``t``'s shift
and scale depend only on earlier samples. All ``T`` samples of a flow are computed at once (no
sampling loop), which is the point: the student is as parallel as a GAN.

Starting from white noise ``z = x^0 ~ N(0, 1)``, each ``x^K_t`` is an affine function of
``z_t`` whose coefficients depend on ``z_{<t}`` only, so given the past the sample is exactly
Gaussian (ClariNet, sec. 3.2):

    x^K_t = z_t * S_t + M_t,   S_t = prod_k s^k_t,   M_t = sum_k m^k_t prod_{j>k} s^j_t

That closed form is what lets the distillation loss be the KL between the student's and the
teacher's Gaussians at every step, with no Monte Carlo over ``x_t``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from waveloom.nn.wavenet import WaveNetStack

#: Lower bound on a flow's log-scale: a scale may shrink the noise ~1000x per flow, no further
#: (the gradient of the KL's -log S term explodes as S -> 0).
LOG_SCALE_MIN = -7.0


def shift_right(x: Tensor) -> Tensor:
    """``[B, T]`` -> the same shifted one step later, zero first (step t then sees x_<t)."""
    return torch.nn.functional.pad(x, (1, 0))[:, :-1]


class IAFStack(nn.Module):
    """``K`` inverse autoregressive flows, each a causal :class:`WaveNetStack` over its input's
    value (``input='scalar'``) giving a shift and a log-scale per sample.

    ``stacks``: one :class:`WaveNetStack` per flow with ``out_channels=2`` and scalar input,
    built by the family (so every flow shares the family's conditioning widths).
    """

    def __init__(self, stacks: list[WaveNetStack]) -> None:
        super().__init__()
        for stack in stacks:
            if stack.input != "scalar" or stack.out2.out_channels != 2:
                raise ValueError("each flow needs a scalar-input stack with 2 outputs")
        self.flows = nn.ModuleList(stacks)
        for stack in stacks:  # start near the identity: a small shift, a scale near 1
            nn.init.normal_(stack.out2.weight, std=1e-3)
            nn.init.zeros_(stack.out2.bias)

    def forward(self, z: Tensor, g: Tensor | None = None, l: Tensor | None = None,
                chunk: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Noise ``z`` [B, T] (+ global ``g`` [B, G], local ``l`` [B, L, T]) -> ``(x, mean,
        log_scale)``, each [B, T]: the sample and the Gaussian it was drawn from given its past
        (``x == z * exp(log_scale) + mean``).

        ``chunk``: run each flow over spans of this many samples, each with its receptive
        field of left context, so activations take memory for a span, not for the whole
        clip (the same result: each output still sees its full past)."""
        x = z
        mean = torch.zeros_like(z)
        log_scale = torch.zeros_like(z)
        for stack in self.flows:
            params = self._flow_params(stack, shift_right(x), g, l, chunk)
            shift = params[:, 0].float()
            log_s = params[:, 1].float().clamp(min=LOG_SCALE_MIN)
            x = x * log_s.exp() + shift
            mean = mean * log_s.exp() + shift
            log_scale = log_scale + log_s
        return x, mean, log_scale

    @staticmethod
    def _flow_params(stack: WaveNetStack, inputs: Tensor, g: Tensor | None, l: Tensor | None,
                     chunk: int | None) -> Tensor:
        """``stack(inputs, g, l, padded=True)`` [B, 2, T], span by span when ``chunk``."""
        length = inputs.shape[-1]
        if chunk is None or length <= chunk:
            return stack(inputs, g, l, padded=True)
        context = stack.receptive_field - 1
        spans = []
        for start in range(0, length, chunk):
            lo, hi = max(0, start - context), min(length, start + chunk)
            local = None if l is None else l[..., lo:hi]
            spans.append(stack(inputs[:, lo:hi], g, local, padded=True)[..., start - lo:])
        return torch.cat(spans, dim=-1)


def gaussian_kl(mean_q: Tensor, log_scale_q: Tensor, mean_p: Tensor, log_scale_p: Tensor
                ) -> Tensor:
    """``KL(N(mean_q, s_q^2) || N(mean_p, s_p^2))`` elementwise, in nats: the reverse KL of a
    student ``q`` from its teacher ``p`` (ClariNet eq. 7)."""
    var_ratio = torch.exp(2.0 * (log_scale_q - log_scale_p))
    diff = (mean_q - mean_p) * torch.exp(-log_scale_p)
    return log_scale_p - log_scale_q + 0.5 * (var_ratio + diff.pow(2) - 1.0)
