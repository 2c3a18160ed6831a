"""The layers of an Onsets-and-Frames transcriber (Hawthorne et al. 2018), sized down.

``AcousticStack``: a log-mel ``[B, F, n_mels]`` through three 3x3 convolutions (batch norm,
ReLU; frequency max-pooled by 2 after the second and the third) and a linear layer: ``[B, F,
width]``. ``BiGRU``: a bidirectional GRU ``[B, F, in] -> [B, F, 2 units]``. A GRU, not the
paper's LSTM: three gates against four, so about 3/4 of the recurrent cost for the same width
on a CPU (docs/transcriber.md).
"""

from __future__ import annotations

from torch import Tensor, nn


class AcousticStack(nn.Module):
    """Log-mel frames ``[B, F, n_mels]`` -> features ``[B, F, width]``."""

    def __init__(self, n_mels: int, channels: int, width: int, dropout: float = 0.25):
        super().__init__()

        def conv(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.convs = nn.Sequential(
            *conv(1, channels), *conv(channels, channels), nn.MaxPool2d((1, 2)),
            nn.Dropout(dropout), *conv(channels, 2 * channels), nn.MaxPool2d((1, 2)),
            nn.Dropout(dropout))
        self.linear = nn.Sequential(nn.Linear(2 * channels * (n_mels // 4), width),
                                    nn.Dropout(dropout))

    def forward(self, mel: Tensor) -> Tensor:
        x = self.convs(mel.unsqueeze(1))  # [B, 2C, F, n_mels // 4]
        b, c, f, m = x.shape
        return self.linear(x.permute(0, 2, 1, 3).reshape(b, f, c * m))


class BiGRU(nn.Module):
    """``[B, F, in] -> [B, F, 2 units]`` (forward and backward states side by side)."""

    def __init__(self, inputs: int, units: int):
        super().__init__()
        self.rnn = nn.GRU(inputs, units, batch_first=True, bidirectional=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.rnn(x)[0]
