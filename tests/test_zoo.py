"""The model zoo (issue #30): measurement records, cards read from checkpoints, the
``waveloom models`` verb, and docs/models.md generated from them (never edited by hand)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from waveloom.checkpoint import save_checkpoint
from waveloom.cli import main
from waveloom.errors import DataError
from waveloom.models.load import load_config
from waveloom.models.registry import build_model
from waveloom.zoo.card import card_of
from waveloom.zoo.records import Measurement, read_records, record, records_path
from waveloom.zoo.render import card_text, docs_page

from .conftest import CONFIGS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def checkpoint(tmp_path) -> Path:
    run = load_config(CONFIGS / "wavenet" / "tiny.yaml")
    model = build_model(run)
    path = tmp_path / "runs" / "my-run" / "model.safetensors"
    save_checkpoint(path, model, run, {"step": 12, "instruments": ["a", "b"],
                                       "training": "tiny preset, 12 steps"})
    return path


def _m(metric: str, value: float, data: str = "d", headline: bool = False) -> Measurement:
    return Measurement(metric=metric, value=value, data=data, command="python x.py",
                       n=10, interval=(value - 1, value + 1), headline=headline)


def test_records_replace_the_same_metric_on_the_same_data_and_keep_one_headline(checkpoint):
    record(checkpoint, _m("acc", 50.0, headline=True))
    record(checkpoint, _m("acc", 60.0, headline=True))  # re-measured: replaces
    record(checkpoint, _m("acc", 70.0, data="other"))  # other data: kept beside it
    record(checkpoint, _m("dist", 3.0, headline=True))
    found, limits = read_records(checkpoint)
    assert [(m.metric, m.value, m.data) for m in found] == [
        ("acc", 60.0, "d"), ("acc", 70.0, "other"), ("dist", 3.0, "d")]
    assert [m.headline for m in found] == [False, False, True] and limits == []
    assert records_path(checkpoint) == checkpoint.with_name("model.card.json")
    assert found[0].interval == (59.0, 61.0)


def test_a_non_finite_figure_or_a_damaged_record_file_is_one_line(checkpoint):
    with pytest.raises(DataError, match="not finite"):
        _m("acc", float("nan"))
    records_path(checkpoint).write_text("{not json")
    with pytest.raises(DataError, match="unreadable measurement records") as err:
        read_records(checkpoint)
    assert "\n" not in str(err.value)


def test_card_reads_the_checkpoint_itself(checkpoint):
    record(checkpoint, _m("acc", 61.5, headline=True))
    card = card_of(checkpoint)
    state = build_model(load_config(CONFIGS / "wavenet" / "tiny.yaml")).state_dict()
    assert card.name == "my-run" and card.family == "wavenet" and card.steps == 12
    assert card.parameters == sum(t.numel() for t in state.values() if isinstance(t, torch.Tensor))
    assert card.vocabulary == ["a", "b"] and card.headline().value == 61.5
    text = card_text(card)
    assert "tiny preset, 12 steps" in text and "| acc | 61.5 | [60.5, 62.5] | 10 | d |" in text
    assert "python x.py" in text


def test_models_verb_lists_and_prints_a_card_and_names_the_known_ones(checkpoint, capsys):
    runs = str(checkpoint.parent.parent)
    assert main(["models", "--dir", runs]) == 0
    out = capsys.readouterr().out
    assert "| my-run | wavenet |" in out and "| music-transformer-chorales |" in out
    assert main(["models", "my-run", "--dir", runs]) == 0
    assert capsys.readouterr().out.startswith("## my-run")
    assert main(["models", "nope", "--dir", runs]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "my-run" in err and "wavenet-small-notes" in err


def test_docs_models_page_is_generated_from_the_records():
    """docs/models.md is the generator's output, byte for byte: regenerate it with
    `python -m waveloom.zoo.render docs/models.md` after recording a measurement."""
    assert (ROOT / "docs" / "models.md").read_text(encoding="utf-8") == docs_page()


def test_a_shipped_model_wins_a_name_it_shares_with_a_run(checkpoint, capsys):
    run = checkpoint.parent.parent / "ddsp-violin" / "model.safetensors"
    run.parent.mkdir()
    run.write_bytes(checkpoint.read_bytes())
    assert main(["models", "ddsp-violin", "--dir", str(run.parent.parent)]) == 0
    assert "`waveloom/assets/ddsp-violin.safetensors`" in capsys.readouterr().out
    assert main(["models", str(run)]) == 0  # the run is still reached by its path
    assert "wavenet" in capsys.readouterr().out


def test_the_reproducing_command_keeps_its_quoting():
    from waveloom.zoo.records import command_line

    line = command_line(["--model", "DDSP ae=x.safetensors", "--record"], "benchmarks/b.py")
    assert line == "python benchmarks/b.py --model 'DDSP ae=x.safetensors'"


def test_a_shipped_models_name_works_wherever_a_checkpoint_path_does(tmp_path, monkeypatch):
    """``waveloom generate wavenet-small-notes`` (the name ``waveloom models`` lists) means the
    shipped file; an existing path, a folder or a path with a directory part is left alone."""
    from waveloom.shipped import SHIPPED, checkpoint_path

    monkeypatch.chdir(tmp_path)
    shipped = sorted(SHIPPED.glob("*.safetensors"))
    assert shipped, "waveloom/assets holds no model"
    name = shipped[0].stem
    assert checkpoint_path(name) == shipped[0]
    assert checkpoint_path(shipped[0].name) == shipped[0]
    (tmp_path / name).mkdir()  # a local folder of that name wins (ddsp reads folders)
    assert checkpoint_path(name) == Path(name)
    assert checkpoint_path(f"runs/{name}") == Path(f"runs/{name}")
    assert str(checkpoint_path("no-such-model")) == "no-such-model"


def test_a_runs_best_weights_are_named_after_the_run():
    """train.keep_best's best.safetensors lists as RUN/best, not as one more 'best'."""
    from waveloom.zoo.card import display_name

    assert display_name(Path("runs/lm/best.safetensors")) == "lm/best"
    assert display_name(Path("runs/lm/model.safetensors")) == "lm"
    assert display_name(Path("waveloom/assets/codec-notes.safetensors")) == "codec-notes"
