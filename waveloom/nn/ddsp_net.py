"""The networks of the DDSP family (Engel et al. 2020): controls decoder and MFCC encoder.

Both run at the control frame rate (``F`` frames, frame ``i`` centred on sample ``i * hop``) and
are causal in time (one-directional GRUs, per-frame MLPs), so they stream frame by frame with
the GRU state carried (:meth:`DDSPDecoder.forward` takes and returns it).

Decoder (the paper's "RnnFcDecoder")::

    f0 scaled [B, F, 1] ── MLP ─┐
    loudness scaled [B,F,1] MLP ├─ concat [B, F, n_in] ── GRU(hidden) ──┐
    z [B, F, D] (ae) ── MLP ────┘          └──────────── concat ────────┴─ MLP ─ Linear
                                              -> raw controls [B, F, n_out]

Each MLP layer is Linear -> LayerNorm -> LeakyReLU. The raw outputs are turned into synth
controls by the model (:func:`exp_sigmoid` for the amplitude and the noise magnitudes, a
softmax for the harmonic distribution).

Encoder (ae): MFCCs of the audio at the frame rate -> LayerNorm -> GRU -> Linear -> z
[B, F, D]. The MFCCs are the DCT-II (orthonormal) of the log mel magnitudes of centred frames.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from waveloom.audio.spectral import mel_spectrogram


def exp_sigmoid(x: Tensor, exponent: float = 10.0, max_value: float = 2.0,
                threshold: float = 1e-7) -> Tensor:
    """``max_value * sigmoid(x) ** ln(exponent) + threshold``: a positive output whose log is
    roughly linear in ``x`` over a wide range (DDSP's scaling for amplitudes), never zero."""
    return max_value * torch.sigmoid(x) ** math.log(exponent) + threshold


def mlp(in_dim: int, hidden: int, layers: int) -> nn.Sequential:
    """``layers`` x (Linear -> LayerNorm -> LeakyReLU), ``in_dim`` -> ``hidden``."""
    parts: list[nn.Module] = []
    for i in range(layers):
        parts += [nn.Linear(in_dim if i == 0 else hidden, hidden), nn.LayerNorm(hidden),
                  nn.LeakyReLU()]
    return nn.Sequential(*parts)


class DDSPDecoder(nn.Module):
    """(f0 scaled, loudness scaled, z) per frame -> ``n_outputs`` raw controls per frame."""

    def __init__(self, hidden: int, n_outputs: int, z_dims: int = 0, mlp_layers: int = 3):
        super().__init__()
        self.f0_mlp = mlp(1, hidden, mlp_layers)
        self.loudness_mlp = mlp(1, hidden, mlp_layers)
        self.z_mlp = mlp(z_dims, hidden, mlp_layers) if z_dims else None
        n_in = hidden * (3 if z_dims else 2)
        self.gru = nn.GRU(n_in, hidden, batch_first=True)
        self.out_mlp = mlp(n_in + hidden, hidden, mlp_layers)
        self.out = nn.Linear(hidden, n_outputs)

    def forward(self, f0_scaled: Tensor, loudness_scaled: Tensor, z: Tensor | None = None,
                state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``[B, F]``, ``[B, F]``, ``[B, F, D]`` or None, GRU state ``[1, B, hidden]`` or None
        -> (raw controls ``[B, F, n_outputs]``, GRU state after the last frame)."""
        parts = [self.f0_mlp(f0_scaled.unsqueeze(-1)),
                 self.loudness_mlp(loudness_scaled.unsqueeze(-1))]
        if self.z_mlp is not None:
            if z is None:
                raise ValueError("this decoder takes z [B, F, D]")
            parts.append(self.z_mlp(z))
        x = torch.cat(parts, dim=-1)
        y, state = self.gru(x, state)
        return self.out(self.out_mlp(torch.cat([x, y], dim=-1))), state


def dct_matrix(n_out: int, n_in: int) -> Tensor:
    """Orthonormal DCT-II ``[n_out, n_in]``: row ``k`` is ``c_k cos(pi k (2n + 1) / (2 n_in))``."""
    n = torch.arange(n_in, dtype=torch.float64)
    k = torch.arange(n_out, dtype=torch.float64).unsqueeze(1)
    basis = torch.cos(math.pi * k * (2 * n + 1) / (2 * n_in)) * math.sqrt(2.0 / n_in)
    basis[0] /= math.sqrt(2.0)
    return basis.float()


class MFCCEncoder(nn.Module):
    """Audio ``[B, T]`` -> z ``[B, T // hop, z_dims]`` (see the module docstring)."""

    def __init__(self, sample_rate: int, hop: int, z_dims: int, hidden: int, n_mfcc: int = 30,
                 n_mels: int = 128, n_fft: int = 1024):
        super().__init__()
        self.sample_rate, self.hop, self.n_mels, self.n_fft = sample_rate, hop, n_mels, n_fft
        self.register_buffer("dct", dct_matrix(n_mfcc, n_mels), persistent=False)
        self.norm = nn.LayerNorm(n_mfcc)
        self.gru = nn.GRU(n_mfcc, hidden, batch_first=True)
        self.out = nn.Linear(hidden, z_dims)

    def mfcc(self, audio: Tensor) -> Tensor:
        """``[B, T]`` -> MFCCs ``[B, T // hop, n_mfcc]`` (frame ``i`` centred on ``i * hop``)."""
        frames = audio.shape[-1] // self.hop
        logmel = mel_spectrogram(audio, self.sample_rate, self.n_fft, self.hop, self.n_mels)
        return torch.matmul(self.dct.to(logmel.dtype), logmel[..., :frames]).transpose(1, 2)

    def forward(self, audio: Tensor) -> Tensor:
        y, _ = self.gru(self.norm(self.mfcc(audio)))
        return self.out(y)
