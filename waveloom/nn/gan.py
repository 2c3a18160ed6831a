"""Layers and losses the adversarial families share (WaveGAN, SpecGAN, GANSynth, MelGAN).

Everything random here takes an explicit ``torch.Generator`` (or ``None`` for the global CPU
RNG): the trainer's exact resume restores the global RNG, and an evaluation-mode loss is made
deterministic by passing a seeded generator. Random numbers are drawn on the CPU and moved, so
a run draws the same numbers on any device.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

__all__ = [
    "Conv2dDiscriminator",
    "PhaseShuffle",
    "PixelNorm",
    "ResidualStack",
    "Upsample2dGenerator",
    "feature_matching",
    "gradient_penalty",
    "hinge_d",
    "hinge_g",
    "minibatch_stddev",
    "randint",
    "randn",
    "slerp",
    "wasserstein_d",
    "wasserstein_g",
    "wn_conv1d",
    "wn_conv_transpose1d",
]


def randn(shape: Sequence[int], gen: torch.Generator | None, device: torch.device | str
          ) -> Tensor:
    """Standard normal draws made on the CPU (seedable, device independent), then moved."""
    return torch.randn(tuple(shape), generator=gen).to(device)


def randint(high: int, shape: Sequence[int], gen: torch.Generator | None) -> Tensor:
    """Integers in ``[0, high)`` drawn on the CPU (see :func:`randn`)."""
    return torch.randint(0, high, tuple(shape), generator=gen)


# ------------------------------------------------------------------------------- layers


class PhaseShuffle(nn.Module):
    """WaveGAN's phase shuffle (Donahue et al. 2019, sec. 3.3): shift each example's feature map
    by a random ``k`` in ``[-n, n]`` samples, filling the gap by reflection.

    Transposed convolutions leave periodic artifacts at fixed phases; a discriminator that can
    rely on them rejects fakes trivially. Jittering the phase of its intermediate features makes
    it invariant to small shifts. Every channel of an example moves by the same ``k``; the
    shift is drawn per example. Identity when ``n == 0``.
    """

    def __init__(self, n: int) -> None:
        super().__init__()
        if n < 0:
            raise ValueError(f"phase shuffle radius {n} must be >= 0")
        self.n = int(n)

    def forward(self, x: Tensor, gen: torch.Generator | None = None) -> Tensor:
        """``x`` [B, C, T] (T > n) -> [B, C, T]."""
        if self.n == 0:
            return x
        b, _, t = x.shape
        if t <= self.n:
            raise ValueError(f"phase shuffle radius {self.n} needs more than {self.n} samples")
        shifts = randint(2 * self.n + 1, (b,), gen) - self.n
        padded = F.pad(x, (self.n, self.n), mode="reflect")
        # Output sample i of an example shifted by k is input sample i - k (reflected at edges):
        # padded index i - k + n.
        index = torch.arange(t, device=x.device)[None, :] - shifts.to(x.device)[:, None] + self.n
        return padded.gather(2, index[:, None, :].expand(-1, x.shape[1], -1))


class EqualizedLinear(nn.Linear):
    """``nn.Linear`` with the equalised learning rate of Karras et al. 2018 (progressive GANs,
    GANSynth): weights drawn N(0, 1) and scaled at run time by ``gain / sqrt(fan_in)``, so Adam's
    per-parameter step moves every layer at the same relative rate whatever its fan-in.
    ``gain`` sqrt(2) before a (leaky) ReLU, 1 for an output layer."""

    def __init__(self, in_features: int, out_features: int, gain: float = math.sqrt(2.0)
                 ) -> None:
        super().__init__(in_features, out_features)
        nn.init.normal_(self.weight)
        nn.init.zeros_(self.bias)
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class EqualizedConv2d(nn.Conv2d):
    """``nn.Conv2d`` with the equalised learning rate (see :class:`EqualizedLinear`)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, *, stride: int = 1, padding: int = 0,
                 gain: float = math.sqrt(2.0)) -> None:
        super().__init__(c_in, c_out, kernel, stride=stride, padding=padding)
        nn.init.normal_(self.weight)
        nn.init.zeros_(self.bias)
        self.scale = gain / math.sqrt(c_in * kernel * kernel)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.weight * self.scale, self.bias)


def _conv2d(equalized: bool, c_in: int, c_out: int, kernel: int, *, stride: int = 1,
            padding: int = 0, gain: float = math.sqrt(2.0)) -> nn.Conv2d:
    if equalized:
        return EqualizedConv2d(c_in, c_out, kernel, stride=stride, padding=padding, gain=gain)
    return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding)


def _linear(equalized: bool, n_in: int, n_out: int, gain: float = math.sqrt(2.0)) -> nn.Linear:
    return EqualizedLinear(n_in, n_out, gain) if equalized else nn.Linear(n_in, n_out)


class PixelNorm(nn.Module):
    """Normalise each position's feature vector to unit RMS (Karras et al. 2018; GANSynth's
    generator): keeps the generator's signal magnitudes from escalating without batch
    statistics, which would couple the examples of a batch."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def minibatch_stddev(x: Tensor, group: int = 4) -> Tensor:
    """Append one channel holding the average standard deviation of the features across a group
    of examples (Karras et al. 2018): a discriminator that sees batch diversity penalises a
    collapsed generator. ``x`` [B, C, ...] -> [B, C + 1, ...]; ``group`` must divide B (it is
    reduced to a divisor of B)."""
    b = x.shape[0]
    g = math.gcd(min(group, b), b)
    y = x.reshape(g, b // g, *x.shape[1:]).float()
    std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()  # [B/g, C, ...]
    mean = std.mean(dim=tuple(range(1, std.dim())), keepdim=True)  # [B/g, 1, 1...]
    mean = mean.repeat(g, *([1] * (std.dim() - 1))).to(x.dtype)
    return torch.cat([x, mean.expand(b, 1, *x.shape[2:])], dim=1)


def wn_conv1d(*args, **kwargs) -> nn.Module:
    """``nn.Conv1d`` under weight normalisation (MelGAN uses it in both networks instead of
    batch/spectral norm: it keeps the sample-wise independence the audio quality needs)."""
    return weight_norm(nn.Conv1d(*args, **kwargs))


def wn_conv_transpose1d(*args, **kwargs) -> nn.Module:
    """Weight-normalised ``nn.ConvTranspose1d`` (MelGAN's upsampling layers)."""
    return weight_norm(nn.ConvTranspose1d(*args, **kwargs))


class ResidualStack(nn.Module):
    """MelGAN's residual stack: blocks of LeakyReLU -> dilated conv (k=3, dilations 1, 3, 9,
    ...) -> LeakyReLU -> 1x1 conv, added to a 1x1 shortcut. The growing dilation gives each
    output sample a wide receptive field over the upsampled features, so the long-range
    correlation of audio need not come from the upsampling layers alone."""

    def __init__(self, channels: int, dilations: Sequence[int] = (1, 3, 9)) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.LeakyReLU(0.2),
                nn.ReflectionPad1d(d),
                wn_conv1d(channels, channels, 3, dilation=d),
                nn.LeakyReLU(0.2),
                wn_conv1d(channels, channels, 1),
            )
            for d in dilations
        )
        self.shortcuts = nn.ModuleList(wn_conv1d(channels, channels, 1) for _ in dilations)

    def forward(self, x: Tensor) -> Tensor:
        for block, shortcut in zip(self.blocks, self.shortcuts):
            x = shortcut(x) + block(x)
        return x


class Upsample2dGenerator(nn.Module):
    """Latent [B, Z] -> image [B, out_channels, H, W] by doubling both axes ``layers`` times.

    The DCGAN-style stack of SpecGAN (transposed 5x5 convolutions, ReLU) or, with
    ``pixel_norm``, GANSynth's (nearest upsampling + 3x3 convolutions, LeakyReLU, pixel norm:
    the progressive-GAN generator without the progressive schedule). ``tanh`` output in [-1, 1].
    """

    def __init__(self, latent: int, out_channels: int, height: int, width: int, layers: int,
                 channels: int, *, pixel_norm: bool = False, max_channels: int = 512,
                 equalized: bool = False) -> None:
        super().__init__()
        if height % 2**layers or width % 2**layers:
            raise ValueError(f"{height}x{width} is not divisible by 2**{layers}")
        self.h0, self.w0 = height >> layers, width >> layers
        widths = [min(max_channels, channels * 2 ** (layers - i)) for i in range(layers + 1)]
        self.c0 = widths[0]
        # PGGAN's first layer maps the latent to a 4x4 image with gain sqrt(2) / 4
        self.dense = _linear(equalized, latent, self.c0 * self.h0 * self.w0, math.sqrt(2.0) / 4)
        self.pixel_norm = PixelNorm() if pixel_norm else nn.Identity()
        act: Callable[[], nn.Module] = (lambda: nn.LeakyReLU(0.2)) if pixel_norm else nn.ReLU
        blocks = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            if pixel_norm:
                blocks.append(nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    _conv2d(equalized, c_in, c_out, 3, padding=1), act(), PixelNorm(),
                    _conv2d(equalized, c_out, c_out, 3, padding=1), act(), PixelNorm(),
                ))
            else:
                blocks.append(nn.Sequential(
                    nn.ConvTranspose2d(c_in, c_out, 5, stride=2, padding=2, output_padding=1),
                    act(),
                ))
        self.blocks = nn.Sequential(*blocks)
        self.act = act()
        self.out = _conv2d(equalized, widths[-1], out_channels, 1 if pixel_norm else 3,
                           padding=0 if pixel_norm else 1, gain=1.0)

    def forward(self, z: Tensor) -> Tensor:
        x = self.dense(z).view(z.shape[0], self.c0, self.h0, self.w0)
        x = self.blocks(self.pixel_norm(self.act(x)))
        return torch.tanh(self.out(x))


class Conv2dDiscriminator(nn.Module):
    """Image [B, C, H, W] -> (score [B], features, class logits [B, classes] or None).

    Strided 5x5 convolutions with LeakyReLU(0.2) halving both axes ``layers`` times, an optional
    minibatch-stddev channel before the last layer, and linear heads: one score and, with
    ``classes > 0``, an auxiliary classifier (GANSynth's pitch head). No normalisation: a
    WGAN-GP critic must not couple the examples of a batch.
    """

    def __init__(self, in_channels: int, height: int, width: int, layers: int, channels: int,
                 *, classes: int = 0, stddev: bool = False, max_channels: int = 512,
                 equalized: bool = False) -> None:
        super().__init__()
        widths = [min(max_channels, channels * 2**i) for i in range(layers)]
        self.convs = nn.ModuleList()
        c_in = in_channels
        for c_out in widths:
            self.convs.append(_conv2d(equalized, c_in, c_out, 5, stride=2, padding=2))
            c_in = c_out
        self.stddev = stddev
        flat = (c_in + int(stddev)) * (height >> layers) * (width >> layers)
        self.score = _linear(equalized, flat, 1, gain=1.0)
        self.classify = _linear(equalized, flat, classes, gain=1.0) if classes > 0 else None

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor], Tensor | None]:
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
            feats.append(x)
        if self.stddev:
            x = minibatch_stddev(x)
        flat = x.flatten(1)
        logits = self.classify(flat) if self.classify is not None else None
        return self.score(flat).squeeze(-1), feats, logits


# ------------------------------------------------------------------------------- losses


def wasserstein_d(real: Tensor, fake: Tensor) -> Tensor:
    """WGAN critic loss ``E[D(fake)] - E[D(real)]`` (minimised by the critic)."""
    return fake.mean() - real.mean()


def wasserstein_g(fake: Tensor) -> Tensor:
    """WGAN generator loss ``-E[D(fake)]``."""
    return -fake.mean()


def hinge_d(real: Tensor, fake: Tensor) -> Tensor:
    """Hinge discriminator loss ``E[relu(1 - D(real))] + E[relu(1 + D(fake))]`` (MelGAN)."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_g(fake: Tensor) -> Tensor:
    """Hinge generator loss ``-E[D(fake)]``."""
    return -fake.mean()


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                     gen: torch.Generator | None = None) -> Tensor:
    """WGAN-GP penalty ``E[(||grad_x D(x)||_2 - 1)^2]`` at random interpolates of real and fake
    (Gulrajani et al. 2017), one mixing weight per example. Differentiable in the critic's
    parameters (``create_graph``) and computed with autograd enabled even when called under
    ``torch.no_grad`` (an evaluation loss still reports it)."""
    b = real.shape[0]
    alpha = torch.rand((b,) + (1,) * (real.dim() - 1), generator=gen).to(real)
    with torch.enable_grad():
        mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
        score = critic(mixed)
        (grad,) = torch.autograd.grad(score.sum(), mixed, create_graph=True)
    norm = grad.flatten(1).norm(dim=1)
    return (norm - 1.0).pow(2).mean()


def feature_matching(real: Sequence[Tensor], fake: Sequence[Tensor]) -> Tensor:
    """MelGAN's feature-matching loss for one discriminator (Kumar et al. 2019, eq. 5): the L1
    distance between its features of real and fake audio, averaged within each layer and
    *summed* over layers; real features are constants.

    Summed, not averaged: with 6 feature layers an average is 6x weaker than the paper's
    loss, and the 10x weight the paper tunes against the adversarial term then leaves the
    generator with almost no pull towards the real signal's level (measured: a small MelGAN
    trained 4,200 steps with averaged layers and discriminators, 18x weaker in all, still
    output audio at 1/30 of the real notes' RMS)."""
    if not real:
        raise ValueError("feature matching needs at least one feature map")
    return sum(F.l1_loss(f, r.detach()) for r, f in zip(real, fake))


def slerp(a: Tensor, b: Tensor, t: Tensor | float) -> Tensor:
    """Spherical interpolation between latents ``a`` and ``b`` [..., Z] at ``t`` in [0, 1].

    Gaussian latents live near a sphere; a straight line between two of them passes through
    lower-norm points the generator rarely saw, while the great-circle path keeps the norm.
    Falls back to the straight line when the two are (anti)parallel.
    """
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    if t.dim() == 0:
        t = t.reshape(1)
    t = t.reshape(-1, *([1] * a.dim()))
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.arccos((an * bn).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    curved = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / so
    straight = (1 - t) * a + t * b
    return torch.where(so.abs() < 1e-6, straight, curved)
