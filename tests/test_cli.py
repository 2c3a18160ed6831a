"""The README's flow through the real console entry point: data -> prepare -> train -> generate
-> evaluate, on a handful of rendered notes with the tiny preset. Also: errors are one line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from waveloom.cli import main

from .conftest import CONFIGS


def run_cli(*args: str) -> None:
    assert main([*args]) == 0, f"waveloom {' '.join(args)} failed"


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow")
    notes, cache, run = root / "notes", root / "cache", root / "run"
    run_cli("data", "render-notes", str(notes), "--programs", "0,24", "--pitches", "55-62",
            "--velocities", "100", "-q")
    run_cli("prepare", str(notes), str(cache), "-q")
    run_cli("train", str(CONFIGS / "wavenet" / "tiny.yaml"), "--data", str(cache),
            "--out", str(run), "--max-steps", "6", "train.checkpoint_every=3",
            "data.window=256", "data.batch_size=2", "-q")
    return root, notes, cache, run


def test_flow_writes_checkpoint_and_generates(flow):
    root, _, _, run = flow
    ckpt = run / "model.safetensors"
    assert ckpt.is_file() and (run / "resume.pt").is_file() and (run / "config.yaml").is_file()
    out_a, out_b = root / "gen-a", root / "gen-b"
    for out in (out_a, out_b):
        run_cli("generate", str(ckpt), "--out", str(out), "--n", "2", "--seconds", "0.05",
                "--pitch", "60", "--instrument", "0", "--seed", "5", "-q")
    wavs = sorted(out_a.glob("*.wav"))
    assert len(wavs) == 2 and all(w.with_suffix(".png").is_file() for w in wavs)
    audio, sr = sf.read(wavs[0])
    assert sr == 16000 and len(audio) == 800 and np.isfinite(audio).all()
    for w in wavs:  # same seed -> byte-identical output
        assert w.read_bytes() == (out_b / w.name).read_bytes()


def test_resume_continues_from_saved_step(flow):
    _, _, cache, run = flow
    run_cli("train", str(CONFIGS / "wavenet" / "tiny.yaml"), "--data", str(cache),
            "--out", str(run), "--max-steps", "8", "train.checkpoint_every=3",
            "data.window=256", "data.batch_size=2", "--resume", "-q")
    from waveloom.checkpoint import read_extra

    assert read_extra(run / "model.safetensors")["step"] == 8


def test_evaluate_reports_nll_and_compressors(flow):
    root, _, cache, run = flow
    out = root / "nll.json"
    run_cli("evaluate", str(run / "model.safetensors"), "--data", str(cache), "--split",
            "train", "--metrics", "nll", "--max-examples", "2", "--json", str(out), "-q",
            "--threads", "1")
    report = json.loads(out.read_text())
    assert 0 < report["nll"]["bits_per_sample"] < 12
    assert report["nll"]["samples"] == 2 * 4 * 16000
    base = report["baselines"]
    assert 0 < base["xz_bits_per_sample"] < 8.5 and 0 < base["flac_bits_per_sample"] < 9


def _one_line_error(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "waveloom.cli", *args], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_errors_are_one_line(flow, tmp_path):
    root, _, cache, run = flow
    msg = _one_line_error("train", str(CONFIGS / "wavenet" / "tiny.yaml"), "--data", str(cache),
                          "--out", str(tmp_path / "r"), "model.residual_chanels=8")
    assert "residual_chanels" in msg and "valid keys" in msg
    msg = _one_line_error("generate", str(tmp_path / "missing.safetensors"), "--out",
                          str(tmp_path / "g"))
    assert "missing.safetensors" in msg
    msg = _one_line_error("prepare", str(tmp_path / "nowhere"), str(tmp_path / "c"))
    assert "nowhere" in msg
    msg = _one_line_error("train", str(CONFIGS / "wavenet" / "tiny.yaml"), "--data", str(cache),
                          "--out", str(run))
    assert "--resume" in msg
    msg = _one_line_error("generate", str(run / "model.safetensors"), "--out",
                          str(tmp_path / "g"), "--instrument", "kazoo")
    assert "kazoo" in msg
    msg = _one_line_error("evaluate", str(run / "model.safetensors"), "--data", str(cache),
                          "--threads", "0")
    assert "--threads 0" in msg


def _verbs(parser, prefix=()):
    """Every leaf command of the parser, found by walking its subparsers."""
    import argparse

    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield list(prefix)
        return
    for name, child in subs[0].choices.items():
        yield from _verbs(child, (*prefix, name))


def test_every_verb_has_help_and_is_in_the_module_docstring():
    import waveloom.cli as cli

    verbs = list(_verbs(cli.build_parser()))
    assert {"train", "generate", "evaluate", "train-classifier", "listen", "demo"} <= {
        v[0] for v in verbs
    }
    for verb in verbs:
        with pytest.raises(SystemExit) as exc:
            main([*verb, "--help"])
        assert exc.value.code == 0
        assert f"waveloom {verb[0]}" in cli.__doc__, f"{verb[0]} missing from cli.py's docstring"


def test_start_up_runs_without_the_cyclic_collector_then_restores_it(monkeypatch):
    """The verb's start-up (imports) runs with gc off; afterwards the collector is back on, and
    a caller that had turned it off itself keeps it off."""
    import gc

    import waveloom.cli as cli

    seen = []
    monkeypatch.setattr(cli, "_dispatch", lambda argv: seen.append(gc.isenabled()) or 0)
    assert gc.isenabled()
    assert cli.main([]) == 0 and seen == [False] and gc.isenabled()
    gc.disable()
    try:
        assert cli.main([]) == 0 and seen == [False, False] and not gc.isenabled()
    finally:
        gc.enable()
    monkeypatch.setattr(cli, "START_UP_WITHOUT_GC_S", 0.01)  # a long verb: back on mid-run
    import time

    monkeypatch.setattr(cli, "_dispatch", lambda argv: time.sleep(0.5) or seen.append(
        gc.isenabled()) or 0)
    assert cli.main([]) == 0 and seen[-1] is True
