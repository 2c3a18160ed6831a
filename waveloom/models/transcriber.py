"""A transcriber: audio in, notes out (Onsets and Frames, Hawthorne et al. 2018, sized down).

Why a family: the compose chain needs ears. Wave2Midi2Wave transcribes audio into notes, and
issue #23 judges every audio system (compose, the roll WaveNet, the hierarchical ADA) through
the same transcriber. The model reads a log-mel (229 bands, 16 ms hop at 16 kHz), runs a shared
conv stack (:class:`~waveloom.nn.onsets_frames.AcousticStack`), and predicts over 88 keys:

* onsets, offsets and velocities from one bidirectional GRU over the acoustic features;
* frames from a second GRU that reads the acoustic frame guess *and* the onset and offset
  predictions (detached, as the paper does), so a note's frames start where its onset is.

Training: binary cross-entropy on onsets, offsets and frames, and the squared error of the
velocity at onset frames. The model never generates audio (``generates_audio = False``); notes
come from :mod:`waveloom.evaluate.transcription` (decoding and mir_eval scores) and
``waveloom transcribe``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from waveloom.audio.spectral import mel_spectrogram
from waveloom.config import ModelConfig, SamplingOptions, require_positive
from waveloom.data.note_labels import LABELS, N_KEYS
from waveloom.errors import ConfigError, DataError
from waveloom.models.base import Batch, Generative
from waveloom.nn.onsets_frames import AcousticStack, BiGRU


@dataclass
class TranscriberConfig(ModelConfig):
    """Hyper-parameters; defaults are the ``small`` preset (configs/transcriber/)."""

    sample_rate: int = 16000
    n_fft: int = 2048
    hop: int = 256  # 16 ms frames: half the 50 ms onset tolerance is 3 frames
    n_mels: int = 229
    fmin: float = 30.0
    conv_channels: int = 16
    width: int = 256  # acoustic features per frame
    units: int = 128  # GRU units per direction
    dropout: float = 0.25
    onset_weight: float = 1.0  # of the onset loss against the others
    # Weight of the positive (sounding / starting) frames in the BCE of onsets, offsets and
    # frames. 1 is the paper's plain BCE; onsets are ~0.1 % of (frame, key) cells, and in a
    # CPU budget of a few thousand steps plain BCE stalled at "no onset anywhere" (measured:
    # overfitting 4 windows for 60 steps, onset probability 0.005 at onsets and 0.004 elsewhere;
    # with 10, 0.052 against 0.014). docs/transcriber.md.
    pos_weight: float = 1.0
    # Extra weight of an onset that starts while other notes hold (no onset of theirs within
    # +-2 frames). On FluidR3's held-out choir such onsets are found 12 % of the time against
    # 52 % for whole-chord changes (docs/transcriber.md), and they are a quarter of the choir's
    # onsets; 1 counts every onset cell alike, as the paper does.
    held_onset_weight: float = 1.0
    # Extra weight of the onset BCE's negatives on a key that holds (sounding, no onset of its
    # own within +-2 frames) while another key starts within +-2 frames: the mirror of
    # held_onset_weight. On FluidR3 the held-weighted model re-triggered the held keys of a
    # chord when one voice moved (392 of its 814 false notes on 12 test chorales,
    # docs/transcriber.md); 1 is the paper's plain BCE.
    held_key_weight: float = 1.0

    def validate(self) -> None:
        require_positive(self, "sample_rate", "n_fft", "hop", "n_mels", "fmin", "conv_channels",
                         "width", "units", "onset_weight", "pos_weight",
                         "held_onset_weight", "held_key_weight")
        if self.n_mels < 4:
            raise ConfigError(f"model.n_mels={self.n_mels}: need at least 4 bands")
        if self.fmin >= self.sample_rate / 2:
            raise ConfigError(f"model.fmin={self.fmin} must be below Nyquist")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout={self.dropout} must be in [0, 1)")


class Transcriber(Generative):
    """``forward(audio [B, T]) -> logits`` ``{'onset', 'offset', 'frame', 'velocity'}``, each
    ``[B, T // hop, 88]`` (keys MIDI 21-108); :meth:`probabilities` applies the sigmoids."""

    config_class: ClassVar[type[ModelConfig]] = TranscriberConfig
    config: TranscriberConfig
    #: An analysis model: the contract's audio-sampling tests and ``generate`` do not apply.
    generates_audio: ClassVar[bool] = False

    def __init__(self, config: TranscriberConfig) -> None:
        super().__init__(config)
        c = config
        self.acoustic = AcousticStack(c.n_mels, c.conv_channels, c.width, c.dropout)
        self.onset_rnn = BiGRU(c.width, c.units)
        self.onset = nn.Linear(2 * c.units, N_KEYS)
        self.offset = nn.Linear(2 * c.units, N_KEYS)
        self.velocity = nn.Linear(2 * c.units, N_KEYS)
        self.frame_guess = nn.Linear(c.width, N_KEYS)
        self.frame_rnn = BiGRU(3 * N_KEYS, c.units)
        self.frame = nn.Linear(2 * c.units, N_KEYS)

    def mel(self, audio: Tensor) -> Tensor:
        """Log-mel ``[B, T // hop, n_mels]``: centred frames, frame k at sample k * hop."""
        c = self.config
        mel = mel_spectrogram(audio, c.sample_rate, c.n_fft, c.hop, c.n_mels, c.fmin)
        return mel[..., : audio.shape[-1] // c.hop].transpose(1, 2)

    def forward(self, audio: Tensor) -> dict[str, Tensor]:
        if audio.dim() != 2 or audio.shape[-1] < self.config.hop:
            raise DataError(f"audio of shape {tuple(audio.shape)}: a transcriber needs [B, T] "
                            f"with at least one frame ({self.config.hop} samples)")
        x = self.acoustic(self.mel(audio))
        h = self.onset_rnn(x)
        out = {"onset": self.onset(h), "offset": self.offset(h), "velocity": self.velocity(h)}
        guide = torch.cat([torch.sigmoid(self.frame_guess(x)),
                           torch.sigmoid(out["onset"]).detach(),
                           torch.sigmoid(out["offset"]).detach()], dim=-1)
        out["frame"] = self.frame(self.frame_rnn(guide))
        return out

    @torch.no_grad()
    def probabilities(self, audio: Tensor) -> dict[str, Tensor]:
        """Sigmoids of :meth:`forward` (velocity as velocity / 127), ``[B, T // hop, 88]``."""
        return {k: torch.sigmoid(v) for k, v in self(audio).items()}

    def batch_keys(self) -> tuple[str, ...]:
        return LABELS

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Onset (weighted), offset and frame BCE plus the velocity error at onsets."""
        missing = [k for k in ("audio", *LABELS) if k not in batch]
        if missing:
            raise DataError(f"transcriber batch lacks {missing}; train it on a cache with "
                            "scores (prepare --format maestro)")
        logits = self(batch["audio"])
        weight = torch.tensor(self.config.pos_weight, device=batch["audio"].device)
        cells = {"onset": self.onset_cell_weights(batch["onset"], batch["frame"])}
        bce = {k: F.binary_cross_entropy_with_logits(logits[k].float(), batch[k],
                                                     weight=cells.get(k), pos_weight=weight)
               for k in ("onset", "offset", "frame")}
        at_onset = batch["onset"]
        vel_err = (torch.sigmoid(logits["velocity"].float()) - batch["velocity"]) ** 2
        velocity = (vel_err * at_onset).sum() / at_onset.sum().clamp_min(1.0)
        loss = (self.config.onset_weight * bce["onset"] + bce["offset"] + bce["frame"]
                + velocity)
        return {"loss": loss, "onset_bce": bce["onset"].detach(),
                "frame_bce": bce["frame"].detach(), "velocity_mse": velocity.detach()}

    def onset_cell_weights(self, onset: Tensor, frame: Tensor) -> Tensor | None:
        """Per-cell weights ``[B, T, 88]`` of the onset BCE: ``held_onset_weight`` at onsets
        that start while another key sounds without an onset of its own within +-2 frames
        (32 ms at the 16 ms hop: inside the 50 ms scoring tolerance); ``held_key_weight`` on
        such a holding key (sounding, no onset of its own within +-2 frames) while some other
        key starts within +-2 frames; 1 elsewhere. ``None`` when both weights are 1 (the plain
        loss, and no extra work)."""
        c = self.config
        if c.held_onset_weight == 1.0 and c.held_key_weight == 1.0:
            return None
        b, t, k = onset.shape
        per_key = F.avg_pool1d(onset.transpose(1, 2).reshape(b * k, 1, t), 5, stride=1,
                               padding=2, count_include_pad=True).reshape(b, k, t) * 5
        own_onset = (per_key.transpose(1, 2) > 0.1).to(onset.dtype)  # [B, T, 88]: +-2 frames
        holding = frame * (1.0 - own_onset)  # sounding keys that did not just start
        lone = onset * (holding.sum(-1, keepdim=True) > 0.5).to(onset.dtype)
        starting = (own_onset.sum(-1, keepdim=True) > 0.5).to(onset.dtype)  # [B, T, 1]
        held_key = holding * starting
        return (1.0 + (c.held_onset_weight - 1.0) * lone
                + (c.held_key_weight - 1.0) * held_key)

    def generate(self, n: int, length: int, cond: dict[str, Any] | None = None,
                 options: SamplingOptions | None = None) -> Tensor:
        raise ConfigError("a transcriber turns audio into notes and generates no audio; use "
                          "`waveloom transcribe CKPT AUDIO... --out DIR`")

    def example_batch(self, batch_size: int, length: int, seed: int = 0) -> Batch:
        """Random audio with random sparse labels for ``length // hop`` frames."""
        batch = super().example_batch(batch_size, length, seed)
        g = torch.Generator().manual_seed(seed + 1)
        frames = length // self.config.hop
        for key in LABELS:
            batch[key] = (torch.rand(batch_size, frames, N_KEYS, generator=g) < 0.02).float()
        return {k: batch[k] for k in ("audio", *LABELS)}
