"""Property-based fuzzing: random input to the config parser and the audio loader must only ever
raise the project's own error types (never a KeyError/TypeError from deep inside)."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waveloom.audio.io import load_audio
from waveloom.config import apply_overrides
from waveloom.errors import WaveloomError
from waveloom.models.load import build_run_config, load_config

from .conftest import CONFIGS

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


# ------------------------------------------------------------------ #19: more surfaces
# Budget: each test below runs at most FAST examples; the whole file stays under a minute.

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(st.lists(st.text(alphabet=string.printable, max_size=40), max_size=4))
def test_random_override_strings(texts):
    """Raw ``key=value`` strings as a user types them (no '=', dots, YAML flow, junk)."""
    try:
        run = build_run_config(apply_overrides({"family": "wavenet"}, texts))
        run.validate()
    except WaveloomError:
        pass


def _wav_header(fmt_tag: int, channels: int, rate: int, bits: int, data_size: int,
                riff_size: int | None, block_align: int | None) -> bytes:
    import struct

    align = block_align if block_align is not None else channels * max(bits, 0) // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * max(align, 0) & 0xFFFFFFFF,
                      align & 0xFFFF, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", data_size & 0xFFFFFFFF)
    size = (len(body) + data_size) if riff_size is None else riff_size
    return b"RIFF" + struct.pack("<I", size & 0xFFFFFFFF) + body


@FAST
@given(fmt_tag=st.sampled_from([1, 3, 6, 7, 0xFFFE, 0, 2, 0x55]),
       channels=st.integers(0, 70), rate=st.sampled_from([0, 1, 8000, 44100, 2**31 - 1]),
       bits=st.sampled_from([0, 8, 16, 24, 32, 64, 7]),
       data_size=st.integers(0, 4096), riff_size=st.none() | st.integers(0, 2**32 - 1),
       block_align=st.none() | st.integers(0, 300), payload=st.binary(max_size=600))
def test_random_wav_headers(tmp_path_factory, fmt_tag, channels, rate, bits, data_size,
                            riff_size, block_align, payload):
    """Structurally plausible WAV headers with wrong fields: info, whole-file and streamed
    decoding all end in audio or an AudioError."""
    from waveloom.audio.io import audio_info, stream_audio

    path = tmp_path_factory.mktemp("hdr") / "x.wav"
    path.write_bytes(_wav_header(fmt_tag, channels, rate, bits, data_size, riff_size,
                                 block_align) + payload)
    for read in (audio_info, lambda p: load_audio(p, sr=16000),
                 lambda p: list(stream_audio(p, 16000, block=64))):
        try:
            read(path)
        except WaveloomError:
            pass


@FAST
@given(st.text(alphabet='[]{}"\\:, 0a', max_size=300))
def test_listening_depth_guard_bounds_the_parser(text):
    """What passes the server's depth check never makes json.loads recurse too deep."""
    import json

    from waveloom.listening.server import MAX_JSON_DEPTH
    from waveloom.web import json_depth as _json_depth

    if _json_depth(text) <= MAX_JSON_DEPTH:
        try:
            json.loads(text)
        except ValueError:
            pass


_meta_values = st.one_of(st.text(max_size=30), st.sampled_from(
    ["{}", "[]", "null", "1", '{"family": "wavenet"}', '{"model": 1}', "{", '"x"']))


@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory):
    import torch

    from waveloom.checkpoint import save_checkpoint
    from waveloom.models.registry import build_model

    torch.manual_seed(0)
    run = load_config(CONFIGS / "wavenet" / "tiny.yaml")
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "m.safetensors", build_model(run),
                           run, extra={"instruments": ["a", "b"]})


@FAST
@given(key=st.sampled_from(["format", "format_version", "family", "config", "extra", "other"]),
       value=_meta_values)
def test_random_checkpoint_metadata(real_checkpoint, tmp_path_factory, key, value):
    """A real checkpoint with one metadata field replaced: loading and reading the config end
    in a model or a WaveloomError."""
    from waveloom.models.load import load_checkpoint, read_config

    path = _with_metadata(real_checkpoint, tmp_path_factory.mktemp("meta"), key, value)
    for read in (read_config, load_checkpoint):
        try:
            read(path)
        except WaveloomError:
            pass


def _with_metadata(checkpoint, folder, key: str, value: str):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(checkpoint), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta[key] = value
    path = folder / "m.safetensors"
    save_file(tensors, str(path), metadata=meta)
    return path


@FAST
@given(value=_meta_values)
def test_random_checkpoint_extra_metadata(real_checkpoint, tmp_path_factory, value):
    """The 'extra' metadata field (instrument names, step) replaced by junk."""
    from waveloom.models.load import read_extra

    path = _with_metadata(real_checkpoint, tmp_path_factory.mktemp("meta"), "extra", value)
    try:
        read_extra(path)
    except WaveloomError:
        pass
