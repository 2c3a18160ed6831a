"""The model contract every family implements (see DESIGN.md, "The model contract").

The trainer, the sampler CLI, the evaluator and the contract tests only ever talk to these
methods, which is what lets a new family plug into all of them with one file and one registry
line.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from waveloom.config import ModelConfig, SamplingOptions
from waveloom.errors import ConfigError

Batch = dict[str, Tensor]


class Generative(nn.Module):
    """A model that can be trained on batches and sampled from.

    A batch is a dict: ``audio`` [B, T] float in [-1, 1], ``pitch`` [B] long (MIDI),
    ``instrument`` [B] long, ``velocity`` [B] long, optionally ``mel`` [B, M, T/hop] or
    ``roll`` [B, 128, T/hop].
    """

    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    #: Recurrent families set this: they implement :meth:`loss_chunk`, scored window by
    #: window with the state carried (``evaluate nll`` reads it); their registry line names
    #: the ``truncated_bptt`` objective, which trains them that way.
    truncated_bptt: ClassVar[bool] = False

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config.validate()  # every family is built from a checked config, in one place
        self.config = config

    # -- what the trainer needs
    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Return ``{'loss': scalar, **metrics}``; metrics are logged, only 'loss' is optimised."""
        raise NotImplementedError

    def loss_chunk(self, batch: Batch, state: Any) -> tuple[dict[str, Tensor], Any]:
        """:meth:`loss` of one window continuing from the recurrent ``state`` of the window
        before it (None at the start of a file) -> (losses, state after this window)."""
        raise NotImplementedError

    @property
    def context(self) -> int:
        """Samples of past audio needed before the first predicted sample (receptive field - 1).

        The dataset serves windows of ``window + context`` samples so every predicted sample
        sees a full receptive field.
        """
        return 0

    def conditioning_keys(self) -> tuple[str, ...]:
        """Labels a user gives to condition this model (e.g. ('pitch', 'instrument'))."""
        return ()

    def batch_keys(self) -> tuple[str, ...]:
        """Keys a training/evaluation batch must hold besides ``audio``: the conditioning, plus
        anything derived from the window itself (e.g. its ``start`` within the example)."""
        return self.conditioning_keys()

    def frame_features(self) -> Any:
        """Per-frame features a training batch needs beside the audio (a
        :class:`waveloom.data.features.FeatureSpec`: DDSP's f0 and loudness), or None. The
        objective's data set reads it, so no trainer code names a family."""
        return None

    # -- what the sampler needs
    @torch.no_grad()
    def generate(self, n: int, length: int, cond: dict[str, Any] | None = None,
                 options: SamplingOptions | None = None) -> Tensor:
        """Return ``n`` new waveforms as a float tensor [n, length] in [-1, 1], drawn as
        ``options`` says, in one call of the family's own (GANs, the spectral autoencoder,
        SampleRNN). Families run by the sampling engines derive from
        :class:`~waveloom.models.plan.StepSampled` instead. Callers use
        ``waveloom.sampling.sample.sample``, which dispatches between the two."""
        raise NotImplementedError

    # -- what ``waveloom export`` needs
    def export_spec(self) -> Any:
        """A :class:`waveloom.models.export_spec.ExportSpec`: the module a host runs (a
        vocoder's forward pass, a streaming block with its state as tensors) and how to call
        it. Families that cannot be exported say so."""
        raise ConfigError(f"{type(self).__name__} cannot be exported yet; `waveloom export` "
                          "takes ddsp, melgan and wavenet checkpoints")

    # -- what the contract tests need
    def example_batch(self, batch_size: int, length: int, seed: int = 0) -> Batch:
        """A small random batch with every key this model reads (for tests and smoke runs)."""
        g = torch.Generator().manual_seed(seed)
        t = torch.arange(length, dtype=torch.float32) / 16000.0
        freq = 110.0 + 330.0 * torch.rand(batch_size, 1, generator=g)
        audio = 0.5 * torch.sin(2 * torch.pi * freq * t) + 0.05 * torch.randn(
            batch_size, length, generator=g
        )
        return {
            "audio": audio.clamp(-1, 1),
            "pitch": torch.randint(24, 96, (batch_size,), generator=g),
            "instrument": torch.randint(0, 4, (batch_size,), generator=g),
            "velocity": torch.full((batch_size,), 100, dtype=torch.long),
        }


class Likelihood(Generative):
    """A model with an exact (or bounded) likelihood: evaluate reports NLL in bits/sample."""

    def log_prob(self, batch: Batch) -> Tensor:
        """Log-likelihood in nats of each predicted sample: [B, T_predicted]."""
        raise NotImplementedError


class Autoencoder(Generative):
    """A model with an explicit latent: encode audio, decode latents."""

    def encode(self, audio: Tensor) -> Tensor:
        raise NotImplementedError

    def decode(self, z: Tensor, pitch: Any = None, length: int | None = None,
               options: SamplingOptions | None = None) -> Tensor:
        """Codes ``z`` -> audio [B, length] in [-1, 1] (``pitch``: MIDI label for pitch-aware
        decoders). Callers use ``waveloom.sampling.sample.decode``."""
        raise NotImplementedError


def require_default_engine(model: nn.Module, options: SamplingOptions,
                           reason: str = "has a single sampling engine") -> None:
    """Refuse an engine or weight precision a family cannot use rather than ignore it."""
    if not options.is_default_engine:
        raise ConfigError(f"--engine/--weights: {type(model).__name__} {reason}; leave them "
                          "at their defaults")
