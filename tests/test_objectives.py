"""Training objectives and the loop that runs them: exact resume for every objective, a trainer
that names no family and no objective, and validation during training."""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from waveloom.errors import ConfigError
from waveloom.models.load import load_config
from waveloom.models.registry import build_model, family_names, get_family
from waveloom.train.objectives import OBJECTIVES, build_objective
from waveloom.train.trainer import RESUME_FILE, load_resume_state, train

from .conftest import CONFIGS, REPO

TRAIN_PACKAGE = REPO / "waveloom" / "train"

# One tiny run per objective, with EMA on and everything that draws from the global RNG.
RUNS = {
    "likelihood": ("wavenet", ["data.window=256", "data.batch_size=2", "model.cond_dropout=0.5"]),
    "adversarial": ("wavegan", ["model.n_critic=2"]),
    "truncated_bptt": ("samplernn", ["data.batch_size=2"]),
}


def _config(objective: str, *extra: str):
    family, overrides = RUNS[objective]
    return load_config(CONFIGS / family / "tiny.yaml",
                       [*overrides, "train.ema_decay=0.9", "train.checkpoint_every=2", *extra])


def _all_weights(run: Path) -> dict[str, torch.Tensor]:
    """The exported (EMA) weights and the trained ones of resume.pt, under distinct names."""
    exported = load_file(str(run / "model.safetensors"))
    trained = load_resume_state(run / RESUME_FILE)["model"]
    return {**{f"export/{k}": v for k, v in exported.items()},
            **{f"trained/{k}": v for k, v in trained.items()}}


@pytest.mark.parametrize("objective", sorted(RUNS))
def test_every_objective_resumes_bitwise(objective, notes_cache, tmp_path):
    """4 steps straight == 2 steps + resume + 2 steps, every weight exactly; the split run also
    validates every step, which must not change what training draws."""
    assert get_family(RUNS[objective][0]).objective == objective
    straight = train(_config(objective, "train.max_steps=4"), notes_cache, tmp_path / "a",
                     progress=False)
    assert straight.step == 4 and math.isfinite(straight.last_loss)
    half = ["train.val_every=1", "train.val_batches=1"]
    train(_config(objective, "train.max_steps=2", *half), notes_cache, tmp_path / "b",
          progress=False)
    resumed = train(_config(objective, "train.max_steps=4", *half), notes_cache, tmp_path / "b",
                    resume=True, progress=False)
    assert resumed.step == 4
    a, b = _all_weights(tmp_path / "a"), _all_weights(tmp_path / "b")
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


def _names_in(source: str) -> set[str]:
    words = set(re.findall(r"[a-z0-9_]+", source.lower()))
    forbidden = {*family_names(), *OBJECTIVES, "gan", "gans", "bptt"}
    return words & forbidden


def test_the_trainer_names_no_family_and_no_objective():
    """The loop runs whatever objective the registry names: no branch on a family or objective
    name in the trainer or its helpers (the objectives themselves may name theirs)."""
    assert _names_in("if family == 'wavegan' or x.truncated_bptt: gan") == {
        "wavegan", "truncated_bptt", "gan"}, "the check itself works"
    # ema.py's docstring cites the WaveNet papers that motivate averaging: not a branch.
    modules = [p for p in TRAIN_PACKAGE.glob("*.py") if p.name != "ema.py"]
    assert TRAIN_PACKAGE / "trainer.py" in modules
    found = {p.name: _names_in(p.read_text()) for p in modules}
    assert {k: v for k, v in found.items() if v} == {}
    trainer = (TRAIN_PACKAGE / "trainer.py").read_text()
    assert "truncated_bptt" not in trainer and "objective ==" not in trainer


def test_every_registered_objective_exists_and_unknown_names_are_refused():
    for family in family_names():
        assert get_family(family).objective in OBJECTIVES, family
    assert type(build_objective("reconstruction")) is type(build_objective("likelihood"))
    with pytest.raises(ConfigError, match="unknown training objective 'nope'; known: "):
        build_objective("nope")


def test_no_function_in_train_is_longer_than_80_lines():
    for path in TRAIN_PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                assert length <= 80, f"{path.name}:{node.name} has {length} lines"


def _scalars(run: Path, tag: str) -> dict[int, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    if tag not in events.Tags()["scalars"]:
        return {}
    return {e.step: e.value for e in events.Scalars(tag)}


def test_val_every_logs_the_mean_loss_of_fixed_validation_windows(notes_cache, tmp_path):
    """val/loss every val_every steps is the eval-mode mean loss over train.val_batches
    fixed batches of data.val_split, the same in every run, and training is unchanged by it."""
    from waveloom.data.cache import AudioCache

    common = ["train.max_steps=4", "train.val_batches=2", "train.log_every=1"]
    train(_config("likelihood", *common, "train.val_every=2"), notes_cache, tmp_path / "a",
          progress=False)
    train(_config("likelihood", *common, "train.val_every=2"), notes_cache, tmp_path / "b",
          progress=False)
    train(_config("likelihood", *common), notes_cache, tmp_path / "c", progress=False)
    logged = _scalars(tmp_path / "a", "val/loss")
    assert sorted(logged) == [2, 4] and all(math.isfinite(v) for v in logged.values())
    assert logged == _scalars(tmp_path / "b", "val/loss")
    assert _scalars(tmp_path / "c", "val/loss") == {}
    assert _all_weights(tmp_path / "a").keys() == _all_weights(tmp_path / "c").keys()
    a, c = _all_weights(tmp_path / "a"), _all_weights(tmp_path / "c")
    assert all(torch.equal(a[k], c[k]) for k in a), "validation changed training"

    # The logged value is the mean loss of the trained (not averaged) weights at step 4 over
    # the first 2 * batch_size items of the validation split's windows.
    cfg = _config("likelihood", *common)
    model = build_model(cfg)
    model.load_state_dict(load_resume_state(tmp_path / "a" / RESUME_FILE)["model"])
    model.eval()
    objective = build_objective("likelihood")
    data = objective.make_dataset(AudioCache(notes_cache), cfg, model, split="valid", epoch_size=4)
    with torch.no_grad():
        losses = [float(model.loss(torch.utils.data.default_collate([data[i], data[i + 1]]))
                        ["loss"]) for i in (0, 2)]
    assert logged[4] == pytest.approx(sum(losses) / 2, rel=1e-6)


def test_keep_best_keeps_the_weights_of_the_lowest_validation_loss(notes_cache, tmp_path):
    """train.keep_best: best.safetensors holds the export weights of the step whose val/loss
    was lowest (equal to a run stopped there), with that step and loss in its metadata; a
    resumed run replaces it only with better weights."""
    from safetensors.torch import load_file

    from waveloom.checkpoint import read_extra

    common = ["train.val_batches=1", "train.log_every=1", "train.val_every=1", "train.lr=0.05"]
    train(_config("likelihood", "train.max_steps=5", "train.keep_best=true", *common),
          notes_cache, tmp_path / "a", progress=False)
    logged = _scalars(tmp_path / "a", "val/loss")
    best_step = min(logged, key=logged.get)
    extra = read_extra(tmp_path / "a" / "best.safetensors")
    assert extra["step"] == best_step
    assert extra["val_loss"] == pytest.approx(logged[best_step], rel=1e-6)
    train(_config("likelihood", f"train.max_steps={best_step}", *common), notes_cache,
          tmp_path / "b", progress=False)
    kept, stopped = (load_file(tmp_path / d / f) for d, f in
                     (("a", "best.safetensors"), ("b", "model.safetensors")))
    assert kept.keys() == stopped.keys() and all(torch.equal(kept[k], stopped[k]) for k in kept)
    before = (tmp_path / "a" / "best.safetensors").read_bytes()
    train(_config("likelihood", "train.max_steps=6", "train.keep_best=true", *common),
          notes_cache, tmp_path / "a", resume=True, progress=False)
    step6 = _scalars(tmp_path / "a", "val/loss")[6]
    after = read_extra(tmp_path / "a" / "best.safetensors")
    if step6 < logged[best_step]:
        assert after["step"] == 6
    else:
        assert (tmp_path / "a" / "best.safetensors").read_bytes() == before
    train(_config("likelihood", "train.max_steps=1", "train.keep_best=true", *common),
          notes_cache, tmp_path / "a", overwrite=True, progress=False)
    assert read_extra(tmp_path / "a" / "best.safetensors")["step"] == 1  # not the old run's
    with pytest.raises(ConfigError, match="train.keep_best=true needs a validation loss"):
        _config("likelihood", "train.keep_best=true")


def test_validation_on_an_empty_split_is_skipped_with_a_note(notes_cache, tmp_path, capsys):
    cfg = _config("likelihood", "train.max_steps=2", "train.val_every=1",
                  "data.val_split=nothing")
    result = train(cfg, notes_cache, tmp_path / "run", progress=False)
    assert result.step == 2
    out = capsys.readouterr()
    assert "data.val_split='nothing' has no examples" in out.out + out.err
    assert (out.out + out.err).count("validation is off") == 1
    assert _scalars(tmp_path / "run", "val/loss") == {}


def test_bad_validation_settings_are_refused():
    with pytest.raises(ConfigError, match="train.val_every=-1 must be >= 0"):
        _config("likelihood", "train.val_every=-1")
