"""The trainer on a GPU: mixed precision, checkpoints that load on a CPU, resume, generation.

Runs only where CUDA is present (the `device` machine); CI has no GPU and skips it. The data
are plain sines written in the NSynth layout, so no SoundFont is needed on the GPU machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from waveloom.config import SamplingOptions
from waveloom.models.load import load_checkpoint, load_config
from waveloom.sampling.sample import sample
from waveloom.train.trainer import _precision, train

from .conftest import CONFIGS

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
TINY = CONFIGS / "wavenet" / "tiny.yaml"
RUN = ["data.window=512", "data.batch_size=8", "model.num_instruments=4"]


@pytest.fixture(scope="module")
def sine_cache(tmp_path_factory) -> Path:
    from waveloom.data.prepare import prepare

    root = tmp_path_factory.mktemp("cuda-data")
    (root / "notes" / "audio").mkdir(parents=True)
    examples, sr = {}, 16000
    t = np.arange(sr) / sr
    for k, pitch in enumerate(range(55, 67)):
        for inst in range(2):
            name = f"sine_{inst}-{pitch:03d}-100"
            f0 = 440.0 * 2 ** ((pitch - 69) / 12)
            wave = 0.5 * np.sin(2 * np.pi * f0 * t) * np.exp(-t * (1 + inst))
            sf.write(root / "notes" / "audio" / f"{name}.wav", wave.astype(np.float32), sr)
            examples[name] = {"pitch": pitch, "velocity": 100, "instrument_str": f"sine_{inst}",
                              "instrument_family_str": "synth_lead",
                              "split": "test" if k % 6 == 0 else "train"}
    (root / "notes" / "examples.json").write_text(json.dumps(examples))
    prepare(root / "notes", root / "cache", progress=False)
    return root / "cache"


def test_auto_precision_is_bf16_mixed_on_a_gpu():
    assert _precision("auto", "cuda") == "bf16-mixed"
    assert _precision("auto", "cpu") == "32-true"


def test_trains_on_the_gpu_and_the_checkpoint_loads_on_a_cpu(sine_cache, tmp_path):
    cfg = load_config(TINY, [*RUN, "train.max_steps=40", "train.checkpoint_every=20"])
    result = train(cfg, sine_cache, tmp_path / "run", accelerator="cuda", progress=False)
    assert result.step == 40
    assert np.isfinite(result.last_loss) and result.last_loss < np.log(256)  # learnt something
    model, _ = load_checkpoint(tmp_path / "run" / "model.safetensors", map_location="cpu")
    assert next(model.parameters()).device.type == "cpu"
    audio = sample(model.cuda(), 2, 400, {"pitch": 60, "instrument": 1},
                   options=SamplingOptions(seed=0, progress=False))
    assert audio.is_cuda and audio.shape == (2, 400) and torch.isfinite(audio).all()


def test_resume_on_the_gpu_continues_the_same_run(sine_cache, tmp_path):
    """bf16 convolutions on a GPU are not bitwise reproducible run to run (cuDNN picks
    algorithms and reduction orders), so resume is checked against a straight run to a
    tolerance well under one optimiser step's change, and the step counter exactly."""
    base = [*RUN, "train.checkpoint_every=10", "train.ema_decay=0.9"]
    train(load_config(TINY, [*base, "train.max_steps=20"]), sine_cache, tmp_path / "a",
          accelerator="cuda", progress=False)
    train(load_config(TINY, [*base, "train.max_steps=10"]), sine_cache, tmp_path / "b",
          accelerator="cuda", progress=False)
    after_10 = load_file(str(tmp_path / "b" / "model.safetensors"))
    resumed = train(load_config(TINY, [*base, "train.max_steps=20"]), sine_cache,
                    tmp_path / "b", resume=True, accelerator="cuda", progress=False)
    assert resumed.step == 20
    a = load_file(str(tmp_path / "a" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model.safetensors"))
    drift = max(float((a[k] - b[k]).abs().max()) for k in a)
    moved = max(float((b[k] - after_10[k]).abs().max()) for k in b)
    print(f"resume drift {drift:.2e}, change over the last 10 steps {moved:.2e}")
    assert drift < 0.05 * moved
