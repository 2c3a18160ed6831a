"""benchmarks/ddsp_synth.py runs end to end on tiny settings (benchmarks rot silently)."""

from __future__ import annotations

import sys

import pytest

from .conftest import REPO


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import ddsp_synth

        yield ddsp_synth
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def test_synth_and_f0_parts_print_their_tables(bench, tmp_path, capsys):
    out = bench.main(["--parts", "synth,f0", "--seconds", "0.2", "--rounds", "1",
                      "--methods", "yin", "--pitches", "60-60", "--programs", "0",
                      "--hold", "0.5", "--notes-root", str(tmp_path / "notes"),
                      "--json", str(tmp_path / "r.json")])
    text = capsys.readouterr().out
    assert "all, streamed 10 ms blocks" in text and "55 Hz" in text and "yin |" in text
    assert all(v > 0 for v in out["synth"].values())
    assert out["f0"]["yin"]["notes"] == 1 and out["f0"]["yin"]["note_accuracy"] == 1.0
    assert (tmp_path / "r.json").is_file()


def test_loss_part_times_both(bench):
    pytest.importorskip("auraloss")
    got = bench.loss_speed(rounds=1, threads=1, batch=1, length=4000)
    assert set(got) == {"waveloom", "auraloss"} and all(v > 0 for v in got.values())
