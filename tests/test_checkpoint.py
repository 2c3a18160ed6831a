"""Checkpoints are safetensors + config + version; nothing is ever unpickled."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from waveloom.checkpoint import FORMAT_VERSION, read_metadata, save_checkpoint
from waveloom.errors import CheckpointError
from waveloom.models.load import load_checkpoint, load_config
from waveloom.models.registry import build_model

from .conftest import CONFIGS


@pytest.fixture()
def tiny():
    run = load_config(CONFIGS / "wavenet" / "tiny.yaml")
    torch.manual_seed(0)
    return run, build_model(run)


def test_metadata_has_version_family_and_config(tiny, tmp_path):
    run, model = tiny
    path = save_checkpoint(tmp_path / "a" / "m.safetensors", model, run, extra={"step": 7})
    meta = read_metadata(path)
    assert meta["format_version"] == str(FORMAT_VERSION)
    assert meta["family"] == run.family
    assert json.loads(meta["config"]) == run.to_dict()
    assert not list(path.parent.glob("*.tmp")), "temp file left behind"


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/waveloom-pwned",))


def test_pickle_checkpoint_is_refused_without_running_it(tmp_path):
    marker = "/tmp/waveloom-pwned"
    if os.path.exists(marker):
        os.remove(marker)
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"state": _Exploit()}))
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_checkpoint(evil)
    torch_pickle = tmp_path / "evil.pt"
    torch.save({"x": _Exploit()}, torch_pickle)
    with pytest.raises(CheckpointError):
        load_checkpoint(torch_pickle)
    assert not os.path.exists(marker), "loading a checkpoint executed code"


def test_other_format_version_and_foreign_safetensors(tiny, tmp_path):
    run, model = tiny
    path = save_checkpoint(tmp_path / "m.safetensors", model, run)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = dict(f.metadata())
    meta["format_version"] = "99"
    future = tmp_path / "future.safetensors"
    save_file(tensors, str(future), metadata=meta)
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(future)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="without waveloom metadata"):
        load_checkpoint(foreign)


def test_weights_that_do_not_match_the_config(tiny, tmp_path):
    run, model = tiny
    path = save_checkpoint(tmp_path / "m.safetensors", model, run)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = dict(f.metadata())
    name = next(iter(tensors))
    tensors[name] = torch.zeros(3, 3, 3)
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata=meta)
    with pytest.raises(CheckpointError, match="shape"):
        load_checkpoint(bad)


def test_truncated_and_missing_files(tiny, tmp_path):
    run, model = tiny
    path = save_checkpoint(tmp_path / "m.safetensors", model, run)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="cut.safetensors"):
        load_checkpoint(cut)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_folder(tiny, tmp_path):
    run, model = tiny
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(CheckpointError, match="writable"):
        save_checkpoint(ro / "m.safetensors", model, run)


def test_folder_that_cannot_be_created(tiny, tmp_path):
    run, model = tiny
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(CheckpointError, match="cannot write checkpoint"):
        save_checkpoint(blocker / "m.safetensors", model, run)
