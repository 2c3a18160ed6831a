"""The CUDA-graph engine: its step (RingStep) is checked on the CPU everywhere; graph capture
and replay only where CUDA exists (its speed is measured by benchmarks/sampling.py there)."""

from __future__ import annotations

import pytest
import torch

from waveloom.config import SamplingOptions
from waveloom.sampling.cuda_graphs import RingStep, sample_cuda_graph
from waveloom.sampling.engine import resolve_engine
from waveloom.sampling.incremental import sample_incremental
from waveloom.sampling.sample import sample

from .test_sampling_fast import _inputs, _model, first_divergence_is_ambiguous

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CONFIGS = [
    ("tiny", ()),
    ("small", ()),
    ("tiny", ("model.local=mel", "model.local_channels=80", "model.kernel_size=3")),
    ("tiny", ("model.head=logistic_mixture", "model.input=onehot")),
]
IDS = ["tiny", "small", "tiny-mel-k3", "tiny-mixture-onehot"]


@pytest.mark.parametrize("preset, overrides", CONFIGS, ids=IDS)
def test_ring_step_equals_forward_every_step(preset, overrides):
    model = _model(preset, *overrides)
    stack = model.stack
    codes, g, l = _inputs(stack, 2, 700)
    step = RingStep(stack, 2, torch.device("cpu"))
    step.reset(g)
    with torch.no_grad():
        ref = stack(codes, g, l)
        rows = None if l is None else step.local_rows(l)
        out = torch.stack(
            [step(codes[:, t], None if rows is None else rows[t]) for t in range(700)], -1
        )
    assert (out - ref).abs().max() < 1e-4


@pytest.mark.parametrize("preset, overrides", CONFIGS[:1] + CONFIGS[2:], ids=IDS[:1] + IDS[2:])
def test_eager_graph_body_samples_the_reference_codes(preset, overrides):
    model = _model(preset, *overrides)
    n, length = 2, 600
    cond = {k: v for k, v in model.example_batch(n, 400 + length + 256).items() if k != "audio"}
    cond["prime"] = 0.2 * torch.sin(torch.arange(400) / 5.0)
    ref = sample_incremental(model, n, length, cond, seed=4, progress=False)
    out = sample_cuda_graph(model, n, length, cond, seed=4, progress=False, use_graph=False)
    first_divergence_is_ambiguous(model, n, length, cond, 4, ref, out)


def test_graphs_need_cuda():
    model = _model("tiny")
    with pytest.raises(ValueError, match="CUDA"):
        sample_cuda_graph(model, 1, 10, {"pitch": 60}, use_graph=True)


@CUDA
@pytest.mark.parametrize("preset, overrides", CONFIGS, ids=IDS)
def test_cuda_graph_replay_equals_eager_and_reference(preset, overrides):
    model = _model(preset, *overrides).cuda()
    n, length = 8, 3000  # several local-conditioning chunks
    cond = {k: v for k, v in model.example_batch(n, length + 256).items() if k != "audio"}
    cond = {k: v.cuda() for k, v in cond.items()}
    graph = sample_cuda_graph(model, n, length, cond, seed=2, progress=False)
    eager = sample_cuda_graph(model, n, length, cond, seed=2, progress=False, use_graph=False)
    assert torch.equal(graph, eager)  # same kernels on the same data
    ref = sample_incremental(model, n, length, cond, seed=2, progress=False)
    first_divergence_is_ambiguous(model, n, length, cond, 2, ref, graph)


@CUDA
def test_auto_picks_cuda_graphs_on_a_gpu():
    model = _model("tiny").cuda()
    assert resolve_engine("auto", model) == "cuda-graph"
    audio = sample(model, 2, 500, {"pitch": 60}, options=SamplingOptions(seed=0, progress=False))
    assert audio.shape == (2, 500) and audio.is_cuda and audio.abs().max() <= 1
