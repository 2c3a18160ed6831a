"""The trainer under DDP and under faults: exact resume, SIGKILL/SIGTERM, bad input."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from waveloom.errors import CheckpointError, ConfigError, DataError
from waveloom.models.load import load_config
from waveloom.train.trainer import RESUME_FILE, load_resume_state, train

from .conftest import CONFIGS

TINY = CONFIGS / "wavenet" / "tiny.yaml"
SMALL_RUN = ["data.window=256", "data.batch_size=2", "model.num_instruments=4"]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "waveloom.cli", "train", str(TINY), *args]


@pytest.mark.parametrize("extra", [[], ["model.cond_dropout=0.5"]], ids=["plain", "dropout"])
def test_resume_is_exact(notes_cache, tmp_path, extra):
    """Also with label dropout, which draws from the global RNG every step: the resumed run
    must restore it after everything that draws at start-up (loader, export's model build)."""
    overrides = [*SMALL_RUN, "train.checkpoint_every=3", "train.ema_decay=0.9", *extra]
    straight = train(load_config(TINY, [*overrides, "train.max_steps=6"]), notes_cache,
                     tmp_path / "a", progress=False)
    assert straight.step == 6
    train(load_config(TINY, [*overrides, "train.max_steps=3"]), notes_cache, tmp_path / "b",
          progress=False)
    resumed = train(load_config(TINY, [*overrides, "train.max_steps=6"]), notes_cache,
                    tmp_path / "b", resume=True, progress=False)
    assert resumed.step == 6
    assert _max_diff(_weights(tmp_path / "a"), _weights(tmp_path / "b")) == 0.0


def test_ddp_two_processes_equal_one_process_on_the_same_global_batch(notes_cache, tmp_path):
    """2 CPU processes (gloo) with batch B each == 1 process with batch 2B, step for step."""
    common = ["--data", str(notes_cache), "--max-steps", "4", "--accelerator", "cpu", "-q",
              "data.window=256", "model.num_instruments=4"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    two = subprocess.run(
        _cli(*common, "--out", str(tmp_path / "ddp"), "--devices", "2", "--strategy", "ddp",
             "data.batch_size=2"),
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("done: step 4") == 1, "only rank 0 reports"
    one = subprocess.run(
        _cli(*common, "--out", str(tmp_path / "one"), "--devices", "1", "data.batch_size=4"),
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert one.returncode == 0, one.stderr[-2000:]
    # Gradients are averaged across ranks, so the weights agree to float32 reduction order.
    assert _max_diff(_weights(tmp_path / "ddp"), _weights(tmp_path / "one")) < 1e-5
    assert len(list((tmp_path / "ddp" / "tb").iterdir())) == 1, "only rank 0 logs"


def _saved_step(run: Path) -> int:
    path = run / RESUME_FILE
    return int(load_resume_state(path)["step"]) if path.exists() else 0


def test_sigkill_at_random_points_then_resume_reaches_the_same_weights(notes_cache, tmp_path):
    steps, every = 60, 3
    args = ["--data", str(notes_cache), "--max-steps", str(steps), "-q", *SMALL_RUN,
            f"train.checkpoint_every={every}"]
    ref = subprocess.run(_cli(*args, "--out", str(tmp_path / "ref")), capture_output=True,
                         text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr[-2000:]

    run = tmp_path / "killed"
    rng = random.Random(0)
    kills, saved_before = 0, 0
    for attempt in range(12):
        resume = ["--resume"] if attempt else []
        proc = subprocess.Popen(_cli(*args, "--out", str(run), *resume),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if kills < 3:
            # Wait until the run has made progress past its last save, then kill it hard.
            deadline = time.monotonic() + 120
            while _saved_step(run) <= saved_before and proc.poll() is None:
                assert time.monotonic() < deadline, "training made no progress"
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 0.3))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(timeout=60)
            saved = _saved_step(run)
            assert saved >= saved_before, "the step counter went back"
            saved_before = saved
            _weights(run)  # the visible checkpoint is always complete and loadable
        else:
            assert proc.wait(timeout=300) == 0
            break
    assert kills == 3
    assert _saved_step(run) == steps
    assert _max_diff(_weights(tmp_path / "ref"), _weights(run)) == 0.0


def test_sigterm_saves_the_current_step(notes_cache, tmp_path):
    run = tmp_path / "term"
    proc = subprocess.Popen(
        _cli("--data", str(notes_cache), "--out", str(run), "--max-steps", "100000", *SMALL_RUN,
             "train.checkpoint_every=1000000", "-q"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while not (run / "tb").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]  # 143: saved, not finished
    assert "SIGTERM: saved step" in err + out and "--resume" in err + out
    assert 0 < _saved_step(run) < 100000


def test_crafted_resume_file_is_refused(notes_cache, tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("touch /tmp/waveloom-resume-pwned",))

    run = tmp_path / "evil"
    run.mkdir()
    torch.save({"step": 1, "x": Exploit()}, run / RESUME_FILE)
    with pytest.raises(CheckpointError, match="cannot resume"):
        train(load_config(TINY, SMALL_RUN), notes_cache, run, resume=True, progress=False)
    assert not Path("/tmp/waveloom-resume-pwned").exists()


def test_cache_at_another_sample_rate(notes_cache, tmp_path):
    cfg = load_config(TINY, [*SMALL_RUN, "data.sample_rate=22050"])
    with pytest.raises(DataError, match="16000 Hz.*22050 Hz|22050.*16000"):
        train(cfg, notes_cache, tmp_path / "sr", progress=False)


def test_too_few_instrument_embeddings(notes_cache, tmp_path):
    cfg = load_config(TINY, [*SMALL_RUN, "model.num_instruments=1"])
    with pytest.raises(ConfigError, match="num_instruments=2"):
        train(cfg, notes_cache, tmp_path / "inst", progress=False)


def test_output_folder_that_cannot_be_created(notes_cache, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataError, match="not writable"):
        train(load_config(TINY, SMALL_RUN), notes_cache, blocker / "run", progress=False)


def test_minutes_budget_sets_max_steps_from_a_calibration(notes_cache, tmp_path):
    """--minutes turns a wall-clock budget into train.max_steps (so the LR schedule ends), from
    the steady-state step time of short calibration runs; the run then reaches that step."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        _cli("--data", str(notes_cache), "--out", str(tmp_path / "budget"), "--minutes", "0.05",
             "-q", *SMALL_RUN),
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("calibrated:"))
    steps = int(line.split("train.max_steps=")[1].split()[0])
    ms = float(line.split()[1])
    assert steps >= 1 and abs(steps * ms / 1000 - 3.0) < 0.05 * 3.0 + ms / 1000
    assert f"done: step {steps}," in done.stdout
    bad = subprocess.run(
        _cli("--data", str(notes_cache), "--out", str(tmp_path / "b2"), "--minutes", "1",
             "--resume"),
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: --minutes")
    assert len(bad.stderr.strip().splitlines()) == 1
    # a step count given as an override is refused too, not silently replaced (session 31)
    bad = subprocess.run(
        _cli("--data", str(notes_cache), "--out", str(tmp_path / "b3"), "--minutes", "1",
             "train.max_steps=50"),
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert bad.returncode == 2 and "train.max_steps=" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_init_from_starts_at_the_given_weights_and_refuses_a_mismatch(notes_cache, tmp_path):
    """train.init_from: fine-tuning starts from a checkpoint's weights (EMA included), and a
    checkpoint of another shape or family gets a one-line error naming the setting."""
    first = train(load_config(TINY, [*SMALL_RUN, "train.max_steps=2"]), notes_cache, tmp_path / "a",
                  progress=False)
    source = first.run_dir / "model.safetensors"
    tuned = train(load_config(TINY, [*SMALL_RUN, "train.max_steps=1", "train.lr=1e-12",
                                     "train.ema_decay=0.9", f"train.init_from={source}"]),
                  notes_cache, tmp_path / "b", progress=False)
    assert _max_diff(_weights(tuned.run_dir), _weights(first.run_dir)) < 1e-6
    scratch = train(load_config(TINY, [*SMALL_RUN, "train.max_steps=1", "train.lr=1e-12"]),
                    notes_cache, tmp_path / "c", progress=False)
    assert _max_diff(_weights(scratch.run_dir), _weights(first.run_dir)) > 1e-3
    with pytest.raises(CheckpointError, match=r"train.init_from=.*shaped differently"):
        train(load_config(TINY, [*SMALL_RUN, "model.stacks=3", f"train.init_from={source}"]),
              notes_cache, tmp_path / "d", progress=False)
    with pytest.raises(CheckpointError, match="train.init_from=.*no such file"):
        train(load_config(TINY, [*SMALL_RUN, f"train.init_from={tmp_path / 'none.safetensors'}"]),
              notes_cache, tmp_path / "e", progress=False)
    other = CONFIGS / "samplernn" / "tiny.yaml"
    with pytest.raises(CheckpointError, match="'wavenet' checkpoint cannot start a 'samplernn'"):
        train(load_config(other, ["data.window=256", "data.batch_size=2",
                                  f"train.init_from={source}"]),
              notes_cache, tmp_path / "f", progress=False)


def test_ema_warms_up_and_resumes_with_its_count():
    """The EMA's decay warms up as min(decay, (1+n)/(10+n)): after 100 updates towards a new
    value a 0.999 average has mostly moved (0.999^100 would keep 90 % of the start), and the
    update count survives a state-dict round trip (exact resume)."""
    from waveloom.train.ema import EMA

    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    ema = EMA(model, 0.999)
    assert ema.current_decay() == 0.1
    with torch.no_grad():
        model.weight.fill_(1.0)
    for _ in range(100):
        ema.update(model)
    moved = float(ema.shadow["weight"])
    assert moved > 0.99
    again = EMA(model, 0.999)
    again.load_state_dict(ema.state_dict())
    assert again.updates == 100 and again.current_decay() == ema.current_decay()
    assert ema.current_decay() == min(0.999, 101 / 110)


@pytest.mark.parametrize("family", ["wavenet", "samplernn", "wavegan"])
def test_bf16_mixed_runs_every_forward_method_under_autocast(notes_cache, tmp_path, monkeypatch,
                                                             family):
    """train.precision=bf16-mixed must reach the model: Fabric autocasts ``model(...)`` but not
    the methods marked with ``mark_forward_method`` (loss, loss_chunk, generator_loss,
    discriminator_loss), which are how each objective calls its model. Found when a bf16-mixed
    run's losses equalled the float32 run's bit for bit."""
    from waveloom.models.registry import get_family

    seen: list[tuple[str, bool]] = []
    cls = get_family(family).model
    for name in ("loss", "loss_chunk", "generator_loss", "discriminator_loss"):
        if hasattr(cls, name):
            original = getattr(cls, name)

            def spy(self, *a, _name=name, _original=original, **k):
                seen.append((_name, torch.is_autocast_enabled("cpu")))
                return _original(self, *a, **k)

            monkeypatch.setattr(cls, name, spy)
    extra = {"wavenet": [*SMALL_RUN], "samplernn": ["model.num_instruments=4"], "wavegan": []}
    cfg = load_config(CONFIGS / family / "tiny.yaml",
                      ["train.max_steps=1", "train.precision=bf16-mixed", *extra[family]])
    train(cfg, notes_cache, tmp_path / family, progress=False)
    assert seen and all(on for _, on in seen), seen
