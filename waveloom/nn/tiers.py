"""SampleRNN's layers (Mehri et al. 2017): a frame-rate RNN tier and the sample-level MLP.

Each carries its incremental path beside its sequence path, tested for equality with it (via
the model's stateful sampler in tests/test_samplernn.py):

* :class:`FrameTier` - ``forward`` over N frames; ``step`` for one frame through the fused
  GRU/LSTM cell kernels with the same weights.
* :class:`SampleMLP` - ``forward`` as a convolution over code embeddings; ``step`` from a table
  of every (code, tap) pair already pushed through the first layer.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class FrameTier(nn.Module):
    """One frame-level tier: frames [B, N, F] (+ the tier above's vectors [B, N, H]) -> an RNN
    over the N frames -> ``ratio`` vectors of ``out_dim`` per frame for the tier below.

    :meth:`step` is ``forward`` for one frame through the RNN's own weights in the fused cell
    kernels (a whole-sequence RNN call per frame costs more in set-up than in arithmetic).
    """

    def __init__(self, frame: int, ratio: int, hidden: int, out_dim: int, rnn: str, layers: int,
                 global_dim: int, learn_h0: bool, local_dim: int = 0) -> None:
        super().__init__()
        self.ratio, self.out_dim, self.lstm = ratio, out_dim, rnn == "lstm"
        self.input = nn.Linear(frame, hidden)
        self.global_proj = nn.Linear(global_dim, hidden, bias=False) if global_dim else None
        # Sample-rate features of the frame being predicted (``local_dim`` per sample), e.g. the
        # pitch clock: the tier knows where in the note and in the period its frame falls.
        self.local_proj = nn.Linear(frame * local_dim, hidden, bias=False) if local_dim else None
        self.rnn = (nn.LSTM if self.lstm else nn.GRU)(hidden, hidden, layers, batch_first=True)
        self.upsample = nn.Linear(hidden, ratio * out_dim)
        shape = (2 if self.lstm else 1, layers, 1, hidden)
        self.h0 = nn.Parameter(torch.zeros(shape), requires_grad=learn_h0)

    def initial_state(self, batch: int) -> Any:
        h0 = self.h0.expand(-1, -1, batch, -1).contiguous()
        return (h0[0], h0[1]) if self.lstm else h0[0]

    def forward(self, frames: Tensor, above: Tensor | None, g: Tensor | None,
                state: Any, local: Tensor | None = None) -> tuple[Tensor, Any]:
        """frames [B, N, F], above [B, N, H] or None, g [B, G] or None, state (GRU h or LSTM
        (h, c), each [layers, B, H]; None: the learnt initial state), local [B, N, F * L] (the
        predicted frames' features, when the tier has ``local_dim``) ->
        ([B, N * ratio, out_dim], state after frame N)."""
        x = self.input(frames)
        if above is not None:
            x = x + above
        if self.local_proj is not None:
            x = x + self.local_proj(local)
        if self.global_proj is not None:
            x = x + self.global_proj(g).unsqueeze(1)
        if state is None:
            state = self.initial_state(x.shape[0])
        elif self.training and self.h0.requires_grad:
            # A carried state leaves h0 out of the graph; DDP wants a gradient for every
            # parameter in every update, so give it an exact zero one.
            x = x + 0.0 * self.h0.sum()
        out, state = self.rnn(x, state)
        b, n = out.shape[:2]
        return self.upsample(out).reshape(b, n * self.ratio, self.out_dim), state

    def step(self, frame: Tensor, above: Tensor | None, g_bias: Tensor | None,
             state: Any, local: Tensor | None = None) -> tuple[Tensor, Any]:
        """One frame [B, F] (+ above [B, H], ``global_proj(g)`` [B, H], local [B, F * L]) ->
        ([B, ratio, out], state); ``state`` as in :meth:`forward` (None: the initial state)."""
        x = self.input(frame)
        if above is not None:
            x = x + above
        if self.local_proj is not None:
            x = x + self.local_proj(local)
        if g_bias is not None:
            x = x + g_bias
        if state is None:
            state = self.initial_state(x.shape[0])
        rnn, hs, cs = self.rnn, [], []
        for i in range(rnn.num_layers):
            weights = [getattr(rnn, f"{name}_l{i}")
                       for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            if self.lstm:
                h, c = torch.lstm_cell(x, (state[0][i], state[1][i]), *weights)
                cs.append(c)
            else:
                h = torch.gru_cell(x, state[i], *weights)
            hs.append(h)
            x = h
        state = (torch.stack(hs), torch.stack(cs)) if self.lstm else torch.stack(hs)
        return self.upsample(x).view(x.shape[0], self.ratio, self.out_dim), state


class SampleMLP(nn.Module):
    """Sample-level module: the last ``inputs`` codes (learnt embeddings) + this sample's vector
    from the lowest tier -> logits over the 256 levels."""

    def __init__(self, inputs: int, levels: int, embedding_dim: int, hidden: int, layers: int,
                 global_dim: int, local_dim: int = 0) -> None:
        super().__init__()
        self.inputs, self.embedding_dim = inputs, embedding_dim
        self.embedding = nn.Embedding(levels, embedding_dim)
        # Row-major over (tap, embedding): tap 0 is the oldest sample.
        self.input = nn.Linear(inputs * embedding_dim, hidden)
        self.global_proj = nn.Linear(global_dim, hidden, bias=False) if global_dim else None
        self.local_proj = nn.Linear(local_dim, hidden, bias=False) if local_dim else None
        self.hidden = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers - 1))
        self.out = nn.Linear(hidden, levels)
        self.register_buffer("taps", torch.arange(inputs), persistent=False)

    def _tail(self, x: Tensor) -> Tensor:
        x = F.relu(x)
        for layer in self.hidden:
            x = F.relu(layer(x))
        return self.out(x)

    def forward(self, codes: Tensor, cond: Tensor, g: Tensor | None,
                local: Tensor | None = None) -> Tensor:
        """codes [B, T + inputs - 1], cond [B, T, H], local [B, T, L] (each predicted sample's
        own features, when the MLP has ``local_dim``) -> logits [B, levels, T]."""
        emb = self.embedding(codes).transpose(1, 2)  # [B, E, T + inputs - 1]
        w = self.input.weight.view(-1, self.inputs, self.embedding_dim).permute(0, 2, 1)
        x = F.conv1d(emb, w, self.input.bias).transpose(1, 2) + cond
        if self.global_proj is not None:
            x = x + self.global_proj(g).unsqueeze(1)
        if self.local_proj is not None:
            x = x + self.local_proj(local)
        return self._tail(x).transpose(1, 2)

    def step_table(self) -> Tensor:
        """[levels * inputs, H]: row ``code * inputs + tap`` is the code's embedding through
        the tap's slice of the input layer, so a sampling step's first layer is one
        ``embedding_bag`` sum of ``inputs`` rows instead of an embedding and a product."""
        w = self.input.weight.view(-1, self.inputs, self.embedding_dim)
        table = torch.einsum("qe,hfe->qfh", self.embedding.weight, w)
        return table.reshape(-1, table.shape[-1]).contiguous()

    def step(self, table: Tensor, codes: Tensor, cond: Tensor, bias: Tensor) -> Tensor:
        """codes [B, inputs] (oldest first), cond [B, H] (the lowest tier's vector, plus
        ``local_proj`` of this sample's features when the MLP has them: the sampler adds it
        once per frame), ``bias`` = the input layer's bias (+ ``global_proj(g)``) ->
        logits [B, levels]."""
        x = F.embedding_bag(codes * self.inputs + self.taps, table, mode="sum")
        return self._tail(x + bias + cond)
