"""The strict pitch judge (issue #20): octave and fifth errors are errors and are counted on their
own; the Viterbi decoder ignores an isolated octave frame; targets from a CSV or ``_k060``
names; CREPE's 1-d forward equals torchcrepe's 2-d one; batching does not change estimates."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from waveloom.audio.crepe import (
    CENTS_BIN0,
    CENTS_PER_BIN,
    PITCH_BINS,
    activations,
    decode_pitch,
    load_crepe,
)
from waveloom.evaluate.audioset import load_set
from waveloom.evaluate.pitch import (
    CrepePitch,
    PitchEstimate,
    error_kind,
    pitch_accuracy,
    read_targets_csv,
)

SR = 16000


def test_error_kinds():
    assert error_kind(60.2, 60, 50) == "correct"
    assert error_kind(72.1, 60, 50) == "octave" and error_kind(48.0, 60, 50) == "octave"
    assert error_kind(67.0, 60, 50) == "fifth" and error_kind(79.0, 60, 50) == "fifth"
    assert error_kind(53.0, 60, 50) == "fifth"
    assert error_kind(61.0, 60, 50) == "other" and error_kind(math.nan, 60, 50) == "unvoiced"


def test_octave_and_fifth_errors_are_counted_as_errors_and_on_their_own():
    heard = iter([60.0, 72.0, 48.1, 67.0, 63.0, math.nan])

    def judge(audio, sr):
        return PitchEstimate(next(heard), 1.0)

    r = pitch_accuracy([np.zeros(10)] * 6, [60] * 6, SR, 50.0, judge)
    assert r["correct"] == 1 and r["accuracy"] == pytest.approx(1 / 6)
    assert r["errors"] == {"octave": 2, "fifth": 1, "other": 1, "unvoiced": 1}
    assert [n["error"] for n in r["notes"]] == ["correct", "octave", "octave", "fifth", "other",
                                                "unvoiced"]


def _peaked(bins: list[int]) -> torch.Tensor:
    idx = torch.arange(PITCH_BINS, dtype=torch.float64)
    return torch.stack([torch.exp(-0.5 * ((idx - b) / 1.5) ** 2) for b in bins]).float()


def test_viterbi_ignores_an_isolated_octave_frame():
    octave = int(1200 / CENTS_PER_BIN)  # 60 bins
    bins = [150] * 10 + [150 + octave] + [150] * 10
    weighted, _ = decode_pitch(_peaked(bins), decoder="weighted")
    smooth, _ = decode_pitch(_peaked(bins), decoder="viterbi")
    expect = 69.0 - 12 * math.log2(440 / 10) + (CENTS_BIN0 + 150 * CENTS_PER_BIN) / 100
    assert weighted[10].item() == pytest.approx(expect + 12, abs=0.01)
    assert torch.allclose(smooth.double(), torch.full((21,), expect, dtype=torch.float64),
                          atol=0.01)


def test_one_d_forward_equals_torchcrepe_and_batching_is_transparent():
    model = load_crepe("tiny")
    frames = torch.randn(10, 1024)
    with torch.no_grad():
        x = model.layer(model.embed(frames), model.conv6, model.conv6_BN)
        ref = x.permute(0, 2, 1, 3).reshape(10, -1)
    emb, _ = activations(model, frames, batch_size=3)
    assert torch.allclose(emb, ref, atol=1e-5)
    t = np.arange(SR // 2) / SR
    clips = [(0.3 * np.sin(2 * np.pi * 440 * 2 ** ((m - 69) / 12) * t)).astype(np.float32)
             for m in (57, 64, 69)]
    judge = CrepePitch("tiny", hop_seconds=0.05, batch_frames=1000)
    together = judge.many(clips, SR)
    alone = [CrepePitch("tiny", hop_seconds=0.05, batch_frames=4)(c, SR) for c in clips]
    for a, b, m in zip(together, alone, (57, 64, 69)):
        assert a.midi == pytest.approx(b.midi, abs=1e-4) and abs(a.midi - m) < 0.2
    assert judge.frames_run == 3 * (1 + len(t) // 800)


def test_targets_from_csv_and_k_names(tmp_path):
    import soundfile as sf

    (tmp_path / "t.csv").write_text("name,pitch\nflute_k060.wav,60\nviolin,67.0\n")
    assert read_targets_csv(tmp_path / "t.csv") == {"flute_k060": 60, "violin": 67}
    sf.write(tmp_path / "flute_k062.wav", np.zeros(1600, np.float32), SR)
    s = load_set(tmp_path, name_pattern="k")
    assert s.label_values("pitch") == [62]
