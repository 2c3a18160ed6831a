"""Generation engines, kept apart from the networks they drive.

Callers draw through :mod:`waveloom.sampling.sample` (``sample(model, n, length, cond,
options)``, ``decode``, ``vocode``), which runs a step-sampled network on the engines
(:mod:`waveloom.sampling.autoregressive`) or calls a one-shot family's own ``generate``.
``sample_codes(model, n, length, cond, engine=...)`` is the token-level engine entry point; see
:mod:`waveloom.sampling.engine` for the engines (the plain-torch cached reference, the
compiled fast CPU engine, CUDA graphs) and how ``auto`` chooses between them.
"""

from waveloom.sampling.cuda_graphs import RingStep, sample_cuda_graph
from waveloom.sampling.engine import ENGINES, resolve_engine, sample_codes
from waveloom.sampling.fast import FastWaveNet, sample_fast, unsupported_reason
from waveloom.sampling.incremental import (
    SamplingPlan,
    compare_speed,
    draw_uniforms,
    sample_incremental,
    sample_naive,
)

__all__ = [
    "ENGINES",
    "FastWaveNet",
    "RingStep",
    "SamplingPlan",
    "compare_speed",
    "draw_uniforms",
    "resolve_engine",
    "sample_codes",
    "sample_cuda_graph",
    "sample_fast",
    "sample_incremental",
    "sample_naive",
    "unsupported_reason",
]
