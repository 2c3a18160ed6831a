"""The verb layer: waveloom.app's contract (add_parser + run per module), cli.py as a thin loop
over it, shared flags validated once, and ``generate --list`` / the default-instrument note."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import waveloom
import waveloom.app
from waveloom.checkpoint import save_checkpoint
from waveloom.cli import APP_MODULES, main
from waveloom.models.load import load_config
from waveloom.models.registry import build_model

from .conftest import CONFIGS

PACKAGE = Path(waveloom.__file__).resolve().parent
VOCAB = ["brass_synthetic_000", "flute_synthetic_001", "keyboard_acoustic_002", "organ_x"]


def _app_modules() -> list[str]:
    # common.py and _private.py modules help verb modules; every other module is a verb group
    return [m.name for m in pkgutil.iter_modules(waveloom.app.__path__)
            if m.name != "common" and not m.name.startswith("_")]


def test_every_app_module_exposes_add_parser_and_run_and_cli_loops_over_all():
    names = _app_modules()
    assert {"generate", "autoencode", "vocode", "codes", "demo", "train", "evaluate"} <= set(names)
    for name in names:
        module = importlib.import_module(f"waveloom.app.{name}")
        assert callable(getattr(module, "add_parser", None)), f"app/{name}.py: no add_parser"
        assert callable(getattr(module, "run", None)), f"app/{name}.py: no run"
    assert {m.__name__.rsplit(".", 1)[1] for m in APP_MODULES} == set(names)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_cli_imports_only_app_modules_errors_and_the_package():
    allowed = {"waveloom", "waveloom.app", "waveloom.errors", "waveloom.errors.WaveloomError"}
    for name in _imports(PACKAGE / "cli.py"):
        if name.startswith("waveloom"):
            assert name in allowed or name.startswith("waveloom.app."), name


def test_package_root_keeps_no_verb_modules():
    for gone in ("generate", "autoencode", "vocode", "encode_codes", "demo"):
        assert not (PACKAGE / f"{gone}.py").exists(), f"waveloom/{gone}.py belongs in app/"


def test_app_draws_through_sampling_sample_without_probing_signatures():
    for path in [*(PACKAGE / "app").glob("*.py"), PACKAGE / "cli.py"]:
        text = path.read_text()
        assert "inspect" not in _imports(path) and "signature(" not in text, path.name
        assert ".generate(" not in text and ".decode(" not in text, path.name


def test_help_is_instant_no_torch():
    code = ("import sys, waveloom.cli\n"
            "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --------------------------------------------------------------------------- generate


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A tiny WaveNet with pitch + 4 named instruments, and one with pitch only."""
    root = tmp_path_factory.mktemp("app")
    torch.manual_seed(0)
    run = load_config(CONFIGS / "wavenet" / "tiny.yaml")
    named = save_checkpoint(root / "named.safetensors", build_model(run), run,
                            extra={"instruments": VOCAB})
    run = load_config(CONFIGS / "wavenet" / "tiny.yaml", ["model.instrument_conditioning=false"])
    pitch_only = save_checkpoint(root / "pitch.safetensors", build_model(run), run)
    return {"named": named, "pitch_only": pitch_only}


def test_generate_list_prints_vocabulary_and_pitch(checkpoints, capsys):
    assert main(["generate", str(checkpoints["named"]), "--list"]) == 0
    out = capsys.readouterr().out
    assert "pitch: yes" in out
    for i, name in enumerate(VOCAB):
        assert f"{i:4d}  {name}" in out
    assert main(["generate", str(checkpoints["pitch_only"]), "--list"]) == 0
    out = capsys.readouterr().out
    assert "pitch: yes" in out and "instruments: none" in out


def test_generate_names_the_default_instrument_on_stderr(checkpoints, tmp_path, capsys):
    args = ["generate", str(checkpoints["named"]), "--n", "1", "--seconds", "0.005",
            "--threads", "1", "--device", "cpu", "-q"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "instrument 0 (brass_synthetic_000)" in err and "--list" in err
    assert main([*args, "--out", str(tmp_path / "b"), "--instrument", "flute_synthetic_001"]) == 0
    assert "instrument 0" not in capsys.readouterr().err
    pitch_only = ["generate", str(checkpoints["pitch_only"]), *args[2:]]
    assert main([*pitch_only, "--out", str(tmp_path / "c")]) == 0
    assert "instrument" not in capsys.readouterr().err


def test_generate_help_mentions_list_and_default_instrument(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--list" in text and "id 0" in text and "stderr" in text


@pytest.mark.parametrize("flags, message", [
    (["--seconds", "nan"], "--seconds nan"),
    (["--seconds", "inf"], "--seconds inf"),
    (["--seconds", "0"], "--seconds 0"),
    (["--seconds", "-1"], "--seconds -1"),
    (["--seconds", "1e9"], "lower --seconds or --n"),  # #19: refused before drawing
    (["--seconds", "1e9", "--engine", "torch"], "lower --seconds or --n"),
    (["--seconds", "2e5", "--n", "100000"], "free"),
    (["--n", "-1"], "--n -1"),
    (["--engine", "warp"], "--engine 'warp'"),
    (["--weights", "int4"], "--weights 'int4'"),
    (["--temperature", "0"], "--temperature 0"),
    (["--seed", "-3"], "--seed -3"),
    (["--threads", "0"], "--threads 0"),
    ([], "--out"),
])
def test_bad_generate_flags_are_one_line_errors(flags, message, checkpoints, tmp_path, capsys):
    out = [] if not flags else ["--out", str(tmp_path / "x")]
    assert main(["generate", str(checkpoints["named"]), *out, *flags, "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err, err


def test_decode_and_vocode_validate_through_the_same_options(checkpoints, tmp_path, capsys):
    for argv in (["decode", str(checkpoints["named"]), "x.npy", "--out", str(tmp_path),
                  "--temperature", "-1"],
                 ["vocode", str(checkpoints["named"]), "x.npy", "--out", str(tmp_path),
                  "--seed", "-1"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: --") and "\n" not in err, err


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_encode_and_evaluate_seconds_are_checked(value, checkpoints, tmp_path, capsys):
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(800, np.float32) + 0.1, 16000)
    argv = ["encode", str(checkpoints["named"]), str(wav), "--out", str(tmp_path / "e")]
    assert main([*argv, "--seconds", value]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and f"--seconds {value}" in err, err
    from waveloom.errors import ConfigError
    from waveloom.evaluate.generated import generate_set

    with pytest.raises(ConfigError, match=f"--seconds {float(value)}"):  # evaluate's drawing
        generate_set(checkpoints["named"], tmp_path / "g", n=2, seconds=float(value))


def test_no_function_over_80_lines_in_the_verb_layer():
    for path in [*(PACKAGE / "app").glob("*.py"), PACKAGE / "cli.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                assert length <= 80, f"{path.name}:{node.lineno} {node.name}: {length} lines"


def test_long_generate_streams_the_same_bytes(checkpoints, tmp_path, monkeypatch):
    """#19: the fast engine draws and writes a long output in segments; the files are byte
    for byte those of drawing it whole."""
    import waveloom.app.generate as gen
    from waveloom.audio.io import save_audio
    from waveloom.config import SamplingOptions
    from waveloom.sampling.sample import sample

    options = SamplingOptions(seed=5, engine="fast", threads=1, progress=False)
    source = gen.load_source(checkpoints["named"], "cpu", 1)
    monkeypatch.setattr(gen, "SEGMENT", 333)
    monkeypatch.setattr(gen, "PLOT_SECONDS", 0.01)
    paths = gen.draw_to_folder(source, tmp_path / "s", n=2, seconds=0.1, pitch=60,
                               options=options)
    cond = gen.build_cond(source.model, 2, pitch=60, instrument=None, vocabulary=VOCAB)
    whole = sample(source.model, 2, 1600, cond, options).numpy()
    for i, path in enumerate(paths):
        expected = save_audio(tmp_path / f"w{i}.wav", whole[i], 16000)
        assert path.read_bytes() == expected.read_bytes()
        assert path.with_suffix(".png").is_file()
