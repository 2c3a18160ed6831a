"""#19: memory estimates before large allocations end in one line, not a kernel kill."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import waveloom.memory as memory
from waveloom.cli import main
from waveloom.errors import ConfigError
from waveloom.models.load import load_config
from waveloom.models.registry import build_model

from .conftest import CONFIGS

GIB = 1 << 30


def test_check_allocation_names_estimate_free_memory_and_key(monkeypatch):
    memory.check_allocation(GIB, "a buffer", "x.size", available=4 * GIB)  # fits
    with pytest.raises(ConfigError) as err:
        memory.check_allocation(8 * GIB, "a buffer", "x.size", available=4 * GIB)
    text = str(err.value)
    assert "a buffer needs about 8.0 GiB" in text and "4.0 GiB is free" in text
    assert "lower x.size" in text and "\n" not in text
    monkeypatch.setenv(memory.DISABLE_ENV, "1")
    memory.check_allocation(8 * GIB, "a buffer", "x.size", available=4 * GIB)
    monkeypatch.delenv(memory.DISABLE_ENV)
    monkeypatch.setattr(memory, "available_bytes", lambda: None)  # unknown: never refuse
    memory.check_allocation(1e30, "a buffer", "x.size")


def test_available_bytes_reads_the_system():
    free = memory.available_bytes()
    assert free is None or free > 16 << 20


def test_huge_model_is_refused_before_building():
    run = load_config(CONFIGS / "wavenet" / "tiny.yaml", ["model.residual_channels=1000000000"])
    with pytest.raises(ConfigError, match=r"model of [\d,]+ parameters .* is free; lower "
                                          r"the model\.\* sizes"):
        build_model(run)


def test_huge_window_is_refused_by_the_dataset(tmp_path, monkeypatch):
    from waveloom.data.dataset import WindowDataset
    from waveloom.data.prepare import prepare

    src = tmp_path / "src"
    src.mkdir()
    sf.write(src / "a.wav", 0.3 * np.sin(np.arange(4000) * 0.05), 16000)
    prepare(src, tmp_path / "cache", progress=False)
    monkeypatch.setattr(memory, "available_bytes", lambda: 2 * GIB)
    WindowDataset(tmp_path / "cache", window=8192)
    with pytest.raises(ConfigError, match="one training window of 1,000,000,000 samples .* "
                                          "lower data.window"):
        WindowDataset(tmp_path / "cache", window=10**9)


def test_decode_of_a_huge_code_file_is_refused(tmp_path, capsys, monkeypatch):
    from waveloom.checkpoint import save_checkpoint

    run = load_config(CONFIGS / "nsynth_ae" / "tiny.yaml")
    ckpt = save_checkpoint(tmp_path / "ae.safetensors", build_model(run), run)
    dims = run.model.embedding_dim
    codes = tmp_path / "long.npy"
    np.save(codes, np.zeros((dims, 200_000), np.float32))
    args = ["decode", str(ckpt), str(codes), "--out", str(tmp_path / "o"), "--pitch", "60", "-q"]
    monkeypatch.setattr(memory, "available_bytes", lambda: 256 << 20)  # a small machine
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "long.npy" in err and "\n" not in err, err
    assert "256.0 MiB is free" in err


def test_generate_huge_request_is_refused_before_loading_audio(tmp_path, capsys, monkeypatch):
    from waveloom.checkpoint import save_checkpoint

    run = load_config(CONFIGS / "wavenet" / "tiny.yaml")
    ckpt = save_checkpoint(tmp_path / "w.safetensors", build_model(run), run)
    monkeypatch.setattr(memory, "available_bytes", lambda: 256 << 20)
    args = ["generate", str(ckpt), "--out", str(tmp_path / "o"), "--n", "4", "--engine", "torch",
            "-q"]  # drawn whole (the fast engine streams: only a segment is held)
    assert main([*args, "--seconds", "3600"]) == 2
    err = capsys.readouterr().err.strip()
    assert "lower --seconds or --n" in err and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_a_training_step_whose_activations_do_not_fit_is_one_line(tmp_path, capsys,
                                                                  monkeypatch):
    """#19: the trainer's first step counts the tensors saved for the backward pass and stops
    at 80 % of the free memory, naming the step's shape and the keys; no model is written."""
    from waveloom.data.prepare import prepare
    from waveloom.train import memory_guard

    src = tmp_path / "src"
    src.mkdir()
    sf.write(src / "a.wav", 0.3 * np.sin(np.arange(40000) * 0.05), 16000)
    prepare(src, tmp_path / "cache", progress=False)
    monkeypatch.setattr(memory_guard, "available_bytes", lambda: 16 << 20)
    out = tmp_path / "run"
    code = main(["train", str(CONFIGS / "wavenet" / "tiny.yaml"), "--data",
                 str(tmp_path / "cache"), "--out", str(out), "--max-steps", "2", "-q",
                 "data.window=20000"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1
    assert "a training step of " in err[0] and "x 20,000 samples" in err[0]
    assert "of activations" in err[0] and "16.0 MiB is free" in err[0]
    assert "lower data.window or data.batch_size" in err[0]
    assert not (out / "model.safetensors").exists()


def test_the_step_guard_turns_an_allocator_failure_into_one_line():
    from waveloom.train.memory_guard import StepMemoryGuard

    with pytest.raises(ConfigError, match="ran out of memory .* 1.0 GiB is free; lower "
                                          "data.window"):
        with StepMemoryGuard("a training step of 1 x 8 samples", GIB):
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: "
                               "can't allocate memory: you tried to allocate 7680007936 bytes")
    with pytest.raises(ValueError):  # anything else passes through untouched
        with StepMemoryGuard("a training step", GIB):
            raise ValueError("not memory")


def test_a_batch_that_cannot_fit_is_refused_before_the_loader_collates_it(tmp_path, capsys,
                                                                        monkeypatch):
    """#19: each window fits the data set's check, the batch of 8 does not (it used to end in
    an allocator traceback while the loader stacked the first batch)."""
    from waveloom.data.prepare import prepare

    src = tmp_path / "src"
    src.mkdir()
    sf.write(src / "a.wav", 0.3 * np.sin(np.arange(4000) * 0.05), 16000)
    prepare(src, tmp_path / "cache", progress=False)
    monkeypatch.setattr(memory, "available_bytes", lambda: 1 * GIB)
    code = main(["train", str(CONFIGS / "wavenet" / "tiny.yaml"), "--data",
                 str(tmp_path / "cache"), "--out", str(tmp_path / "run"), "-q",
                 "data.window=20000000", "data.batch_size=8"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1
    assert "a batch of 8 x 20,00" in err[0] and "lower data.window or data.batch_size" in err[0]


@pytest.mark.parametrize("call", ["torch.arange(3, 11, 2)", "torch.arange(5)",
                                  "torch.arange(0.0, 1.0, 0.25)", "torch.randn(2, 3)",
                                  "torch.rand((4, 1))", "torch.randn(size=(2, 5))",
                                  "torch.eye(3)", "torch.eye(2, 4)", "torch.empty([3, 7])",
                                  "torch.zeros(2, 2, 2)", "torch.full((3, 2), 1.5)",
                                  "torch.randint(10, (4, 3))", "torch.randint(2, 9, size=(5,))",
                                  "torch.linspace(0, 1, 11)", "torch.ones(6)"])
def test_the_count_reads_every_factorys_size(call):
    import torch  # noqa: F401 (the calls' namespace)

    from waveloom.models.counting import factory_elements

    name = call.split("(")[0].split(".")[1]
    args, kwargs = eval(call.replace(f"torch.{name}", "(lambda *a, **k: (a, k))"))  # noqa: S307
    assert factory_elements(name, args, kwargs) == eval(call).numel()  # noqa: S307


def test_the_count_is_each_tiny_presets_own_and_draws_nothing():
    """Every family's tiny preset is counted exactly, with the global generator untouched (the
    real build after the count draws the weights it would have drawn without it)."""
    import torch

    from waveloom.models.registry import get_family, parameter_count

    for preset in sorted(CONFIGS.glob("*/tiny.yaml")):
        run = load_config(preset)
        if run.family in ("latent_diffusion", "student"):
            continue  # need a trained codec / teacher checkpoint to build
        torch.manual_seed(0)
        before = torch.get_rng_state()
        counted = parameter_count(get_family(run.family), run.model)
        assert torch.equal(torch.get_rng_state(), before), preset
        real = sum(p.numel() for p in get_family(run.family).model(run.model).parameters())
        assert counted == real, preset


def test_a_huge_gansynth_is_refused_and_never_allocated():
    """GANSynth's mel warp computes in __init__, which the meta-device count could not run:
    its sizes went unchecked to an allocator traceback (360 GB asked for)."""
    import torch

    from waveloom.models.counting import count_parameters

    run = load_config(CONFIGS / "gansynth" / "small.yaml",
                      ["model.max_channels=100000", "model.model_dim=100000"])
    with pytest.raises(ConfigError, match=r"model of [\d,]+ parameters .* lower the model"):
        build_model(run)

    def huge() -> torch.nn.Module:
        return torch.nn.Linear(10**6, 10**6)

    assert count_parameters(huge, limit=10**6) > 10**6  # stopped before any allocation


def test_loading_a_shipped_model_imports_neither_sympy_nor_dynamo():
    """The meta-device parameter count before a build must not wake torch's Python
    references: their first torch._check imports sympy (0.3 s) and some torch._dynamo (1-1.5
    s), which was the music transformer's and the NSynth AE's start-up (measured 3.5 -> 1.9 s
    and 3.3 -> 2.0 s for a load on a busy machine)."""
    from pathlib import Path

    from .conftest import python_output

    # The codec is loaded as generate loads it to decode: vector-quantize-pytorch, which its
    # encoder's quantizer is built on, imports einx, which imports torch._dynamo (and sympy)
    # at import time (1.4 s; python -X importtime, session 28; docs/codec.md), so decoding
    # uses waveloom.models.codec.decode_only (session 29).
    assets = sorted(str(p) for p in Path("waveloom/assets").glob("*.safetensors"))
    code = ("import sys\nfrom waveloom.models.codec import decode_only\n"
            "from waveloom.models.load import load_checkpoint\n"
            f"for p in {assets!r}:\n    with decode_only():\n        load_checkpoint(p)\n"
            "    if 'sympy' in sys.modules or 'torch._dynamo' in sys.modules:\n"
            "        print(p)\n        break\n")
    out = python_output(code)
    assert out == ""
