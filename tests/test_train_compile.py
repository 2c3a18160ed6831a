"""train.compile: a tiny preset trains through torch.compile, resumes, and its checkpoint
loads in a fresh eager model (state dict keys free of ``_orig_mod.``)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from waveloom.errors import ConfigError
from waveloom.models.load import load_checkpoint, load_config
from waveloom.train.trainer import train

from .conftest import CONFIGS

TINY = CONFIGS / "wavenet" / "tiny.yaml"
RUN = ["data.window=256", "data.batch_size=2", "model.num_instruments=4",
       "train.ema_decay=0.9", "train.checkpoint_every=2", "train.log_every=1"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    from waveloom.data.prepare import prepare
    from waveloom.data.synth import render_notes

    root = tmp_path_factory.mktemp("compile-data")
    render_notes(root / "notes", programs=[0], pitches=range(55, 59), velocities=[100],
                 progress=False)
    prepare(root / "notes", root / "cache", progress=False)
    return root / "cache"


def test_compiled_training_resumes_and_exports_an_eager_checkpoint(cache, tmp_path, capsys):
    # backend "eager" runs dynamo's tracing without inductor's C++ build (seconds, not minutes)
    on = ["train.compile=true", "train.compile_backend=eager"]
    run = train(load_config(TINY, [*RUN, *on, "train.max_steps=2"]), cache, tmp_path / "r",
                progress=False)
    assert run.step == 2 and math.isfinite(run.last_loss)
    assert "torch.compile: first step took" in capsys.readouterr().out
    weights = load_file(str(tmp_path / "r" / "model.safetensors"))
    assert not any("_orig_mod" in k for k in weights)
    resumed = train(load_config(TINY, [*RUN, *on, "train.max_steps=3"]), cache, tmp_path / "r",
                    resume=True, progress=False)
    assert resumed.step == 3 and math.isfinite(resumed.last_loss)
    model = load_checkpoint(tmp_path / "r" / "model.safetensors")
    model = model[0] if isinstance(model, tuple) else model
    assert isinstance(model, torch.nn.Module)
    got = model.state_dict()
    for key, value in load_file(str(tmp_path / "r" / "model.safetensors")).items():
        if key in got:
            torch.testing.assert_close(got[key], value)


def test_compile_settings_are_validated():
    with pytest.raises(ConfigError, match="compile_backend"):
        load_config(TINY, ["train.compile_backend=tvm"])
