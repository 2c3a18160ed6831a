"""Output distributions over quantised sample values.

A head turns the network's last 1x1 output (``num_params`` channels per time step) into a
distribution over ``levels`` discrete values and owns the audio <-> code mapping of its output
space. Every head offers the same operations:

* ``encode(audio) -> codes`` and ``decode(codes) -> audio`` (targets and generated audio),
* ``log_prob(params, codes) -> [B, T]`` in nats (the training loss is its negative mean),
* ``sample(params, uniforms, temperature) -> codes`` driven by ``uniforms_per_step`` explicit
  uniforms per draw, so a sampler that hands the same uniforms to two code paths (the cached and
  the naive re-run) gets the same codes from both,
* ``input_codes(codes)``: the 8-bit mu-law code fed back to a WaveNet as its next input.

Heads have no parameters: the projection to ``num_params`` is the network's last layer. All
arithmetic on parameters is done in float32 so mixed-precision training stays exact here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from waveloom.audio.mulaw import MU, dequantize, quantize


def _inverse_cdf(probs: Tensor, u: Tensor) -> Tensor:
    """Index ``i`` with ``cdf[i-1] <= u < cdf[i]`` for probs [B, L] and u [B] in [0, 1)."""
    cdf = probs.cumsum(-1)
    u = u.to(cdf.dtype).unsqueeze(-1).contiguous()
    idx = torch.searchsorted(cdf, u, right=True).squeeze(-1)
    return idx.clamp_(max=probs.shape[-1] - 1)


class CategoricalHead(nn.Module):
    """256-way softmax over 8-bit mu-law codes (van den Oord et al., 2016).

    ``params`` are logits [B, 256, T] (or [B, 256] for one step).
    """

    uniforms_per_step = 1

    def __init__(self) -> None:
        super().__init__()
        self.levels = MU + 1
        self.num_params = self.levels

    def encode(self, audio: Tensor) -> Tensor:
        """Audio in [-1, 1] (any shape) -> codes in [0, 255] (long)."""
        return quantize(audio)

    def decode(self, codes: Tensor) -> Tensor:
        """Codes -> audio in [-1, 1] (each code's bin centre)."""
        return dequantize(codes)

    def input_codes(self, codes: Tensor) -> Tensor:
        return codes

    def log_prob(self, params: Tensor, codes: Tensor) -> Tensor:
        """Log-probability in nats of ``codes`` [B, T] under logits [B, 256, T] -> [B, T]."""
        logp = F.log_softmax(params.float(), dim=1)
        return logp.gather(1, codes.unsqueeze(1)).squeeze(1)

    def mode(self, params: Tensor) -> Tensor:
        """Most likely code per step: [B, 256, ...] -> [B, ...]."""
        return params.argmax(dim=1)

    def probs(self, params: Tensor, temperature: float = 1.0) -> Tensor:
        """Probabilities over codes [B, 256, ...] at ``temperature`` (logits / T)."""
        return F.softmax(params.float() / temperature, dim=1)

    def sample(self, params: Tensor, uniforms: Tensor, temperature: float = 1.0) -> Tensor:
        """Draw one code per row of logits [B, 256] from uniforms [B, 1] (inverse CDF) -> [B]."""
        return _inverse_cdf(self.probs(params, temperature), uniforms[:, 0])


class DiscretizedLogisticMixtureHead(nn.Module):
    """Mixture of ``K`` discretised logistics (Salimans et al. 2017, PixelCNN++; used by
    Parallel WaveNet) over ``levels`` equally spaced values in [-1, 1].

    ``levels=256`` models 8-bit mu-law codes (the same output space as the softmax head, so the
    NLLs compare directly); ``levels=65536`` models 16-bit linear PCM. Bin ``i`` is centred at
    ``c_i = 2 i / (L-1) - 1`` with half-width ``1/(L-1)``; the two edge bins extend to
    +-infinity, so each component's bin probabilities telescope to exactly 1.

    ``params`` [B, 3K, T]: mixture logits, means, log-scales (K channels each).
    """

    uniforms_per_step = 2

    def __init__(self, components: int = 10, levels: int = MU + 1) -> None:
        super().__init__()
        if components < 1:
            raise ValueError(f"components={components} must be >= 1")
        if levels not in (MU + 1, 65536):
            raise ValueError(f"levels={levels}: use 256 (mu-law) or 65536 (16-bit linear)")
        self.components = components
        self.levels = levels
        self.num_params = 3 * components
        self.half_width = 1.0 / (levels - 1)
        # A component may sharpen to a little below one bin (so it can put ~all its mass on one
        # value) but no further, where the scale's gradients would explode. For 256 levels this
        # is ~-7.5, PixelCNN++'s choice of -7.
        self.log_scale_min = math.log(self.half_width) - 2.0

    # -- the output space
    def encode(self, audio: Tensor) -> Tensor:
        """Audio in [-1, 1] -> codes in [0, levels) (mu-law for 256, linear for 65536)."""
        if self.levels == MU + 1:
            return quantize(audio)
        return self._to_code(audio.float())

    def decode(self, codes: Tensor) -> Tensor:
        if self.levels == MU + 1:
            return dequantize(codes)
        return codes.float() * (2.0 / (self.levels - 1)) - 1.0

    def input_codes(self, codes: Tensor) -> Tensor:
        return codes if self.levels == MU + 1 else quantize(self.decode(codes))

    def _to_code(self, x: Tensor) -> Tensor:
        """Value in [-1, 1] (clamped) -> nearest level's index."""
        x = x.clamp(-1.0, 1.0)
        return torch.round((x + 1.0) * 0.5 * (self.levels - 1)).long()

    # -- the distribution
    def _split(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        k = self.components
        params = params.float()
        logits, means, log_scales = params[:, :k], params[:, k : 2 * k], params[:, 2 * k :]
        return logits, means, log_scales.clamp(min=self.log_scale_min)

    def _temper(self, params: Tensor, temperature: float) -> tuple[Tensor, Tensor, Tensor]:
        """Mixture logits / T, means, log-scales + log T: the distribution sampled at T."""
        logits, means, log_scales = self._split(params)
        if temperature == 1.0:
            return logits, means, log_scales
        return logits / temperature, means, log_scales + math.log(temperature)

    def _component_log_probs(
        self, logits: Tensor, means: Tensor, log_scales: Tensor, codes: Tensor
    ) -> Tensor:
        """log pi_k + log P(code | k): parameters [B, K, ...], codes [B, ...] -> [B, K, ...].

        Uses sigma(a) - sigma(b) = sigma(a) sigma(-b) (1 - exp(b - a)), which is exact and
        stable for bins far narrower or far wider than the component's scale.
        """
        centre = (codes.float() * (2.0 / (self.levels - 1)) - 1.0).unsqueeze(1)
        inv_s = torch.exp(-log_scales)
        a = (centre + self.half_width - means) * inv_s  # upper bin edge, standardised
        b = (centre - self.half_width - means) * inv_s  # lower bin edge
        width = (2.0 * self.half_width) * inv_s  # a - b > 0
        interior = F.logsigmoid(a) + F.logsigmoid(-b) + torch.log(-torch.expm1(-width))
        first = (codes == 0).unsqueeze(1)
        last = (codes == self.levels - 1).unsqueeze(1)
        logp = torch.where(first, F.logsigmoid(a), torch.where(last, F.logsigmoid(-b), interior))
        return logp + F.log_softmax(logits, dim=1)

    def log_prob(self, params: Tensor, codes: Tensor) -> Tensor:
        """Log-probability in nats of ``codes`` [B, T] under params [B, 3K, T] -> [B, T]."""
        logits, means, log_scales = self._split(params)
        return torch.logsumexp(self._component_log_probs(logits, means, log_scales, codes), 1)

    def probs(self, params: Tensor, temperature: float = 1.0) -> Tensor:
        """Probabilities of every level: params [B, 3K] -> [B, levels] (for tests and plots).

        At temperature T the mixture logits are divided by T and the scales multiplied by T:
        exactly the distribution :meth:`sample` draws from.
        """
        logits, means, log_scales = (p.unsqueeze(-1) for p in self._temper(params, temperature))
        codes = torch.arange(self.levels, device=params.device).expand(params.shape[0], -1)
        logp = self._component_log_probs(logits, means, log_scales, codes)  # [B, K, L]
        return torch.logsumexp(logp, dim=1).exp()

    def mode(self, params: Tensor) -> Tensor:
        """The mean of the heaviest component, discretised: [B, 3K, ...] -> [B, ...]."""
        logits, means, _ = self._split(params)
        best = logits.argmax(dim=1, keepdim=True)
        return self._to_code(means.gather(1, best).squeeze(1))

    def sample(self, params: Tensor, uniforms: Tensor, temperature: float = 1.0) -> Tensor:
        """Draw codes from params [B, 3K] with uniforms [B, 2] -> [B].

        ``uniforms[:, 0]`` picks the component (inverse CDF of the tempered mixture weights),
        ``uniforms[:, 1]`` draws from its logistic by the inverse CDF
        ``mu + s (log u - log(1 - u))``; rounding to the nearest level (edge levels take
        everything beyond +-1) gives exactly the discretised distribution of :meth:`probs`.
        """
        logits, means, log_scales = self._temper(params, temperature)
        k = _inverse_cdf(F.softmax(logits, dim=1), uniforms[:, 0]).unsqueeze(1)
        mu = means.gather(1, k).squeeze(1)
        s = log_scales.gather(1, k).squeeze(1).exp()
        u = uniforms[:, 1].to(mu.dtype).clamp(1e-7, 1.0 - 1e-7)
        return self._to_code(mu + s * (torch.log(u) - torch.log1p(-u)))


class DiscretizedGaussianHead(DiscretizedLogisticMixtureHead):
    """One discretised Gaussian (ClariNet, Ping et al. 2019) over the same ``levels`` as the
    logistic mixture: 256 mu-law codes (so its NLL compares with the softmax head's bits per
    code) or 65536 linear levels. Why a Gaussian: the KL between two Gaussians has a closed
    form, which is what lets a student be distilled from it without Monte Carlo (ClariNet's
    regularised KL). ``params`` [B, 2, T]: mean and log-scale (clamped below, as the mixture's).
    """

    uniforms_per_step = 1

    def __init__(self, levels: int = MU + 1) -> None:
        super().__init__(1, levels)
        self.num_params = 2

    def _split(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        params = params.float()
        means, log_scales = params[:, :1], params[:, 1:2]
        return torch.zeros_like(means), means, log_scales.clamp(min=self.log_scale_min)

    def _component_log_probs(
        self, logits: Tensor, means: Tensor, log_scales: Tensor, codes: Tensor
    ) -> Tensor:
        """log P(code) under N(mean, scale^2) integrated over the code's bin: [B, 1, ...].

        ``Phi(a) - Phi(b)`` is taken on the side of the mean where both tails are small
        (``Phi(-b) - Phi(-a)`` above it), in logs, so bins far in a tail keep their
        precision."""
        centre = (codes.float() * (2.0 / (self.levels - 1)) - 1.0).unsqueeze(1)
        inv_s = torch.exp(-log_scales)
        a = (centre + self.half_width - means) * inv_s
        b = (centre - self.half_width - means) * inv_s
        upper = b > 0  # the bin lies above the mean: mirror it
        hi = torch.where(upper, -b, a)
        lo = torch.where(upper, -a, b)
        log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
        interior = log_hi + torch.log(-torch.expm1((log_lo - log_hi).clamp(max=-1e-12)))
        first = (codes == 0).unsqueeze(1)
        last = (codes == self.levels - 1).unsqueeze(1)
        return torch.where(first, torch.special.log_ndtr(a),
                           torch.where(last, torch.special.log_ndtr(-b), interior))

    def gaussian(self, params: Tensor) -> tuple[Tensor, Tensor]:
        """(mean, log-scale) ``[B, ...]`` of the continuous Gaussian (the distiller's view)."""
        _, means, log_scales = self._split(params)
        return means[:, 0], log_scales[:, 0]

    def sample(self, params: Tensor, uniforms: Tensor, temperature: float = 1.0) -> Tensor:
        """Draw codes from params [B, 2] with uniforms [B, 1]: ``mean + T s Phi^-1(u)``."""
        _, means, log_scales = self._split(params)
        # float64 from the float32-clamped uniform, rounded once: the deviate the fast engine
        # and the torch-free CLI path compute (waveloom.sampling.uniforms.normal_deviates),
        # exact in the tails where float32's 2u - 1 loses the uniform's low bits
        u = uniforms[:, 0].float().clamp(1e-7, 1.0 - 1e-7).double()
        z = (math.sqrt(2.0) * torch.erfinv(2.0 * u - 1.0)).to(means.dtype)
        return self._to_code(means[:, 0] + temperature * log_scales[:, 0].exp() * z)


def build_head(kind: str, components: int = 10, levels: int = MU + 1) -> nn.Module:
    """``'categorical'``, ``'logistic_mixture'`` or ``'gaussian'`` -> a head module."""
    if kind == "categorical":
        return CategoricalHead()
    if kind == "logistic_mixture":
        return DiscretizedLogisticMixtureHead(components, levels)
    if kind == "gaussian":
        return DiscretizedGaussianHead(levels)
    raise ValueError(f"unknown head {kind!r}: use 'categorical', 'logistic_mixture' or "
                     "'gaussian'")
