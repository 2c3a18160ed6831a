"""Generation engines, kept apart from the networks they drive.

Callers draw through :mod:`waveloom.sampling.sample` (``sample(model, n, length, cond,
options)``, ``decode``, ``vocode``), which runs a step-sampled network on the engines
(:mod:`waveloom.sampling.autoregressive`) or calls a one-shot family's own ``generate``.
``sample_codes(model, n, length, cond, engine=...)`` is the token-level engine entry point; see
:mod:`waveloom.sampling.engine` for the engines (the plain-torch cached reference, the
compiled fast CPU engine, CUDA graphs) and how ``auto`` chooses between them.

The names below are loaded on first use (PEP 562), so importing one engine does not import
them all: ``waveloom generate`` on the C backend never loads numba or the CUDA-graph code.
"""

from __future__ import annotations

from waveloom.lazy import lazy_exports

#: Public name -> the module that defines it.
_WHERE = {
    "ENGINES": "engine",
    "resolve_engine": "engine",
    "sample_codes": "engine",
    "FastWaveNet": "fast",
    "sample_fast": "fast",
    "unsupported_reason": "fast",
    "RingStep": "cuda_graphs",
    "sample_cuda_graph": "cuda_graphs",
    "SamplingPlan": "incremental",
    "compare_speed": "incremental",
    "draw_uniforms": "incremental",
    "sample_incremental": "incremental",
    "sample_naive": "incremental",
}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
