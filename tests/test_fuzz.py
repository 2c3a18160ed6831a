"""Property-based fuzzing: random input to the config parser and the audio loader must only ever
raise the project's own error types (never a KeyError/TypeError from deep inside)."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waveloom.audio.io import load_audio
from waveloom.config import apply_overrides
from waveloom.errors import WaveloomError
from waveloom.models.load import build_run_config, load_config

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8)
keys = st.sampled_from(["family", "model", "data", "train", "bogus"])
sections = st.sampled_from(["model", "data", "train"])
fields = st.sampled_from(["residual_channels", "stacks", "head", "window", "batch_size", "lr",
                          "max_steps", "ema_decay", "precision", "upsample_factors", "local",
                          "betas", "nonsense"])


@SETTINGS
@given(st.dictionaries(keys, values, max_size=4))
def test_random_config_dicts(data):
    try:
        build_run_config(data)
    except WaveloomError:
        pass


@SETTINGS
@given(st.lists(st.tuples(sections, fields, values), max_size=4))
def test_random_overrides_on_a_real_preset(overrides):
    texts = [f"{s}.{f}={v!r}" for s, f, v in overrides]
    try:
        run = build_run_config(apply_overrides({"family": "wavenet"}, texts))
        run.validate()
    except WaveloomError:
        pass


@SETTINGS
@given(st.text(alphabet=string.printable, max_size=200))
def test_random_yaml_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "c.yaml"
    path.write_text(text)
    try:
        load_config(path)
    except WaveloomError:
        pass


@SETTINGS
@given(st.binary(max_size=2048), st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ".aiff"]))
def test_random_bytes_as_audio(tmp_path_factory, blob, ext):
    path = tmp_path_factory.mktemp("fuzz") / f"x{ext}"
    path.write_bytes(blob)
    try:
        audio, sr = load_audio(path)
    except WaveloomError:
        return
    assert audio.dtype.name == "float32" and sr > 0
