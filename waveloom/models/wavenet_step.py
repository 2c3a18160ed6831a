"""One WaveNet sample as a pure function of its caches, for ``waveloom export``.

The fast engine (:mod:`waveloom.sampling.fast`) keeps every layer's past inputs in ring
buffers it updates in place. A host that runs an exported file instead passes them in and gets
them back, so :class:`WaveNetStep` takes them as tensors::

    code [B] int64          the previous sample's code (mu-law index)
    pitch, instrument [B]   int64 labels (-1 = unknown), as the checkpoint's vocabulary says
    position, onset [B]     int64: the step's index on the sampling timeline and the note's
                            onset there (the pitch excitation and note clock read them)
    queue_0 [B, C_in, K-1]  the input convolution's last K-1 inputs
    queue_i [B, C_res, (K-1) d_i]   layer i's last (K-1) d_i inputs, oldest first

and returns the head's parameters ``[B, P]`` for the next sample (logits over the 256 mu-law
codes for the categorical head) and every queue shifted by one. Sampling (softmax, a draw,
mu-law decoding) stays in the host.

Starting from zero queues gives the network's own zero padding (what ``forward(padded=True)``
sees). The engine instead starts from ``receptive_field - 1`` codes of silence: to match it,
step the silence code (128) that many times first, with ``position`` counting from 0.

Each queue is a shift register: ``cat(queue[..., 1:], x)``. That is exact and exports to any
runtime, but it copies every cache on every sample, so an exported step is far slower than
the engine's in-place rings. It is meant for portability (ONNX Runtime, libtorch), not as the
fast path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from waveloom.errors import ConfigError
from waveloom.models.export_spec import ExportSpec


class WaveNetStep(nn.Module):
    """See the module docstring; ``model`` is a loaded :class:`~waveloom.models.wavenet.
    WaveNet` whose local input, if any, is the pitch excitation and note clock only."""

    def __init__(self, model) -> None:
        super().__init__()
        if model.upsample is not None:
            raise ConfigError(f"a WaveNet conditioned on a {model.config.local} needs its "
                              "upsampled features per step; only pitch/instrument (and the "
                              "excitation and note clock) WaveNets export yet")
        self.model, self.stack = model, model.stack
        conv = self.stack.input_conv
        self.sizes = [conv.kernel_size[0] - 1] + [
            (b.conv.kernel_size[0] - 1) * b.conv.dilation[0] for b in self.stack.blocks]
        self.local = model.config.pitch_excitation or model.config.note_clock

    def initial_queues(self, batch: int = 1) -> list[Tensor]:
        """Zero queues (the network's zero padding)."""
        s = self.stack
        first = s.input_conv.in_channels
        return [torch.zeros(batch, first if i == 0 else s.residual_channels, n)
                for i, n in enumerate(self.sizes)]

    def _local(self, pitch: Tensor, position: Tensor, onset: Tensor) -> Tensor | None:
        """The excitation and clock features of this step [B, L] (as ``_clock_features``)."""
        if not self.local:
            return None
        c, parts = self.model.config, []
        times = (position - onset)[:, None]
        if c.pitch_excitation:
            at = times if c.excitation_phase == "onset" else position[:, None]
            parts.append(self.model._excitation(pitch, at, random_phase=False))
        if c.note_clock:
            parts.append(self.model._note_clock(times))
        return torch.cat(parts, dim=1)[..., 0]

    def forward(self, code: Tensor, pitch: Tensor, instrument: Tensor, position: Tensor,
                onset: Tensor, *queues: Tensor) -> tuple[Tensor, ...]:
        s = self.stack
        x_in = s._inputs(code[:, None])  # [B, C_in, 1]
        window = torch.cat([queues[0], x_in], dim=2)
        x = F.conv1d(window, s.input_conv.weight, s.input_conv.bias)  # [B, C_res, 1]
        new = [window[:, :, 1:]]
        g = None
        if self.model.global_cond is not None:
            g = self.model.global_cond(pitch, instrument, batch=code.shape[0], dropout=False)
        local = self._local(pitch, position, onset)
        skip = None
        for block, queue in zip(s.blocks, queues[1:]):
            history = torch.cat([queue, x], dim=2)
            d = block.conv.dilation[0]
            h = F.conv1d(history[:, :, ::d], block.conv.weight, block.conv.bias)[..., 0]
            if block.global_proj is not None:
                h = h + block.global_proj(g)
            if block.local_proj is not None:
                h = h + F.linear(local, block.local_proj.weight[:, :, 0])
            c = block.dilation_channels
            z = (torch.tanh(h[:, :c]) * torch.sigmoid(h[:, c:]))[..., None]
            out = block.skip(z)
            skip = out if skip is None else skip + out
            if block.res is not None:
                x = x + block.res(z)
            new.append(history[:, :, 1:])
        params = s.out2(F.relu(s.out1(F.relu(skip))))[..., 0]
        return (params, *new)


def export_spec(model) -> ExportSpec:
    """The WaveNet's single step with its caches as state (module docstring)."""
    step = WaveNetStep(model).eval()
    n = len(step.sizes)
    names = [f"queue_{i}" for i in range(n)]
    levels = model.stack.input_levels

    def example(seed: int) -> tuple[Tensor, ...]:
        g = torch.Generator().manual_seed(seed)
        queues = [torch.randn(q.shape, generator=g) * 0.5 for q in step.initial_queues(2)]
        code = torch.randint(0, levels, (2,), generator=g)
        pitch = torch.tensor([60, -1])
        instrument = torch.tensor([0, -1])
        position = torch.randint(0, 20000, (2,), generator=g)
        return (code, pitch, instrument, position, position - 100, *queues)

    dynamic = {name: {0: "batch"} for name in
               ["code", "pitch", "instrument", "position", "onset", "params", *names,
                *(f"{q}_out" for q in names)]}
    c = model.config
    info = {"sample_rate": int(c.sample_rate), "head": c.head,
            "params": int(model.head.num_params), "input_levels": int(levels),
            "receptive_field": int(model.stack.receptive_field),
            "silence_code": levels // 2, "instruments": model.global_cond is not None,
            "start": "zero queues = zero padding; the engine's start is receptive_field - 1 "
                     "steps of the silence code",
            "queues": {name: list(q.shape[1:]) for name, q in
                       zip(names, step.initial_queues(1))}}
    return ExportSpec(module=step, examples=[example(0), example(1)],
                      inputs=["code", "pitch", "instrument", "position", "onset", *names],
                      outputs=["params", *(f"{q}_out" for q in names)], dynamic=dynamic,
                      state=[(q, f"{q}_out") for q in names], info=info)
