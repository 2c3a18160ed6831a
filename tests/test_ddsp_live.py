"""``waveloom transfer --stream``: causal features equal to the offline ones, delayed, and a
block-by-block player that reports its worst block."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from waveloom.audio.f0 import FMAX, FMIN
from waveloom.audio.loudness import a_weighted_loudness
from waveloom.audio.yin import yin
from waveloom.checkpoint import save_checkpoint
from waveloom.cli import main
from waveloom.errors import ConfigError
from waveloom.models.ddsp.live import LiveFeatures, LiveTransfer, transfer_live
from waveloom.models.load import load_config
from waveloom.models.registry import build_model

from .conftest import CONFIGS

SR, HOP = 16000, 64


def _signal(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(0)
    return (0.3 * np.sin(2 * np.pi * 330 * t) * np.minimum(1, 4 * t)
            + 0.01 * rng.standard_normal(len(t)))


def test_live_features_are_the_offline_frames_delayed():
    """After the hop ending at sample (k + 1) hop, the window is the offline frame centred
    1024 samples earlier: frame k - 15, zero padding at the start included."""
    x = _signal()
    offline_f0 = yin(x, SR, HOP, FMIN, FMAX, 2048)
    offline_loud = a_weighted_loudness(torch.from_numpy(x)[None], SR, HOP, 2048)[0].numpy()
    live = LiveFeatures(SR, HOP)
    lag = (2048 // 2) // HOP - 1
    assert live.latency == lag * HOP
    for k in range(len(x) // HOP):
        f0, loud = live.push(x[k * HOP : (k + 1) * HOP])
        if k >= lag:
            assert f0 == pytest.approx(offline_f0[k - lag], rel=1e-9)
            assert loud == pytest.approx(float(offline_loud[k - lag]), abs=1e-6)


def _tiny(overrides: list[str] | None = None):
    run = load_config(CONFIGS / "ddsp" / "tiny.yaml", overrides or [])
    torch.manual_seed(0)
    return run, build_model(run).eval()


def test_transfer_live_keeps_the_length_and_times_every_block():
    _, model = _tiny()
    x = _signal(0.5).astype(np.float32)
    out, live = transfer_live(model, x)
    assert out.shape == x.shape and np.isfinite(out).all()
    assert len(live.ms) == 50  # 0.5 s in 10 ms blocks
    assert live.latency_ms == pytest.approx(1000 * (960 + 128) / SR)
    with pytest.raises(ConfigError, match="whole hops"):
        live.push(np.zeros(10, np.float32))


def test_transfer_stream_verb(tmp_path, capsys):
    run, model = _tiny()
    ckpt = save_checkpoint(tmp_path / "violin.safetensors", model, run)
    sf.write(tmp_path / "tone.wav", _signal(0.3).astype(np.float32), SR)
    assert main(["transfer", str(ckpt), str(tmp_path / "tone.wav"), "--stream",
                 "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "30 blocks of 10 ms" in printed and "worst" in printed
    assert sf.info(str(tmp_path / "out" / "tone.wav")).frames == int(0.3 * SR)
    assert main(["transfer", str(ckpt), str(tmp_path / "tone.wav"), "--stream",
                 "--f0-method", "crepe-tiny", "--out", str(tmp_path / "out")]) == 2
    assert "needs the whole file" in capsys.readouterr().err


def test_live_transfer_refuses_an_ae_model():
    _, model = _tiny(["model.z_dims=4", "model.encoder_hidden=16"])
    with pytest.raises(ConfigError, match="ae model"):
        LiveTransfer(model)
