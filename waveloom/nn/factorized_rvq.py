"""Residual VQ with a projection per codebook (DAC's factorised codes, Kumar et al. 2023).

Why not vector-quantize-pytorch's ``ResidualVQ(codebook_dim=d)``: it projects the latents
*once* to ``d`` dimensions and runs the whole residual stack there, so every codebook refines
the same ``d`` numbers per frame and the decoder never sees more than a rank-``d`` image of
the latent, however many codebooks are kept. The shipped CPU codec (``dim`` 64, ``d`` 8)
scores the same at 1.5 and 6 kbps (docs/codec.md, "bitrate-blind"). DAC gives each codebook
its own ``dim -> d -> dim`` projections and keeps the residual in the full ``dim``: codebook
``k`` looks up what the ones before it left in whatever ``d`` directions it chooses, so later
codebooks can add dimensions, not only precision.

Each layer is vector-quantize-pytorch's ``VectorQuantize`` (k-means initialisation, EMA
updates, dead-code replacement, its commitment loss in the projected space), which is why the
stack is a thin loop and not a rewrite. One term is added per layer: the mean squared error
between its output ``project_out(code)`` and the residual it was given (``residual_weight``).
Nothing else asks ``project_out`` to map a code back to where its input was: the EMA codebook
and the commitment loss live in the projected space. Without it the first layer's output was
4x the latent's norm away from it after 250 steps of the CPU preset, so the next layer spent
its bits re-coding the first one's output (relative error 4.0, 5.5, 8.1, 10.6 with 1, 2, 4, 8
codebooks, measured). ``project_out`` is kept out of the reconstruction's gradient, as an EMA
codebook is: each layer is then a small quantized PCA of what is left, and the error falls
with every codebook kept. Quantizer dropout, as in SoundStream: in training,
each batch keeps the first ``n`` codebooks, ``n`` uniform in 1..n_q, drawn from torch's
generator (so a seeded run is repeatable); the dropped layers' codes are -1, as ResidualVQ's.

Shapes follow ResidualVQ's so the codec uses either: ``forward(x [B, F, dim]) -> (quantized
[B, F, dim], codes [B, F, n_q], losses [n_q])``; ``get_output_from_indices(codes [B, F, k])
-> [B, F, dim]`` with the first ``k`` codebooks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from waveloom.nn.rvq_lookup import check_codebooks, lookup_level


def _layer_outputs(layer: nn.Module, residual: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
    """In training, ``layer``'s output for the decoder and its decode loss, both from the code
    ``idx`` it chose for ``residual``.

    - The output is ``project_out(code)`` with the straight-through gradient reaching
      ``project_in`` and the encoder but not ``project_out``. Otherwise the reconstruction
      makes ``project_out`` part of the decoder (measured: outputs of norm ~1.2 for latents of
      norm 0.36 at step 500 despite the decode loss) and the residual handed on stops meaning
      what is left to code. An EMA codebook without projections is kept out of the
      reconstruction's gradient the same way.
    - The decode loss is the MSE between the decoded code and the residual, through the
      layer's own projections only (the residual detached): it trains ``project_in`` and
      ``project_out`` as a quantized linear autoencoder of the residual and leaves the encoder
      to the reconstruction and commitment losses.
    """
    code = layer.get_codes_from_indices(idx)
    inner = layer.project_in(residual)
    out = layer.project_out
    to_decoder = F.linear(inner + (code - inner).detach(), out.weight.detach(), out.bias.detach())
    target = residual.detach()
    inner = layer.project_in(target)
    return to_decoder, F.mse_loss(out(inner + (code - inner).detach()), target)


class FactorizedRVQ(nn.Module):
    """``n_q`` codebooks of ``codebook_size`` entries of ``codebook_dim``, each behind its own
    ``dim <-> codebook_dim`` projections; the residual stays ``dim``-wide."""

    def __init__(self, dim: int, n_q: int, codebook_size: int, codebook_dim: int, *,
                 quantize_dropout: bool = True, residual_weight: float = 1.0,
                 **vq_kwargs: object) -> None:
        super().__init__()
        from vector_quantize_pytorch import VectorQuantize

        self.layers = nn.ModuleList(
            VectorQuantize(dim=dim, codebook_size=codebook_size, codebook_dim=codebook_dim,
                           **vq_kwargs) for _ in range(n_q))
        with torch.no_grad():  # each layer starts as a projection onto its input's subspace
            for layer in self.layers:
                inverse = torch.linalg.pinv(layer.project_in.weight)
                layer.project_out.weight.copy_(inverse)
                layer.project_out.bias.copy_(-inverse @ layer.project_in.bias)
        self.quantize_dropout = quantize_dropout and n_q > 1
        self.residual_weight = residual_weight
        # No shared projection: the per-level outputs below already live in ``dim``.
        self.project_in = nn.Identity()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Latents ``[B, F, dim]`` -> (quantized, codes ``[B, F, n_q]``, losses ``[n_q]``)."""
        n_q = len(self.layers)
        keep = n_q
        if self.training and self.quantize_dropout:
            keep = int(torch.randint(1, n_q + 1, ()).item())
        residual, total = x, torch.zeros_like(x)
        codes = torch.full((*x.shape[:-1], n_q), -1, dtype=torch.long, device=x.device)
        losses = torch.zeros(n_q, device=x.device, dtype=x.dtype)
        for k, layer in enumerate(self.layers[:keep]):
            q, idx, loss = layer(residual)
            if self.training:
                q, decode_loss = _layer_outputs(layer, residual, idx)
                loss = loss.sum() + self.residual_weight * decode_loss
            residual = residual - q.detach()
            total = total + q
            codes[..., k] = idx
            losses[k] = loss.sum()
        return total, codes, losses

    def get_codes_from_indices(self, indices: Tensor) -> Tensor:
        """Codes ``[B, F, k]`` -> each level's contribution ``[k, B, F, dim]`` (zero where a
        code is -1, a dropped level)."""
        check_codebooks(indices.shape[-1], len(self.layers))
        return torch.stack([lookup_level(self.layers[k].get_output_from_indices, indices[..., k])
                            for k in range(indices.shape[-1])])

    def get_output_from_indices(self, indices: Tensor) -> Tensor:
        """Codes ``[B, F, k]`` of the first ``k`` codebooks -> latents ``[B, F, dim]``."""
        return self.get_codes_from_indices(indices).sum(0)
