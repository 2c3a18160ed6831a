"""Decoding residual-VQ codes without vector-quantize-pytorch (the codec's fast start-up).

Why: the codec is built on vector-quantize-pytorch's ``ResidualVQ``, whose import pulls in
einx and, through it, ``torch._dynamo`` and sympy: about 1.4 s before a single code is decoded
(``python -X importtime``, docs/codec.md). Drawing notes from a codec LM only decodes, and a
decode is a table lookup: ``latents = project_out(sum_k codebook_k[codes_k])`` (the first
``k`` codebooks; a coarser bitrate simply sums fewer), or with a projection per codebook
``sum_k project_out_k(codebook_k[codes_k])``. :class:`RVQLookup` holds the same
tensors under the same names as ``ResidualVQ``'s state dict, so a codec checkpoint loads into
it strictly, and its :meth:`get_output_from_indices` equals ``ResidualVQ``'s (tested).

It cannot quantize: encoding needs the nearest-code search, k-means initialisation and EMA
updates of the real thing, so calling it is a clear error.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from waveloom.errors import ConfigError


def check_codebooks(k: int, n_q: int) -> None:
    """Codes of ``k`` codebooks for a quantizer of ``n_q``: a clear line when ``k > n_q``."""
    if k > n_q:
        raise ConfigError(f"{k} codebooks of codes for a quantizer of {n_q}")


def lookup_level(decode: Callable[[Tensor], Tensor], indices: Tensor) -> Tensor:
    """One level's decoded codes ``decode(indices)``, zero where a code is -1 (a level that
    quantizer dropout skipped, as ResidualVQ marks it)."""
    out = decode(indices.clamp_min(0))
    return out * (indices >= 0).unsqueeze(-1).to(out.dtype)


class _Codebook(nn.Module):
    """The buffers of one ResidualVQ layer's ``_codebook`` (only ``embed`` is used)."""

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("initted", torch.tensor(True))
        self.register_buffer("cluster_size", torch.zeros(1, size))
        self.register_buffer("embed", torch.zeros(1, size, dim))
        self.register_buffer("embed_avg", torch.zeros(1, size, dim))


class _Layer(nn.Module):
    """One codebook, and with ``outer`` its own ``outer <-> dim`` projections (a
    :class:`~waveloom.nn.factorized_rvq.FactorizedRVQ` layer, as ``VectorQuantize`` names them)."""

    def __init__(self, size: int, dim: int, outer: int = 0) -> None:
        super().__init__()
        self._codebook = _Codebook(size, dim)
        if outer:
            self.project_in = nn.Linear(outer, dim)
            self.project_out = nn.Linear(dim, outer)

    def decode(self, indices: Tensor) -> Tensor:
        out = self._codebook.embed[0][indices]
        return self.project_out(out) if hasattr(self, "project_out") else out


class RVQLookup(nn.Module):
    """``n_q`` codebooks of ``size`` entries of ``codebook_dim`` (``dim`` when 0 or None), and
    the ``dim`` <-> ``codebook_dim`` projections ResidualVQ adds when they differ: one shared
    pair, or with ``per_codebook`` one pair per codebook (FactorizedRVQ's layout)."""

    def __init__(self, dim: int, n_q: int, size: int, codebook_dim: int | None = None,
                 per_codebook: bool = False) -> None:
        super().__init__()
        inner = codebook_dim or dim
        self.layers = nn.ModuleList(_Layer(size, inner, dim if per_codebook else 0)
                                    for _ in range(n_q))
        projected = inner != dim and not per_codebook
        self.project_in = nn.Linear(dim, inner) if projected else nn.Identity()
        self.project_out = nn.Linear(inner, dim) if projected else nn.Identity()

    def get_output_from_indices(self, indices: Tensor) -> Tensor:
        """Codes ``[B, F, k]`` of the first ``k`` codebooks -> latents ``[B, F, dim]``."""
        k = indices.shape[-1]
        check_codebooks(k, len(self.layers))
        total = sum(lookup_level(self.layers[q].decode, indices[..., q]) for q in range(k))
        return self.project_out(total)

    def forward(self, *args: object, **kwargs: object) -> None:
        raise ConfigError("this codec was loaded to decode only (no vector-quantize-pytorch); "
                          "load it with waveloom.models.load.load_checkpoint to encode audio")
