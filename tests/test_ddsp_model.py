"""The ddsp family (issue #22): config checks, the feature pipeline, training through the
trainer with exact resume, generation from notes, and streaming equal to offline."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from waveloom.config import SamplingOptions
from waveloom.errors import ConfigError, DataError
from waveloom.models.load import load_config
from waveloom.models.registry import build_model

from .conftest import CONFIGS

TINY = CONFIGS / "ddsp" / "tiny.yaml"


def _tiny(*overrides: str):
    run = load_config(TINY, list(overrides))
    torch.manual_seed(0)
    return run, build_model(run)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    from waveloom.data.prepare import prepare
    from waveloom.data.synth import render_notes

    root = tmp_path_factory.mktemp("ddsp-data")
    render_notes(root / "notes", programs=[40], pitches=[57, 60, 64, 69], velocities=[100],
                 hold_seconds=0.5, release_seconds=0.2, progress=False)
    prepare(root / "notes", root / "cache", progress=False)
    return root / "cache"


@pytest.mark.parametrize("override, word", [
    ("model.frame_rate=300", "frame_rate"),
    ("model.n_harmonics=101", "n_harmonics"),
    ("model.n_noise_bands=66", "n_noise_bands"),
    ("model.reverb_seconds=4", "reverb_seconds"),
    ("model.f0_method=nope", "f0_method"),
    ("model.fft_sizes=8", "fft_sizes"),
    ("model.z_dims=-1", "z_dims"),
])
def test_bad_config_is_one_line_naming_the_key(override, word):
    with pytest.raises(ConfigError, match=word) as err:
        _tiny(override)
    assert "\n" not in str(err.value)


def test_features_are_computed_once_and_windows_are_frame_aligned(cache):
    from waveloom.data.features import FeatureSpec, FrameWindowDataset, features_dir

    spec = FeatureSpec(frame_rate=250, hop=64, f0_method="yin")
    data = FrameWindowDataset(cache, spec, split="train", window=2048, epoch_size=6, seed=1,
                              progress=False)
    folder = features_dir(data.cache, spec)
    assert folder.parent.parent == Path(cache) and "yin-250hz" in folder.name
    stamp = (folder / "f0_hz.npy").stat().st_mtime_ns
    again = FrameWindowDataset(cache, spec, split="train", window=2048, epoch_size=6, seed=1)
    assert (folder / "f0_hz.npy").stat().st_mtime_ns == stamp, "features were recomputed"
    for i in range(6):
        a, b = data[i], again[i]
        assert a["audio"].shape == (2048,) and a["f0_hz"].shape == a["loudness_db"].shape == (32,)
        assert all(torch.equal(a[k], b[k]) for k in a)
    import pickle

    copy = pickle.loads(pickle.dumps(data))  # what a DataLoader worker receives
    assert copy.features._arrays is None and torch.equal(copy[0]["f0_hz"], data[0]["f0_hz"])
    # The features of a whole example: f0 on the note's pitch where it is loud.
    notes = data.cache
    example = int(data.indices[0])
    pitch = int(notes.columns["pitch"][example])
    curves = data.features.window(example, 0, 40)
    f0, loud = curves["f0_hz"], curves["loudness_db"]
    assert set(curves) == {"f0_hz", "f0_confidence", "loudness_db"}
    assert curves["f0_confidence"][loud > -40].min() > 0.5  # loud frames are voiced
    voiced = loud > -40
    assert voiced.sum() > 10
    cents = 1200 * np.log2(f0[voiced] / (440 * 2 ** ((pitch - 69) / 12)))
    assert np.median(np.abs(cents)) < 50


def test_window_must_be_whole_frames(cache):
    from waveloom.data.features import FeatureSpec, FrameWindowDataset

    with pytest.raises(ConfigError, match="whole number of frames"):
        FrameWindowDataset(cache, FeatureSpec(250, 64, "yin"), window=1000)


def test_trains_through_the_trainer_and_resumes_bitwise(cache, tmp_path):
    from waveloom.train.trainer import train

    common = ["train.ema_decay=0.9", "train.checkpoint_every=2", "data.batch_size=2"]
    straight = train(load_config(TINY, [*common, "train.max_steps=4"]), cache, tmp_path / "a",
                     progress=False)
    assert straight.step == 4 and math.isfinite(straight.last_loss)
    train(load_config(TINY, [*common, "train.max_steps=2"]), cache, tmp_path / "b",
          progress=False)
    train(load_config(TINY, [*common, "train.max_steps=4"]), cache, tmp_path / "b", resume=True,
          progress=False)
    a = load_file(str(tmp_path / "a" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    seen = a["seen_range"]
    assert seen[0] <= seen[1], "the trained model keeps the f0 range it saw"


def test_calibration_plays_the_training_velocity_at_the_training_level(cache, tmp_path):
    """calibrate: the notes' median level at their velocity goes into the checkpoint's config,
    and that velocity then asks the model for exactly that level (issue #23: a trumpet trained
    at velocity 72 was asked for 17 dB less and went silent)."""
    from waveloom.data.cache import AudioCache
    from waveloom.data.features import CacheFeatures
    from waveloom.models.ddsp.calibrate import calibrate, main, note_levels
    from waveloom.models.load import load_checkpoint
    from waveloom.train.trainer import train

    run = train(load_config(TINY, ["train.max_steps=1", "data.batch_size=2"]), cache,
                tmp_path / "run", progress=False)
    ckpt = run.run_dir / "model.safetensors"
    velocity, level = calibrate(ckpt, cache, tmp_path / "cal.safetensors")
    model, _ = load_checkpoint(tmp_path / "cal.safetensors")
    levels = note_levels(AudioCache(cache), CacheFeatures(AudioCache(cache),
                                                          model.frame_features()))
    assert velocity == 100 and -40 < level < 0
    assert len(levels) == len(AudioCache(cache).split_indices("train")) > 0
    assert level == pytest.approx(float(np.median(levels[:, 1])), abs=0.01)
    _, loud = model._cond_controls(1, 125, {"pitch": 60, "velocity": 100})
    assert float(loud[0, 60]) == pytest.approx(level, abs=0.01)
    assert main([str(ckpt), str(tmp_path / "missing")]) == 2  # one line, no stack trace


def test_bad_velocity_calibration_is_one_line():
    with pytest.raises(ConfigError, match="velocity_db"):
        _tiny("model.velocity_db=[200,-10]")


def test_generate_plays_a_note_at_its_pitch():
    _, model = _tiny("model.reverb_seconds=0")
    model.eval()
    with torch.no_grad():
        for p in model.decoder.out.parameters():
            p.zero_()
        model.decoder.out.bias[0] = 3.0  # loud harmonics, quiet noise
    audio = model.generate(1, 8000, {"pitch": torch.tensor([69]), "velocity": torch.tensor([127])},
                           SamplingOptions(seed=0, progress=False))
    spectrum = np.abs(np.fft.rfft(audio[0, 1000:5000].numpy()))
    peak_hz = np.argmax(spectrum) * 16000 / 4000
    assert abs(peak_hz - 440.0) <= 4.0
    _, loud = model._cond_controls(1, 125, {"pitch": 69, "velocity": 127})
    assert loud[0, 50] > -20 > loud[0, -1], "velocity sets the level and the note is released"
    _, soft = model._cond_controls(1, 125, {"pitch": 69, "velocity": 40})
    assert soft[0, 50] < loud[0, 50] - 20


def _controls(model, frames: int, batch: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(frames) / 250.0
    f0 = 220.0 * 2 ** (torch.sin(2 * math.pi * 2 * t) / 12) * torch.tensor([[1.0], [1.5]])
    loud = -30.0 + 10.0 * torch.rand(batch, frames, generator=g)
    z = (torch.randn(batch, frames, model.config.z_dims, generator=g)
         if model.config.z_dims else None)
    noise = torch.rand(batch, frames * model.hop, generator=g) * 2 - 1
    return f0[:batch], loud, z, noise


@pytest.mark.parametrize("overrides", [(), ("model.z_dims=4",)])
def test_streaming_in_blocks_equals_offline(overrides):
    from waveloom.models.ddsp.stream import DDSPStream

    _, model = _tiny(*overrides)
    model.eval()
    f0, loud, z, noise = _controls(model, 120)
    with torch.no_grad():
        offline = model.render(f0, loud, z, noise=noise)
    stream = DDSPStream(model, batch=2)
    outs, start, rng = [], 0, np.random.default_rng(0)
    while start < f0.shape[1]:
        n = int(rng.integers(0, 6))
        end = min(start + n, f0.shape[1])
        outs.append(stream.push(f0[:, start:end], loud[:, start:end],
                                None if z is None else z[:, start:end],
                                noise[:, start * model.hop:end * model.hop]))
        start = end
    outs.append(stream.flush())
    chunked = torch.cat(outs, dim=1)
    assert chunked.shape == offline.shape
    assert torch.allclose(chunked, offline, atol=1e-5, rtol=0)


def test_loss_refuses_audio_that_does_not_match_the_frames():
    _, model = _tiny()
    batch = model.example_batch(2, 512)
    batch["audio"] = batch["audio"][:, :500]
    with pytest.raises(DataError, match="F \\* hop"):
        model.loss(batch)


def test_generate_resynthesises_cond_audio_as_the_trainer_logs_samples():
    """The trainer's logged sample passes a training window as cond['audio']: its tracked f0
    and loudness are played back (ae models: with its z)."""
    _, model = _tiny("model.z_dims=4", "model.reverb_seconds=0")
    model.eval()
    t = torch.arange(4000) / 16000.0
    audio = (0.5 * torch.sin(2 * math.pi * 330.0 * t))[None]
    options = SamplingOptions(seed=2, progress=False)
    a = model.generate(1, 4000, {"audio": audio}, options)
    b = model.generate(1, 4000, {"audio": audio}, options)
    assert a.shape == (1, 4000) and torch.equal(a, b)
    curves = model._audio_cond(audio)
    assert curves["z"].shape == (1, 63, 4)
    assert abs(float(curves["f0_hz"][0, 10:50].median()) - 330.0) < 5.0
    # the audio is what is played: the same as playing its tracked curves, not a default note
    played = model.generate(1, 4000, curves, options)
    assert torch.equal(a, played)
    default = model.generate(1, 4000, None, options)
    assert not torch.allclose(a, default)


def test_windows_with_context_carry_frames_over_the_context_too(cache):
    """An autoregressive model's windows (the f0 translator's decoders) hold window + context
    samples, any length: the curves cover them in ceil(length / hop) frames from the served
    audio's first sample, which sits on a frame boundary of its example."""
    from waveloom.data.features import FeatureSpec, FrameWindowDataset

    data = FrameWindowDataset(cache, FeatureSpec(250, 64, "yin"), window=1000, context=300,
                              keys=("f0_hz", "f0_confidence"))
    item = data[0]
    assert item["audio"].shape == (1300,)
    assert item["f0_hz"].shape == item["f0_confidence"].shape == (21,)
    assert "loudness_db" not in item
