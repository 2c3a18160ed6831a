"""Issue #19, training side: what a run folder, a checkpoint and a config do under faults.

Each case ends in a one-line error (exit 2) or a stated behaviour, never a traceback, a silent
overwrite or a full-scale DC wav. The table of cases is docs/reliability.md.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from waveloom.checkpoint import read_extra, save_checkpoint
from waveloom.cli import main
from waveloom.errors import CheckpointError, ConfigError, DataError
from waveloom.models.load import load_checkpoint, load_config
from waveloom.models.registry import build_model
from waveloom.train.trainer import MODEL_FILE, RESUME_FILE, load_resume_state, train

from .conftest import CONFIGS

TINY = CONFIGS / "wavenet" / "tiny.yaml"
RUN = ["data.window=256", "data.batch_size=2", "model.num_instruments=4",
       "train.checkpoint_every=2"]


def _train(cache: Path, out: Path, steps: int, *extra: str, **kw):
    return train(load_config(TINY, [*RUN, f"train.max_steps={steps}", *extra]), cache, out,
                 progress=False, **kw)


def _one_line(capsys, *argv: str) -> str:
    """Run the CLI in-process; it must exit 2 with exactly one ``error:`` line."""
    capsys.readouterr()
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _snapshot(run: Path) -> dict[str, bytes]:
    return {n: (run / n).read_bytes() for n in (MODEL_FILE, RESUME_FILE)}


# ------------------------------------------------------------------ 1. data loss


def test_a_model_without_resume_state_is_not_overwritten(notes_cache, tmp_path, capsys):
    run = tmp_path / "run"
    _train(notes_cache, run, 2)
    (run / RESUME_FILE).unlink()
    before = (run / MODEL_FILE).read_bytes()
    for resume in (False, True):
        with pytest.raises(DataError, match="already holds a model.*--overwrite"):
            _train(notes_cache, run, 2, resume=resume)
    msg = _one_line(capsys, "train", str(TINY), "--data", str(notes_cache), "--out", str(run), *RUN)
    assert "--overwrite" in msg and "another --out" in msg
    assert (run / MODEL_FILE).read_bytes() == before
    with pytest.raises(DataError):  # a bad --data: the old model is still kept
        _train(tmp_path / "no-cache", run, 2, overwrite=True)
    assert (run / MODEL_FILE).read_bytes() == before
    assert _train(notes_cache, run, 2, "train.seed=1", overwrite=True).step == 2
    assert (run / MODEL_FILE).read_bytes() != before
    with pytest.raises(ConfigError, match="--resume.*--overwrite"):
        _train(notes_cache, run, 2, resume=True, overwrite=True)


# ------------------------------------------------------------------ 3. non-finite values


def _poisoned(tmp_path: Path) -> tuple[Path, str]:
    """A real checkpoint with one NaN in one tensor; -> (path, that tensor's name)."""
    from safetensors import safe_open

    cfg = load_config(TINY, ["model.num_instruments=4"])
    path = save_checkpoint(tmp_path / "nan.safetensors", build_model(cfg), cfg)
    tensors = load_file(str(path))
    name = sorted(tensors)[3]
    tensors[name].view(-1)[0] = float("nan")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    save_file(tensors, str(path), metadata=meta)
    return path, name


def test_nan_weights_are_refused_at_load_naming_the_tensor(notes_cache, tmp_path, capsys):
    path, name = _poisoned(tmp_path)
    with pytest.raises(CheckpointError, match=f"tensor {name} holds .* non-finite"):
        load_checkpoint(path)
    msg = _one_line(capsys, "generate", str(path), "--out", str(tmp_path / "g"), "-q")
    assert name in msg
    assert not list((tmp_path).glob("g/*.wav"))
    msg = _one_line(capsys, "evaluate", str(path), "--data", str(notes_cache), "--split", "train",
                    "--metrics", "nll", "--max-examples", "1", "-q")
    assert name in msg and "non-finite" in msg


def test_nll_of_a_non_finite_model_is_a_clear_error():
    from waveloom.evaluate.nll import model_nll_bits

    cfg = load_config(TINY, ["model.num_instruments=4"])
    model = build_model(cfg).eval()
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    import numpy as np

    with pytest.raises(DataError, match="not finite"):
        model_nll_bits(model, [np.zeros(400, np.float32)], chunk=200, progress=False)


def test_a_nan_loss_stops_and_keeps_the_last_good_checkpoint(notes_cache, tmp_path, monkeypatch):
    from waveloom.train.objectives.likelihood import LikelihoodObjective

    run = tmp_path / "nan"
    step = LikelihoodObjective.step

    def poisoned(self, model, batch, k):
        metrics = step(self, model, batch, k)
        return {**metrics, "loss": torch.tensor(float("nan"))} if k >= 4 else metrics

    monkeypatch.setattr(LikelihoodObjective, "step", poisoned)
    with pytest.raises(DataError, match="loss became nan at step 4.*last good"):
        _train(notes_cache, run, 10)
    assert read_extra(run / MODEL_FILE)["step"] == 4
    assert load_resume_state(run / RESUME_FILE)["step"] == 4
    load_checkpoint(run / MODEL_FILE)  # finite, loadable
    assert not list(run.glob("*.tmp"))


# ------------------------------------------------------------------ 4. one-line errors


@pytest.mark.parametrize("target", ["model", "resume"])
def test_a_full_disk_on_save_keeps_the_previous_files(notes_cache, tmp_path, monkeypatch, target):
    run = tmp_path / "full"
    _train(notes_cache, run, 2)
    before = _snapshot(run)

    def full(*args, **kwargs):
        Path(args[1]).write_bytes(b"half")  # a partial write, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if target == "model":
        monkeypatch.setattr("waveloom.checkpoint.save_file", full)
    else:
        monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CheckpointError, match="No space left on device.*previous file is kept"):
        _train(notes_cache, run, 4, resume=True)
    assert _snapshot(run) == before
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def _with_config(tmp_path: Path, config: str) -> Path:
    """A real checkpoint whose metadata config is replaced by ``config`` (JSON text)."""
    cfg = load_config(TINY, ["model.num_instruments=4"])
    path = save_checkpoint(tmp_path / "odd.safetensors", build_model(cfg), cfg)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    save_file(load_file(str(path)), str(path), metadata={**meta, "config": config})
    return path


def test_a_config_that_is_a_json_list_is_one_line_in_every_verb(notes_cache, tmp_path, capsys):
    path = _with_config(tmp_path, "[1, 2]")
    out = str(tmp_path / "o")
    import numpy as np
    import soundfile as sf

    wav, npy = tmp_path / "x.wav", tmp_path / "x.npy"
    sf.write(wav, np.zeros(1600, np.float32), 16000)
    np.save(npy, np.zeros((16, 10), np.float32))
    for argv in (["generate", str(path), "--out", out, "-q"],
                 ["generate", str(path), "--list"],
                 ["evaluate", str(path), "--data", str(notes_cache), "--metrics", "nll", "-q"],
                 ["encode", str(path), str(wav), "--out", out],
                 ["decode", str(path), str(npy), "--out", out, "-q"],
                 ["interpolate", str(path), str(wav), str(wav), "--out", out, "-q"],
                 ["vocode", str(path), str(npy), "--out", out],
                 ["encode-codes", str(path), "--data", str(notes_cache), "--out", out, "-q"]):
        msg = _one_line(capsys, *argv)
        assert "odd.safetensors" in msg, argv


@pytest.mark.parametrize("override, message", [
    ("train.lr=nan", "train.lr=nan: must be a finite number > 0"),
    ("train.lr=.inf", "train.lr=inf: must be a finite number > 0"),
    ("train.warmup_steps=-1", "train.warmup_steps=-1 must be >= 0"),
    ("train.grad_clip=nan", "train.grad_clip=nan: must be a finite number >= 0"),
    ("data.min_rms=nan", r"data.min_rms=nan: must be a finite number in \[0, 1\]"),
    ("train.weight_decay=-0.1", "train.weight_decay=-0.1: must be a finite number >= 0"),
    ("train.betas=[0.9,nan]", r"train.betas=0.9,nan: must be a finite number in \[0, 1\)"),
    ("train.ema_decay=nan", "train.ema_decay=nan"),
    ("train.sample_seconds=0", "train.sample_seconds=0.0: must be a finite number > 0"),
    ("data.onset_fraction=2", r"data.onset_fraction=2.0: must be a finite number in \[0, 1\]"),
    ("train.seed=-1", "train.seed=-1 must be >= 0"),
    ("data.chunks=0", "data.chunks=0 must be > 0"),
])
def test_numeric_fields_are_range_checked(override, message, capsys):
    with pytest.raises(ConfigError, match=message):
        load_config(TINY, [override])
    _one_line(capsys, "train", str(TINY), "--data", "nowhere", "--out", "nowhere", override)


def test_a_preset_with_a_duplicate_key_names_file_line_and_key(tmp_path, capsys):
    preset = tmp_path / "dup.yaml"
    preset.write_text("family: wavenet\ntrain:\n  lr: 1.0e-3\n  max_steps: 3\n  lr: 2.0e-3\n")
    with pytest.raises(ConfigError, match=r"dup.yaml line 5: key 'lr' appears twice"):
        load_config(preset)
    _one_line(capsys, "train", str(preset), "--data", "d", "--out", "o")


def test_evaluate_json_to_an_unwritable_path_fails_before_the_work(tmp_path, capsys,
                                                                   monkeypatch):
    import waveloom.evaluate.run

    def never(*args, **kwargs):
        raise AssertionError("evaluate ran before the --json path was checked")

    monkeypatch.setattr(waveloom.evaluate.run, "evaluate", never)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    msg = _one_line(capsys, "evaluate", str(tmp_path), "--json", str(blocker / "r.json"), "-q")
    assert "--json" in msg and "r.json" in msg
    _one_line(capsys, "evaluate", str(tmp_path), "--json", str(tmp_path), "-q")
    # Permission bits said yes here when run as root (session 8: a traceback after the work);
    # the check now opens the file.
    msg = _one_line(capsys, "evaluate", str(tmp_path), "--json", "/proc/waveloom-r.json", "-q")
    assert "/proc/waveloom-r.json" in msg and not Path("/proc/waveloom-r.json").exists()


# ------------------------------------------------------------------ 6. interrupts and state


def test_sigint_saves_and_exits_130(notes_cache, tmp_path):
    run = tmp_path / "int"
    proc = subprocess.Popen(
        [sys.executable, "-m", "waveloom.cli", "train", str(TINY), "--data", str(notes_cache),
         "--out", str(run), "--max-steps", "100000", *RUN, "train.checkpoint_every=1000000",
         "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "tb").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "SIGINT: saved step" in err + out
    assert load_resume_state(run / RESUME_FILE)["step"] > 0


def test_orphan_temp_files_are_removed_at_start(notes_cache, tmp_path, capsys):
    run = tmp_path / "orphans"
    _train(notes_cache, run, 2)
    orphans = [run / f".{MODEL_FILE}.abc123.tmp", run / f".{RESUME_FILE}.def456.tmp"]
    for p in orphans:
        p.write_bytes(b"half")
    _train(notes_cache, run, 2, resume=True)
    assert not any(p.exists() for p in orphans)
    assert "removed .model.safetensors.abc123.tmp" in capsys.readouterr().out


def test_resume_state_without_a_model_resumes_and_exports_again(notes_cache, tmp_path):
    run = tmp_path / "nomodel"
    _train(notes_cache, run, 2)
    before = load_file(str(run / MODEL_FILE))
    (run / MODEL_FILE).unlink()
    assert _train(notes_cache, run, 2, resume=True).step == 2  # nothing to train: export only
    after = load_file(str(run / MODEL_FILE))
    assert all(torch.equal(before[k], after[k]) for k in before)
    (run / MODEL_FILE).unlink()
    assert _train(notes_cache, run, 3, resume=True).step == 3
    assert read_extra(run / MODEL_FILE)["step"] == 3
    # Killed between the two renames of a save: the model is a save behind resume.pt.
    stale = (run / MODEL_FILE).read_bytes()
    _train(notes_cache, run, 4, resume=True)
    (run / MODEL_FILE).write_bytes(stale)
    assert _train(notes_cache, run, 4, resume=True).step == 4
    assert read_extra(run / MODEL_FILE)["step"] == 4


def test_resume_with_changed_settings_is_refused_unless_overridden(notes_cache, tmp_path):
    run = tmp_path / "changed"
    _train(notes_cache, run, 2)
    with pytest.raises(ConfigError, match=r"changed train.lr \(0.003 -> 0.01\).*--override"):
        _train(notes_cache, run, 3, "train.lr=1e-2", resume=True)
    with pytest.raises(ConfigError, match="changed model.residual_channels"):
        _train(notes_cache, run, 3, "model.residual_channels=8", resume=True)
    other = tmp_path / "other-cache"
    shutil.copytree(notes_cache, other)
    with pytest.raises(ConfigError, match="changed data folder"):
        _train(other, run, 3, resume=True)
    # Longer runs, other logging: fine without --override.
    assert _train(notes_cache, run, 3, "train.log_every=7", resume=True).step == 3
    assert _train(notes_cache, run, 4, "train.lr=1e-2", resume=True, override=True).step == 4
    assert json.loads((run / "run.json").read_text())["config"]["train"]["lr"] == 1e-2


def test_a_run_from_before_a_new_key_resumes(notes_cache, tmp_path):
    """A key added to waveloom after a run started (here: data.formants, as if run.json were
    written before it existed) reads as its default, so --resume is not refused for it; giving
    it another value on resume still is."""
    run = tmp_path / "older"
    _train(notes_cache, run, 2)
    saved = json.loads((run / "run.json").read_text())
    del saved["config"]["data"]["formants"]
    (run / "run.json").write_text(json.dumps(saved))
    assert _train(notes_cache, run, 3, resume=True).step == 3
    (run / "run.json").write_text(json.dumps(saved))
    with pytest.raises(ConfigError, match=r"changed data.formants \(0.0 -> 0.5\)"):
        _train(notes_cache, run, 4, "data.formants=0.5", resume=True)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_files_follow_the_umask(notes_cache, tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        _train(notes_cache, tmp_path / "mode", 2)
    finally:
        os.umask(old)
    for name in (MODEL_FILE, RESUME_FILE):
        assert (tmp_path / "mode" / name).stat().st_mode & 0o777 == mode, name
