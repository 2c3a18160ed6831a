"""The transcriber (issue #23 part 3): labels, augmentation, decoding, scoring, training, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from waveloom.cli import main
from waveloom.data import augment as aug
from waveloom.data.note_labels import LOWEST_KEY, note_labels
from waveloom.errors import CheckpointError, DataError
from waveloom.evaluate.transcription import decode, score

HOP = 256


def _table(notes):
    """(onset sample, offset sample, pitch, velocity) rows -> the cache's note table."""
    t = np.array(notes, np.int64).reshape(-1, 4)
    return np.column_stack([t, np.maximum.accumulate(t[:, 1])])


def test_labels_mark_onset_offset_frames_and_velocity():
    labels = note_labels(_table([(1000, 3000, 60, 127), (2600, 9999, 200, 90)]), 0, 20, HOP)
    key = 60 - LOWEST_KEY
    assert np.flatnonzero(labels["onset"][:, key]).tolist() == [4]  # 1000 / 256 = 3.9
    assert np.flatnonzero(labels["offset"][:, key]).tolist() == [12]  # 3000 / 256 = 11.7
    assert np.flatnonzero(labels["frame"][:, key]).tolist() == list(range(4, 12))
    assert labels["velocity"][4, key] == 1.0 and labels["velocity"].sum() == 1.0
    assert labels["onset"].sum() == 1, "pitch 200 is off the keyboard and ignored"
    later = note_labels(_table([(1000, 3000, 60, 127)]), 512, 20, HOP)
    assert np.flatnonzero(later["onset"][:, key]).tolist() == [2]


def test_augmentation_is_seeded_and_keeps_length_and_range():
    rng = np.random.default_rng(0)
    audio = (0.5 * np.sin(np.arange(16000) * 0.05)).astype(np.float32)
    a = aug.augment(audio, np.random.default_rng(1))
    assert a.shape == audio.shape and a.dtype == np.float32 and np.abs(a).max() <= 1.0
    assert np.array_equal(a, aug.augment(audio, np.random.default_rng(1)))
    assert not np.array_equal(a, aug.augment(audio, np.random.default_rng(2)))
    gain = aug.random_gain(audio, rng)[1] / audio[1]
    assert 10 ** (-6 / 20) - 1e-6 <= gain <= 10 ** (6 / 20) + 1e-6
    noisy = aug.random_noise(audio, np.random.default_rng(3))
    snr = 10 * np.log10(np.mean(audio**2) / np.mean((noisy - audio) ** 2))
    assert 19 < snr < 51
    assert aug.random_reverb(audio, rng).shape == audio.shape


def test_chorus_keeps_pitch_level_and_the_old_augmentation():
    sr = 16000
    tone = (0.3 * np.sin(2 * np.pi * 440.0 * np.arange(2 * sr) / sr)).astype(np.float32)
    wet = aug.random_chorus(tone, np.random.default_rng(4), sr)
    assert wet.shape == tone.shape and wet.dtype == np.float32
    assert np.sqrt(np.mean(wet**2)) == pytest.approx(np.sqrt(np.mean(tone**2)), rel=1e-4)
    assert not np.allclose(wet, tone, atol=1e-3), "the copies change the waveform"
    spectrum = np.abs(np.fft.rfft(wet * np.hanning(len(wet))))
    peak_hz = np.argmax(spectrum) * sr / len(wet)
    assert abs(1200 * np.log2(peak_hz / 440.0)) < 5, "the copies waver by cents, not more"
    # chorus=0 draws nothing more from the generator: recipes from before it see the same audio
    a = aug.augment(tone, np.random.default_rng(1))
    rng = np.random.default_rng(1)
    b = np.clip(aug.random_noise(aug.random_gain(aug.random_reverb(aug.random_eq(tone, rng),
                                                                   rng, sr), rng), rng), -1, 1)
    assert np.array_equal(a, b)
    c = aug.augment(tone, np.random.default_rng(1), sr, chorus=1.0)
    assert c.shape == tone.shape and not np.array_equal(a, c)


def test_formants_move_partial_levels_not_their_frequencies():
    sr = 16000
    t = np.arange(sr) / sr
    partials = [220.0 * k for k in range(1, 16)]
    chord = sum(np.sin(2 * np.pi * f * t) for f in partials).astype(np.float32) / 15
    out = aug.random_formants(chord, np.random.default_rng(5), sr)
    assert out.shape == chord.shape and out.dtype == np.float32
    assert np.sqrt(np.mean(out**2)) == pytest.approx(np.sqrt(np.mean(chord**2)), rel=1e-4)
    before, after = np.abs(np.fft.rfft(chord)), np.abs(np.fft.rfft(out))
    bins = [int(f) for f in partials]  # 1-s window: bin k is k Hz
    off = np.setdiff1d(np.arange(len(after)), bins)
    assert after[off].max() < 1e-3 * after[bins].max(), "no new frequencies"
    levels = 20 * np.log10(after[bins] / before[bins])
    assert levels.max() - levels.min() > 3, "the partials' balance changed"


def _probs(notes, n_frames):
    """Perfect probabilities for ``notes`` [(onset s, offset s, pitch)] at 16 ms frames."""
    table = _table([(round(a * 16000), round(b * 16000), p, 100) for a, b, p in notes])
    return note_labels(table, 0, n_frames, HOP)


def test_perfect_predictions_score_one_and_late_onsets_do_not_count():
    ref = np.array([[0.1, 0.5, 60], [0.3, 0.9, 64], [1.0, 1.4, 67], [1.2, 1.3, 67]], float)
    est = decode(_probs(ref, 120), HOP / 16000)
    assert len(est) == 4 and set(est[:, 2]) == {60, 64, 67}
    scores = score(ref, est)
    assert scores["note"] == pytest.approx((1.0, 1.0, 1.0))
    assert scores["frame"][2] > 0.95
    late = ref.copy()
    late[:, :2] += 0.06  # 60 ms late: beyond the 50 ms onset tolerance
    moved = score(ref, decode(_probs(late, 120), HOP / 16000))
    assert moved["note"][2] == 0.0 and moved["frame"][2] > 0.5
    assert score(ref, np.zeros((0, 4)))["note"] == (0.0, 0.0, 0.0)


def test_the_model_learns_a_batch(tmp_path):
    from waveloom.models.transcriber import Transcriber, TranscriberConfig

    torch.manual_seed(0)
    model = Transcriber(TranscriberConfig(n_fft=512, hop=128, n_mels=32, conv_channels=4,
                                          width=16, units=8, dropout=0.0))
    batch = model.example_batch(2, 128 * 40)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = model.loss(batch)["loss"].item()
    for _ in range(40):
        opt.zero_grad()
        loss = model.loss(batch)["loss"]
        loss.backward()
        opt.step()
    assert loss.item() < 0.6 * first
    with pytest.raises(DataError, match="at least one frame"):
        model(torch.zeros(1, 10))


def test_onsets_under_held_notes_weigh_more():
    """An onset while another key holds gets ``held_onset_weight``; a whole-chord change, an
    onset alone in silence and every non-onset cell keep weight 1 (the plain BCE)."""
    from waveloom.data.note_labels import LOWEST_KEY, note_labels
    from waveloom.models.transcriber import Transcriber, TranscriberConfig

    hop, top = 128, 60 - LOWEST_KEY
    # (onset, offset, pitch, velocity, running max offset) in samples: C4 holds 0-40 frames,
    # E4 starts at 10 under it; G4 and B4 start together at 50 (a chord change); D5 alone at 70.
    notes = [(0, 40, 60), (10, 30, 64), (50, 60, 67), (50, 60, 71), (70, 75, 74)]
    table = np.array([(a * hop, b * hop, p, 100, b * hop) for a, b, p in notes], np.float64)
    table[:, 4] = np.maximum.accumulate(table[:, 4])
    labels = {k: torch.from_numpy(v)[None] for k, v in note_labels(table, 0, 80, hop).items()}
    model = Transcriber(TranscriberConfig(n_fft=512, hop=hop, n_mels=32, conv_channels=4,
                                          width=16, units=8, held_onset_weight=4.0))
    w = model.onset_cell_weights(labels["onset"], labels["frame"])[0]
    assert w[10, 64 - LOWEST_KEY] == 4.0
    assert w[50, 67 - LOWEST_KEY] == w[50, 71 - LOWEST_KEY] == w[70, 74 - LOWEST_KEY] == 1.0
    assert w[0, top] == 1.0 and float(w.sum()) == w.numel() + 3.0
    model.config.held_onset_weight = 1.0
    assert model.onset_cell_weights(labels["onset"], labels["frame"]) is None
    # the mirror: C4 holding while E4 starts (frames 8-12) weighs more as a negative; C4 with
    # nothing starting near (frame 20), the starting keys themselves and silence keep 1
    model.config.held_key_weight = 3.0
    w = model.onset_cell_weights(labels["onset"], labels["frame"])[0]
    assert all(w[f, top] == 3.0 for f in range(8, 13)) and w[7, top] == w[13, top] == 1.0
    assert w[20, top] == 1.0 and w[10, 64 - LOWEST_KEY] == 1.0 and w[50, 67 - LOWEST_KEY] == 1.0
    assert float(w.sum()) == w.numel() + 2.0 * 5


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny transcriber trained a few steps on one rendered chorale, through the CLI."""
    root = tmp_path_factory.mktemp("tr")
    assert main(["data", "render-midi", str(root / "src"), "--chorales", "1", "-q"]) == 0
    assert main(["prepare", str(root / "src"), str(root / "cache"), "--format", "maestro",
                 "-q"]) == 0
    cache = root / "cache"
    assert main(["train", "configs/transcriber/tiny.yaml", "--data", str(cache), "--out",
                 str(root / "run"), "-q", "--max-steps", "4",
                 "train.checkpoint_every=2"]) == 0
    return root


def test_transcribe_writes_midi_and_png(tiny_run, tmp_path, capsys):
    wav = next((tiny_run / "src").rglob("*.wav"))
    assert main(["transcribe", str(tiny_run / "run" / "model.safetensors"), str(wav),
                 "--out", str(tmp_path / "t")]) == 0
    assert (tmp_path / "t" / f"{wav.stem}.mid").is_file()
    assert (tmp_path / "t" / f"{wav.stem}.png").stat().st_size > 10000
    assert "notes in" in capsys.readouterr().out


def test_transcribe_bad_input_is_one_line(tiny_run, tmp_path, capsys):
    ckpt = str(tiny_run / "run" / "model.safetensors")
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(50, np.float32), 16000)
    wav = next((tiny_run / "src").rglob("*.wav"))
    # the short file is named and skipped; the good one after it is still transcribed
    assert main(["transcribe", ckpt, str(short), str(wav), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "short.wav" in err and "shorter than one frame" in err
    assert (tmp_path / "o" / f"{wav.stem}.mid").is_file()
    assert main(["transcribe", ckpt, str(tmp_path / "missing.wav"), "--out",
                 str(tmp_path / "o")]) == 2
    assert "missing.wav" in capsys.readouterr().err
    with pytest.raises(CheckpointError):
        from waveloom.evaluate.transcription import load_transcriber

        load_transcriber("waveloom/assets/ddsp-violin.safetensors")
