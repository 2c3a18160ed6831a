"""Block-by-block DDSP: the decoder's GRU state and the synthesiser's state carried across blocks.

Every part of the model is causal per frame except the synthesiser's two frames of look-ahead
(:mod:`waveloom.nn.ddsp.stream`): the decoder's MLPs act per frame and its GRU runs forward, so
feeding frames in blocks with the GRU state carried gives the same controls as one pass, and
:class:`~waveloom.nn.ddsp.stream.SynthStream` turns them into the same audio. The ae encoder
reads audio, not controls: compute z beforehand (``model.encode``) and push it with the frames.
At 250 frames/s a 10 ms block is 2 or 3 frames; any block size works (zero included).
"""

from __future__ import annotations

import torch
from torch import Tensor

from waveloom.nn.ddsp.stream import LOOK_AHEAD, SynthStream

__all__ = ["LOOK_AHEAD", "DDSPStream"]


class DDSPStream:
    """``push(f0_hz [B, n], loudness_db [B, n], z [B, n, D] | None, noise [B, n*hop] | None)``
    -> the audio completed so far (two frames behind); ``flush()`` -> the rest. The outputs
    concatenated equal ``model.render`` of all the frames (given the same noise)."""

    def __init__(self, model, batch: int = 1, generator: torch.Generator | None = None):
        self.model, self.batch = model, int(batch)
        self.state: Tensor | None = None
        self.synth = SynthStream(model.config.sample_rate, model.hop, model.reverb, generator)

    @torch.no_grad()
    def push(self, f0_hz: Tensor, loudness_db: Tensor, z: Tensor | None = None,
             noise: Tensor | None = None) -> Tensor:
        if f0_hz.shape[1] == 0:
            return f0_hz.new_zeros(f0_hz.shape[0], 0)
        z = self.model._z_or_mean(z, f0_hz)
        ctl, self.state = self.model.controls(f0_hz, loudness_db, z, self.state)
        return self.synth.push(f0_hz, ctl["amplitude"], ctl["distribution"], ctl["magnitudes"],
                               noise)

    @torch.no_grad()
    def flush(self) -> Tensor:
        return self.synth.flush()
