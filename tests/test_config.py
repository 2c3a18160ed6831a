"""Config loading: presets, overrides, unknown keys and bad values give one-line ConfigErrors."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from waveloom.config import (
    DataConfig,
    TrainConfig,
    apply_overrides,
    from_dict,
    parse_override,
)
from waveloom.errors import ConfigError
from waveloom.models.load import build_run_config, load_config
from waveloom.models.registry import family_names


@dataclass
class Inner:
    size: int = 3
    names: list[str] = field(default_factory=list)


@dataclass
class Outer:
    rate: float = 1.0
    flag: bool = False
    pair: tuple[float, float] = (0.1, 0.2)
    inner: Inner = field(default_factory=Inner)
    maybe: int | None = None


def test_from_dict_coerces_types():
    cfg = from_dict(
        Outer, {"rate": "3e-4", "flag": "yes", "pair": [1, 2], "inner": {"size": "7"},
                "maybe": None}
    )
    assert cfg.rate == pytest.approx(3e-4)
    assert cfg.flag is True
    assert cfg.pair == (1.0, 2.0)
    assert cfg.inner.size == 7
    assert cfg.maybe is None


def test_unknown_key_lists_valid_keys_and_suggests():
    with pytest.raises(ConfigError) as err:
        from_dict(Outer, {"rat": 1.0})
    msg = str(err.value)
    assert "'rat'" in msg and "did you mean 'rate'" in msg
    assert "flag" in msg and "inner" in msg  # the valid keys are listed
    assert "\n" not in msg


def test_bad_values_are_named():
    with pytest.raises(ConfigError, match=r"inner\.size='many'.*integer"):
        from_dict(Outer, {"inner": {"size": "many"}})
    with pytest.raises(ConfigError, match="flag"):
        from_dict(Outer, {"flag": "maybe"})
    with pytest.raises(ConfigError, match="pair"):
        from_dict(Outer, {"pair": [1, 2, 3]})


def test_overrides_parse_yaml_values():
    assert parse_override("model.layers=10") == (["model", "layers"], 10)
    # YAML 1.1 reads "3e-4" as a string; the dataclass type makes it a float.
    run = build_run_config(apply_overrides({"family": "wavenet"}, ["train.lr=3e-4"]))
    assert run.train.lr == pytest.approx(3e-4)
    assert parse_override("model.factors=[16,16]")[1] == [16, 16]
    data = apply_overrides({"train": {"lr": 1.0}}, ["train.lr=0.5", "data.window=128"])
    assert data == {"train": {"lr": 0.5}, "data": {"window": 128}}
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("model.layers")


def test_defaults_validate():
    DataConfig().validate()
    TrainConfig().validate()


@pytest.mark.parametrize(
    "override, needle",
    [
        ("train.lr=-1", "train.lr"),
        ("train.ema_decay=1.5", "ema_decay"),
        ("data.batch_size=0", "data.batch_size"),
        ("train.precision=64", "precision"),
        ("train.lr_decay=linear", "lr_decay"),
    ],
)
def test_bad_train_and_data_values(override, needle):
    data = apply_overrides({"family": family_names()[0]}, [override])
    with pytest.raises(ConfigError, match=needle):
        build_run_config(data)


def test_run_config_rejects_unknown_sections_and_families():
    with pytest.raises(ConfigError, match="unknown key 'optim'"):
        build_run_config({"family": "wavenet", "optim": {}})
    with pytest.raises(ConfigError, match="unknown model family 'wavenot'"):
        build_run_config({"family": "wavenot"})
    with pytest.raises(ConfigError, match="no 'family'"):
        build_run_config({})


def test_every_preset_loads(repo_root):
    presets = sorted((repo_root / "configs").glob("*/*.yaml"))
    assert presets, "no presets found under configs/"
    for path in presets:
        run = load_config(path)
        assert run.family == path.parent.name
        # The resolved config round-trips through a plain dict (what checkpoints store).
        assert build_run_config(run.to_dict()).to_dict() == run.to_dict()


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("family: wavenet\nmodel: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listy)
