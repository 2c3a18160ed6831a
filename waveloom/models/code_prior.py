"""A WaveNet prior over discrete codes: the top of a hierarchy of ADA levels.

Dieleman et al. 2018 model the top-level codes of their autoregressive discrete autoencoders
with a WaveNet whose input and output are the codes themselves (a K-way softmax in, tokens
embedded out): at hop 64 (or 64 x 8) of 16 kHz audio, a receptive field of a few thousand
codes spans tens of seconds, which is where long-range structure comes from. Optionally
conditioned on a label of the piece (the cache's 'instrument' column: an instrument, or a
composer for the rendered chorales and MAESTRO-style sources), through the same global
conditioning as a WaveNet's.

Trained on a code cache (``waveloom encode-codes``; see :mod:`waveloom.models.codes`); sampled
by the same engines as a WaveNet (:meth:`CodePrior.sampling_plan`;
``waveloom.sampling.autoregressive.sample_tokens`` for the codes themselves).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from waveloom.config import ModelConfig, require_positive
from waveloom.errors import ConfigError, DataError
from waveloom.models.base import Batch, Likelihood
from waveloom.models.codes import (
    MAX_CODEBOOK,
    CodeHead,
    codes_to_samples,
    masked_nll,
    random_code_samples,
    tokens_from_samples,
)
from waveloom.models.plan import SamplingPlan, StepSampled, global_vector
from waveloom.models.stack_config import WaveNetStackConfig, build_stack
from waveloom.nn.conditioning import GlobalConditioning


@dataclass
class CodePriorConfig(WaveNetStackConfig):
    """Hyper-parameters; defaults are a mid-sized prior over 256 codes."""

    codebook_size: int = 256  # K of the level whose codes this models
    # the stack: WaveNetStackConfig's fields, with a narrower skip path than its defaults
    skip_channels: int = 128
    end_channels: int = 128
    instrument_conditioning: bool = False  # the cache's 'instrument' label (or composer)
    num_instruments: int = 16
    cond_dim: int = 16
    cond_dropout: float = 0.0

    def validate(self) -> None:
        if not 2 <= self.codebook_size <= MAX_CODEBOOK:
            raise ConfigError(
                f"model.codebook_size={self.codebook_size} must be in 2..{MAX_CODEBOOK}")
        super().validate()  # the stack's sizes
        require_positive(self, "num_instruments", "cond_dim")
        if not 0.0 <= self.cond_dropout < 1.0:
            raise ConfigError(f"model.cond_dropout={self.cond_dropout} must be in [0, 1)")


class CodePrior(StepSampled, Likelihood):
    """p(c) = prod_t p(c_t | c_<t, label) over the codes of one ADA level."""

    config_class: ClassVar[type[ModelConfig]] = CodePriorConfig
    config: CodePriorConfig
    length_unit: ClassVar[str] = "frames"

    def __init__(self, config: CodePriorConfig) -> None:
        super().__init__(config)
        c = config
        self.pad = c.codebook_size
        self.head = CodeHead(c.codebook_size)
        self.global_cond = (
            GlobalConditioning(c.cond_dim, c.num_instruments, pitch=False, instrument=True,
                               dropout=c.cond_dropout)
            if c.instrument_conditioning else None
        )
        self.stack = build_stack(
            c,
            out_channels=c.codebook_size,
            input_levels=c.codebook_size + 1,
            global_channels=0 if self.global_cond is None else self.global_cond.out_dim,
        )

    @property
    def codebook_size(self) -> int:
        return int(self.config.codebook_size)

    @property
    def context(self) -> int:
        return self.stack.receptive_field

    def conditioning_keys(self) -> tuple[str, ...]:
        return () if self.global_cond is None else ("instrument",)

    def _param_device(self) -> torch.device:
        return self.stack.out2.weight.device

    def _params(self, batch: Batch) -> tuple[Tensor, Tensor]:
        audio = batch["audio"]
        if audio.dim() != 2:
            raise DataError(f"batch['audio'] has shape {tuple(audio.shape)}; expected [B, T]")
        total, ctx = audio.shape[-1], self.context
        if total <= ctx:
            raise DataError(f"batch['audio'] has {total} codes but this prior needs its "
                            f"context of {ctx} plus at least one more; raise data.window")
        tokens = tokens_from_samples(audio, self.codebook_size)
        g = None
        if self.global_cond is not None:
            label = batch.get("instrument")
            label = None if label is None else torch.as_tensor(label, device=audio.device)
            g = self.global_cond(None, label, batch=audio.shape[0], dropout=self.training)
        return self.stack(tokens[:, :-1], g, None, padded=False), tokens[:, ctx:]

    def _log_probs(self, params: Tensor, targets: Tensor) -> Tensor:
        return self.head.log_prob(params, targets.clamp(max=self.codebook_size - 1))

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Mean NLL in nats per (non-pad) code, plus bits per code and next-code accuracy."""
        params, targets = self._params(batch)
        nll, _ = masked_nll(self._log_probs(params, targets), targets, self.pad)
        with torch.no_grad():
            keep = targets != self.pad
            hits = (self.head.mode(params) == targets) & keep
            accuracy = hits.float().sum() / keep.float().sum().clamp(min=1.0)
        return {"loss": nll, "bits_per_code": nll.detach() / math.log(2.0),
                "accuracy": accuracy}

    def log_prob(self, batch: Batch) -> Tensor:
        """Log-probability in nats of each of the last ``T - context`` codes [B, W] (pad
        positions score 0)."""
        params, targets = self._params(batch)
        return self._log_probs(params, targets) * (targets != self.pad)

    def example_batch(self, batch_size: int, length: int, seed: int = 0) -> Batch:
        batch = super().example_batch(batch_size, length, seed)
        batch["audio"] = random_code_samples(batch_size, length, self.codebook_size, seed)
        batch["instrument"] = batch["instrument"] % self.config.num_instruments
        return batch

    # ------------------------------------------------------------------ sampling

    def sampling_plan(
        self,
        n: int,
        length: int,
        cond: dict[str, Any] | None = None,
        prime: Tensor | None = None,
    ) -> SamplingPlan:
        """History: pad tokens (a piece's start, as in training) followed by
        ``cond['prime_codes']`` [n, P] when given; global vector from ``cond['instrument']``."""
        cond = dict(cond or {})
        device = self._param_device()
        prefix = torch.full((n, self.context), self.pad, dtype=torch.long, device=device)
        given = cond.get("prime_codes")
        if given is not None:
            given = torch.as_tensor(given, device=device).long()
            if given.dim() == 1:
                given = given.unsqueeze(0)
            if given.dim() != 2 or given.shape[0] not in (1, n):
                raise ConfigError(f"cond['prime_codes'] has shape {tuple(given.shape)}; "
                                  f"expected [{n}, codes]")
            if given.numel() and (int(given.min()) < 0 or
                                  int(given.max()) >= self.codebook_size):
                raise ConfigError(f"cond['prime_codes'] must be in 0..{self.codebook_size - 1}")
            prefix = torch.cat([prefix, given.expand(n, -1)], 1)[:, -self.context:]
        g = global_vector(self.global_cond, cond, n, device)
        return SamplingPlan(prefix=prefix, g=g, local=None)

    def output(self, tokens: Tensor) -> Tensor:
        """Codes [n, frames] in [0, codebook_size) -> the code-cache representation ([n,
        frames] floats in (0, 1]), the contract's output type; a hierarchy
        (:mod:`waveloom.sampling.hierarchy`) turns codes into audio."""
        return codes_to_samples(tokens)
