"""The frozen autoencoder inside a latent diffusion model: a codec, or a spectral AE.

Latent diffusion asks three things of its autoencoder: continuous latents of audio
(``encode``), audio from latents (``decode``), and their shape (``dim`` channels, one frame
every ``hop`` samples). Two waveloom families answer them:

* ``codec``: the SEANet encoder's pre-quantizer output ``[B, dim, T / hop]``; decoding
  quantises with the codec's own RVQ first, because its decoder was trained on quantised
  latents (the route of docs/codec.md's models).
* ``spectral_ae``: the log-magnitude autoencoder's code ``[B, embedding_dim, T / hop]``
  (continuous, unquantised); decoding runs its decoder and fast Griffin-Lim. Polyphony needs
  nothing special here (no f0 is tracked), so it serves pieces as well as notes.

The module is built from the autoencoder's run config alone (the latent model records it),
and :meth:`FrozenAutoencoder.load_weights` takes the checkpoint's tensors once, before
training; its parameters never train.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from waveloom.errors import ConfigError

#: Families whose latents a latent diffusion model can learn.
LATENT_FAMILIES = ("codec", "spectral_ae")


class FrozenAutoencoder(nn.Module):
    """One autoencoder, seen as ``encode``/``decode`` over continuous latents.

    ``run`` is the autoencoder's :class:`~waveloom.config.RunConfig`.
    """

    def __init__(self, run: Any) -> None:
        super().__init__()
        if run.family not in LATENT_FAMILIES:
            raise ConfigError(f"model.autoencoder: a {run.family!r} checkpoint has no latents "
                              f"to learn; give one of {', '.join(LATENT_FAMILIES)}")
        self.family = run.family
        cfg = run.model
        if self.family == "codec":
            from waveloom.models.codec import CodecAutoencoder

            self.module: nn.Module = CodecAutoencoder(cfg)
            self.dim = cfg.dim
        else:
            from waveloom.models.spectral_ae import SpectralAE

            self.module = SpectralAE(cfg)
            self.dim = cfg.embedding_dim
        self.hop: int = cfg.hop
        #: The codec's own rate; a spectral AE's is the data's it trained on.
        self.sample_rate: int = getattr(cfg, "sample_rate", run.data.sample_rate)
        self.requires_grad_(False)

    def train(self, mode: bool = True) -> FrozenAutoencoder:
        """Always eval: a codec's k-means and EMA codebooks must not move."""
        return super().train(False)

    def load_weights(self, state: dict[str, Tensor], source: str) -> None:
        """Copy a checkpoint's tensors in (an adversarial codec's under ``generator.``)."""
        prefix = "generator."
        if any(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        try:
            self.module.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(f"{source}: its weights do not fit its own config ({first})") \
                from None

    @torch.no_grad()
    def encode(self, audio: Tensor) -> Tensor:
        """Audio ``[B, T]`` -> latents ``[B, dim, T // hop]`` (the tail under a hop dropped)."""
        audio = audio[:, : audio.shape[-1] - audio.shape[-1] % self.hop].float()
        if self.family == "codec":
            return self.module.encoder(audio[:, None])
        return self.module.encode(audio)

    @torch.no_grad()
    def decode(self, latents: Tensor, length: int, seed: int = 0,
               pitch: Any = None) -> Tensor:
        """Latents ``[B, dim, F]`` -> audio ``[B, length]``; ``seed`` starts Griffin-Lim's
        phase (spectral AE), ``pitch`` feeds a pitch-conditioned spectral AE's decoder."""
        if self.family == "codec":
            quantized, _, _ = self.module.quantize(latents)
            return self.module.decoder(quantized)[:, 0, :length]
        from waveloom.config import SamplingOptions

        options = SamplingOptions(seed=seed, progress=False)
        return self.module.decode(latents, pitch, length, options)
