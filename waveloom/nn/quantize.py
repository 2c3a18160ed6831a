"""Discrete bottlenecks: continuous encoder frames -> codes + what the decoder sees.

Two bottlenecks share one interface, :class:`QuantizerOutput`, so an autoregressive discrete
autoencoder (:mod:`waveloom.models.ada`) does not care which one it has:

* :class:`VectorQuantizer` -- VQ-VAE (van den Oord et al. 2017): nearest codebook vector,
  straight-through gradient, commitment loss, codebook learnt by exponential moving averages
  (no codebook gradient) and dead codes re-seeded from the batch. The codebook arithmetic is
  the ``vector-quantize-pytorch`` library's; this class only adapts it to the interface and adds
  usage statistics.
* :class:`ArgmaxQuantizer` -- the argmax autoencoder (AMAE) of Dieleman, van den Oord and
  Simonyan 2018: the encoder emits K scores per frame, the code is their argmax and the
  decoder sees the one-hot (through a learnt K -> D embedding), with a straight-through
  gradient into the normalised scores and the paper's diversity loss keeping every code in use.

Shapes: encoder frames ``[B, C_in, F]`` in, codes ``[B, F]`` long and quantized vectors
``[B, D, F]`` out. Usage statistics (perplexity, dead codes) are computed the same way for both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: A code whose running share of the frames falls below ``DEAD_FRACTION / K`` counts as dead.
DEAD_FRACTION = 0.01
#: Decay of the running code-usage histogram behind ``dead_codes``.
USAGE_DECAY = 0.99


@dataclass
class QuantizerOutput:
    """What a bottleneck returns for encoder frames ``[B, C_in, F]``.

    codes: ``[B, F]`` long in ``[0, K)``.
    quantized: ``[B, D, F]`` the decoder's input; carries the straight-through gradient.
    losses: weighted auxiliary terms to add to the training loss (e.g. 'commitment',
        'diversity'); empty when none apply.
    stats: detached numbers to log: 'perplexity' (exp of the entropy of this batch's code
        histogram: K when all codes are equally used, 1 when one code is), 'used_codes' (codes
        seen in this batch), 'dead_codes' (codes whose running usage is ~0).
    """

    codes: Tensor
    quantized: Tensor
    losses: dict[str, Tensor] = field(default_factory=dict)
    stats: dict[str, Tensor] = field(default_factory=dict)


def perplexity(codes: Tensor, codebook_size: int) -> Tensor:
    """``exp(H)`` of the histogram of ``codes`` (any shape, values in ``[0, K)``): a float
    scalar between 1 (one code used) and K (all used equally)."""
    return perplexity_of_counts(torch.bincount(codes.reshape(-1), minlength=codebook_size))


def perplexity_of_counts(counts: Tensor) -> Tensor:
    """``exp(H)`` of a usage histogram ``[K]`` (what :func:`perplexity` takes of codes; a
    caller that already counts, such as ``encode-codes``, passes its counts)."""
    counts = counts.float()
    p = counts / counts.sum().clamp(min=1.0)
    entropy = -(p * torch.log(p.clamp(min=1e-12))).sum()
    return entropy.exp()


class Quantizer(nn.Module):
    """Base of the bottlenecks: keeps a running usage histogram for the ``dead_codes`` stat.

    Subclasses set ``codebook_size`` (K), ``in_channels`` (encoder channels it reads) and
    ``dim`` (channels of ``quantized``) and implement :meth:`forward` and :meth:`embed`.
    """

    codebook_size: int
    in_channels: int
    dim: int

    def __init__(self, codebook_size: int) -> None:
        super().__init__()
        if codebook_size < 2:
            raise ValueError(f"codebook_size={codebook_size} must be >= 2")
        self.codebook_size = codebook_size
        self.register_buffer("usage", torch.full((codebook_size,), 1.0 / codebook_size))

    def forward(self, z: Tensor) -> QuantizerOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def embed(self, codes: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Codes ``[B, F]`` -> the decoder's vectors ``[B, D, F]`` (what ``quantized`` holds)."""
        raise NotImplementedError

    @torch.no_grad()
    def _stats(self, codes: Tensor) -> dict[str, Tensor]:
        k = self.codebook_size
        counts = torch.bincount(codes.reshape(-1), minlength=k).float()
        if self.training:
            share = counts / counts.sum().clamp(min=1.0)
            self.usage.mul_(USAGE_DECAY).add_(share.to(self.usage), alpha=1 - USAGE_DECAY)
        return {
            "perplexity": perplexity(codes, k),
            "used_codes": (counts > 0).sum().float(),
            "dead_codes": (self.usage < DEAD_FRACTION / k).sum().float(),
        }


class VectorQuantizer(Quantizer):
    """VQ-VAE bottleneck backed by ``vector_quantize_pytorch.VectorQuantize``.

    The encoder's ``in_channels`` are projected to ``dim`` by the library when they differ.
    ``decay`` is the EMA decay of the codebook, ``commitment_weight`` the beta of
    ``beta * ||z - sg(e)||^2``, ``dead_code_threshold`` the EMA cluster size below which a code
    is replaced by a random encoder frame of the batch (0 disables revival). The rotation trick
    is off: the gradient is the plain straight-through one the paper describes.
    """

    def __init__(
        self,
        in_channels: int,
        dim: int,
        codebook_size: int,
        decay: float = 0.99,
        commitment_weight: float = 0.25,
        dead_code_threshold: float = 1.0,
        kmeans_init: bool = False,
    ) -> None:
        super().__init__(codebook_size)
        from vector_quantize_pytorch import VectorQuantize

        self.in_channels, self.dim = in_channels, dim
        self.proj_in = nn.Conv1d(in_channels, dim, 1) if in_channels != dim else None
        self.vq = VectorQuantize(
            dim=dim,
            codebook_size=codebook_size,
            decay=decay,
            commitment_weight=commitment_weight,
            threshold_ema_dead_code=dead_code_threshold,
            kmeans_init=kmeans_init,
            channel_last=False,
            rotation_trick=False,
        )

    @property
    def codebook(self) -> Tensor:
        """The current codebook ``[K, D]`` (EMA-updated in training)."""
        return self.vq.codebook

    def forward(self, z: Tensor) -> QuantizerOutput:
        if self.proj_in is not None:
            z = self.proj_in(z)
        # The library's distances and EMA run in float32 whatever the autocast dtype.
        with torch.autocast(z.device.type, enabled=False):
            quantized, codes, commit = self.vq(z.float())
        losses = {"commitment": commit.reshape(())} if self.training else {}
        return QuantizerOutput(codes, quantized.to(z.dtype), losses, self._stats(codes))

    def embed(self, codes: Tensor) -> Tensor:
        return self.codebook[codes].transpose(1, 2).contiguous()


class _StraightThroughOneHot(torch.autograd.Function):
    """Forward: one-hot of the argmax over dim 1; backward: the gradient passes unchanged."""

    @staticmethod
    def forward(ctx, q: Tensor) -> Tensor:  # type: ignore[override]
        return F.one_hot(q.argmax(1), q.shape[1]).movedim(-1, 1).to(q.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        return grad


class ArgmaxQuantizer(Quantizer):
    """AMAE bottleneck (Dieleman et al. 2018, sec. 3.2).

    The encoder outputs K scores per frame. They are made non-negative (ReLU) and normalised
    to sum to one, ``q = relu(s) / sum_k relu(s)``; the code is ``argmax_k q``. The decoder
    sees ``E onehot(code)`` with a learnt embedding ``E`` [D, K]; in the backward pass the
    one-hot is replaced by ``q`` (straight-through), so the encoder learns. Nothing forces a
    frame's scores towards one-hot, so the paper adds a *diversity loss* on the batch-mean of
    the normalised scores, ``|| K * mean(q) - 1 ||^2`` (zero exactly when every code gets the
    same share on average): without it the argmax collapses onto a few codes. (The paper's
    full text was not at hand here; the loss is written from its description.) ``eps`` keeps
    the normalisation finite when all scores of a frame are <= 0.
    """

    def __init__(self, codebook_size: int, dim: int, diversity_weight: float = 0.1,
                 eps: float = 1e-6) -> None:
        super().__init__(codebook_size)
        self.in_channels, self.dim = codebook_size, dim
        self.diversity_weight, self.eps = diversity_weight, eps
        self.embedding = nn.Conv1d(codebook_size, dim, 1, bias=False)

    def normalised(self, scores: Tensor) -> Tensor:
        """Scores ``[B, K, F]`` -> non-negative ``q`` summing to 1 over K."""
        r = F.relu(scores.float())
        return r / (r.sum(1, keepdim=True) + self.eps)

    def diversity_loss(self, q: Tensor) -> Tensor:
        """``|| K * mean_{B,F}(q) - 1 ||^2`` for normalised scores ``q`` [B, K, F]."""
        mean = q.mean(dim=(0, 2))
        return ((self.codebook_size * mean - 1.0) ** 2).sum()

    def forward(self, z: Tensor) -> QuantizerOutput:
        q = self.normalised(z)
        # Ties (e.g. all scores <= 0) resolve to the lowest index, as argmax does.
        onehot = _StraightThroughOneHot.apply(q)
        codes = q.argmax(1)
        quantized = self.embedding(onehot.to(z.dtype))
        losses = {}
        if self.training and self.diversity_weight > 0:
            losses["diversity"] = self.diversity_weight * self.diversity_loss(q)
        return QuantizerOutput(codes, quantized, losses, self._stats(codes))

    def embed(self, codes: Tensor) -> Tensor:
        return self.embedding.weight[:, :, 0][:, codes].movedim(0, 1).contiguous()


def build_quantizer(
    kind: str,
    in_channels: int,
    dim: int,
    codebook_size: int,
    *,
    decay: float = 0.99,
    commitment_weight: float = 0.25,
    dead_code_threshold: float = 1.0,
    diversity_weight: float = 0.1,
) -> Quantizer:
    """``'vqvae'`` or ``'amae'`` -> a bottleneck (AMAE reads ``codebook_size`` encoder
    channels, so ``in_channels`` must equal it)."""
    if kind == "vqvae":
        return VectorQuantizer(in_channels, dim, codebook_size, decay, commitment_weight,
                               dead_code_threshold)
    if kind == "amae":
        if in_channels != codebook_size:
            raise ValueError(f"AMAE reads K={codebook_size} scores, not {in_channels} channels")
        return ArgmaxQuantizer(codebook_size, dim, diversity_weight)
    raise ValueError(f"unknown bottleneck {kind!r}: use 'vqvae' or 'amae'")


def bits_per_code(codebook_size: int) -> float:
    """log2 K: what one frame of codes costs at most."""
    return math.log2(codebook_size)
