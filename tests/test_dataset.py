"""Training windows: shapes, padding, conditioning, roll alignment and determinism."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from waveloom.config import parse_instrument_weights
from waveloom.data.cache import AudioCache
from waveloom.data.dataset import ChunkSequenceDataset, WindowDataset
from waveloom.data.prepare import prepare
from waveloom.data.roll import midi_notes, notes_to_samples, roll_window
from waveloom.errors import ConfigError, DataError

SR = 16000
HOP = 256


def _write(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, SR, subtype="PCM_16")


def _tone(n: int, freq: float, amp: float = 0.5) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * np.arange(n) / SR)


@pytest.fixture(scope="module")
def notes_cache(tmp_path_factory) -> AudioCache:
    """NSynth-layout cache: three 0.5 s training notes, one 1000-sample note, all 'train'."""
    root = tmp_path_factory.mktemp("ns")
    lengths = {"a-060-100": 8000, "b-062-050": 8000, "c-064-127": 24000, "d-067-090": 1000}
    meta = {}
    for k, (name, n) in enumerate(lengths.items()):
        pitch, velocity = int(name[2:5]), int(name[6:9])
        meta[name] = {
            "pitch": pitch,
            "velocity": velocity,
            "instrument_str": name[0],
            "instrument_family_str": "keyboard",
            "split": "train",
        }
        _write(root / "src" / "audio" / f"{name}.wav", _tone(n, 200.0 * (k + 1)))
    (root / "src" / "examples.json").write_text(json.dumps(meta))
    prepare(root / "src", root / "cache", progress=False)
    return AudioCache(root / "cache")


@pytest.fixture(scope="module")
def midi_cache(tmp_path_factory) -> AudioCache:
    """MAESTRO-layout cache of one 2 s piece whose MIDI has a single C4 from 0.5 s to 1.0 s."""
    root = tmp_path_factory.mktemp("midi")
    _write(root / "src" / "2018" / "piece.wav", _tone(2 * SR, 261.6))
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes.append(pretty_midi.Note(velocity=127, pitch=60, start=0.5, end=1.0))
    pm.instruments.append(piano)
    pm.write(str(root / "src" / "2018" / "piece.midi"))
    (root / "src" / "maestro-v3.0.0.csv").write_text(
        "canonical_composer,canonical_title,split,year,midi_filename,audio_filename,duration\n"
        "Test,Piece,train,2018,2018/piece.midi,2018/piece.wav,2.0\n"
    )
    prepare(root / "src", root / "cache", progress=False)
    return AudioCache(root / "cache")


def test_items_have_the_contract_shapes_and_dtypes(notes_cache):
    ds = WindowDataset(
        notes_cache, window=4096, context=512, keys=("pitch", "instrument", "velocity", "family")
    )
    item = ds[0]
    assert item["audio"].shape == (4096 + 512,) and item["audio"].dtype == torch.float32
    for key in ("pitch", "instrument", "velocity", "family"):
        assert item[key].shape == () and item[key].dtype == torch.int64
    assert item["family"] == 4
    assert len(ds) == int(notes_cache.lengths.sum()) // 4096
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch["audio"].shape == (3, 4608) and batch["pitch"].shape == (3,)
    assert batch["audio"].abs().max() <= 1.0


def test_conditioning_matches_the_example_served(notes_cache):
    ds = WindowDataset(
        notes_cache,
        window=512,
        keys=("pitch", "velocity", "instrument", "example", "start"),
        epoch_size=40,
    )
    for i in range(len(ds)):
        item = ds[i]
        entry = notes_cache.entries[int(item["example"])]
        assert (int(item["pitch"]), int(item["velocity"])) == (entry["pitch"], entry["velocity"])
        assert notes_cache.info["instruments"][int(item["instrument"])] == entry["instrument_str"]
        expected = notes_cache.read(int(item["example"]), int(item["start"]), 512)
        np.testing.assert_array_equal(item["audio"].numpy(), expected)


def test_short_example_is_left_padded_so_its_end_is_real(notes_cache):
    short = next(i for i, e in enumerate(notes_cache.entries) if e["length"] == 1000)
    ds = WindowDataset(notes_cache, window=4096, keys=("example", "start"), epoch_size=200)
    items = [ds[i] for i in range(len(ds)) if int(ds[i]["example"]) == short]
    assert items, "the short example should be drawn sometimes"
    audio = items[0]["audio"].numpy()
    assert int(items[0]["start"]) == 1000 - 4096
    assert not audio[: 4096 - 1000].any()
    np.testing.assert_array_equal(audio[-1000:], notes_cache.clip(short))


def test_examples_are_drawn_in_proportion_to_length(notes_cache):
    ds = WindowDataset(notes_cache, window=256, keys=("example",), epoch_size=3000)
    drawn = np.bincount([int(ds[i]["example"]) for i in range(len(ds))], minlength=4)
    expected = notes_cache.lengths / notes_cache.lengths.sum()
    np.testing.assert_allclose(drawn / drawn.sum(), expected, atol=0.03)


def test_instrument_weights_multiply_an_examples_share(notes_cache):
    ds = WindowDataset(notes_cache, window=256, keys=("example",), epoch_size=3000,
                       instrument_weights={"c": 0.25, "a": 2.0})
    drawn = np.bincount([int(ds[i]["example"]) for i in range(len(ds))], minlength=4)
    names = notes_cache.info["instruments"]
    factor = {"a": 2.0, "c": 0.25}
    share = np.array([n * factor.get(names[i], 1.0) for n, i in
                      zip(notes_cache.lengths, notes_cache.columns["instrument"])], float)
    np.testing.assert_allclose(drawn / drawn.sum(), share / share.sum(), atol=0.03)
    with pytest.raises(ConfigError, match="no instrument zz in"):
        WindowDataset(notes_cache, window=256, instrument_weights={"zz": 2.0})


@pytest.mark.parametrize("text", ["organ", "organ=0", "organ=-1", "=2", "organ=x", "a=inf"])
def test_instrument_weights_text_errors_name_the_key(text):
    with pytest.raises(ConfigError, match="data.instrument_weights"):
        parse_instrument_weights(text)
    assert parse_instrument_weights(" a=2, b=0.5 ,") == {"a": 2.0, "b": 0.5}


def test_same_seed_same_windows_and_set_epoch_changes_them(notes_cache):
    def starts(ds):
        return [(int(ds[i]["example"]), int(ds[i]["start"])) for i in range(len(ds))]

    make = lambda seed: WindowDataset(  # noqa: E731
        notes_cache, window=1024, keys=("example", "start"), epoch_size=20, seed=seed
    )
    first = starts(make(0))
    assert starts(make(0)) == first
    assert starts(make(1)) != first
    ds = make(0)
    ds.set_epoch(1)
    assert starts(ds) != first
    ds.set_epoch(0)
    assert starts(ds) == first
    # What a spawned worker or DDP rank receives reproduces the items too.
    clone = pickle.loads(pickle.dumps(ds))
    assert starts(clone) == first


def test_min_rms_avoids_silent_windows(tmp_path):
    audio = np.concatenate([np.zeros(12000), _tone(12000, 440.0)])
    _write(tmp_path / "src" / "mostly_silent.wav", audio)
    prepare(tmp_path / "src", tmp_path / "cache", progress=False)
    cache = AudioCache(tmp_path / "cache")
    split = cache.entries[0]["split"]

    def loud_fraction(min_rms):
        ds = WindowDataset(cache, split, window=1024, keys=(), min_rms=min_rms, epoch_size=100)
        return np.mean([float(ds[i]["audio"].square().mean().sqrt()) > 0.05 for i in range(100)])

    # Half the file is silent: about half the plain windows are, almost none with min_rms.
    assert loud_fraction(0.0) < 0.7
    assert loud_fraction(0.05) > 0.95


def test_roll_aligns_with_a_known_note(midi_cache):
    n = int(midi_cache.lengths[0])
    ds = WindowDataset(midi_cache, window=n, keys=("roll", "start"), roll_hop=HOP, epoch_size=1)
    item = ds[0]
    assert int(item["start"]) == 0
    roll = item["roll"].numpy()
    assert roll.shape == (128, n // HOP) and roll.dtype == np.float32
    # The note covers samples [8000, 16000): frames 31 ([7936, 8192)) through 62 ([15872, 16128)).
    assert np.flatnonzero(roll[60]).tolist() == list(range(31, 63))
    np.testing.assert_allclose(roll[60, 31:63], 1.0)
    assert not np.delete(roll, 60, axis=0).any()


def test_roll_follows_random_and_padded_windows(midi_cache):
    ds = WindowDataset(
        midi_cache, window=4096, context=1024, keys=("roll", "start"), roll_hop=HOP, epoch_size=30
    )
    for i in range(len(ds)):
        item = ds[i]
        start = int(item["start"])
        centres = start + np.arange(5120 // HOP) * HOP
        frame_lo, frame_hi = centres, centres + HOP
        expected = (frame_lo < 16000) & (frame_hi > 8000)
        assert item["roll"].shape == (128, 20)
        np.testing.assert_array_equal(item["roll"][60].numpy() > 0, expected)


def test_roll_window_handles_negative_start_and_hops():
    table = notes_to_samples(np.array([[0.0, 0.1, 69, 64]]), SR)  # samples [0, 1600)
    roll = roll_window(table, start=-1000, n_frames=10, hop=500)
    # Frames cover [-1000+500k, -500+500k): the note overlaps frames 2..5.
    assert np.flatnonzero(roll[69]).tolist() == [2, 3, 4, 5]
    np.testing.assert_allclose(roll[69, 2], 64 / 127)
    assert not roll_window(table, start=1600, n_frames=4, hop=100).any()


def test_sustain_pedal_extends_notes_until_release_or_restrike(tmp_path):
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [
        pretty_midi.Note(80, 60, 0.0, 0.2),  # released under the pedal: held to 1.0 s
        pretty_midi.Note(80, 64, 0.0, 0.2),  # re-struck at 0.6 s: held only until then
        pretty_midi.Note(80, 64, 0.6, 0.7),
        pretty_midi.Note(80, 67, 1.5, 1.6),  # after the pedal: unchanged
    ]
    piano.control_changes = [
        pretty_midi.ControlChange(64, 127, 0.1),
        pretty_midi.ControlChange(64, 0, 1.0),
    ]
    pm.instruments.append(piano)
    pm.write(str(tmp_path / "pedal.mid"))
    notes = midi_notes(tmp_path / "pedal.mid")
    ends = {(int(p), round(s, 2)): round(e, 2) for s, e, p, _ in notes}
    assert ends == {(60, 0.0): 1.0, (64, 0.0): 0.6, (64, 0.6): 1.0, (67, 1.5): 1.6}
    dry = midi_notes(tmp_path / "pedal.mid", sustain=False)
    assert sorted(round(e, 2) for e in dry[:, 1]) == [0.2, 0.2, 0.7, 1.6]


def test_chunk_sequences_are_consecutive_pieces_of_one_example(notes_cache):
    ds = ChunkSequenceDataset(
        notes_cache,
        chunk=1024,
        n_chunks=4,
        context=64,
        keys=("pitch", "example", "start"),
        epoch_size=12,
    )
    assert len(ds) == 12
    for i in range(len(ds)):
        item = ds[i]
        assert item["audio"].shape == (4, 1024 + 64) and item["pitch"].shape == ()
        # each chunk's own first sample (what a pitch clock needs to stay in phase)
        assert torch.equal(item["start"], item["start"][0] + 1024 * torch.arange(4))
        segment = notes_cache.read(int(item["example"]), int(item["start"][0]), 4 * 1024 + 64)
        for j in range(4):
            np.testing.assert_array_equal(
                item["audio"][j].numpy(), segment[j * 1024 : (j + 1) * 1024 + 64]
            )
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["audio"].shape == (2, 4, 1088)


def test_chunk_sequence_roll_is_per_chunk(midi_cache):
    ds = ChunkSequenceDataset(
        midi_cache, chunk=2048, n_chunks=4, keys=("roll", "start"), roll_hop=HOP, epoch_size=5
    )
    item = ds[0]
    assert item["roll"].shape == (4, 128, 2048 // HOP)
    start = int(item["start"][0])
    for j in range(4):
        expected = midi_cache.roll(0, start + j * 2048, 2048 // HOP, HOP)
        np.testing.assert_array_equal(item["roll"][j].numpy(), expected)


def test_bad_arguments_are_clear_errors(notes_cache):
    with pytest.raises(ConfigError, match="unknown conditioning key"):
        WindowDataset(notes_cache, keys=("pitch", "loudness"))
    with pytest.raises(DataError, match="no MIDI notes"):
        WindowDataset(notes_cache, keys=("roll",))
    with pytest.raises(DataError, match="no examples in split 'test'"):
        WindowDataset(notes_cache, split="test")
    with pytest.raises(IndexError):
        WindowDataset(notes_cache, epoch_size=3)[3]


def test_onset_fraction_puts_windows_at_the_start(tmp_path):
    """With onset_fraction=1 every predicted part starts within the example's first window."""
    import soundfile as sf

    from waveloom.data.dataset import WindowDataset
    from waveloom.data.prepare import prepare

    src = tmp_path / "src"
    src.mkdir()
    t = np.arange(64000) / 16000
    sf.write(src / "a.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    prepare(src, tmp_path / "cache", progress=False)
    ds = WindowDataset(tmp_path / "cache", split=_only_split(tmp_path / "cache"), window=512,
                       context=256, keys=("start",), onset_fraction=1.0, epoch_size=200)
    starts = [int(ds[i]["start"]) for i in range(200)]
    assert min(starts) >= -256 and max(starts) <= -256 + 511
    uniform = WindowDataset(tmp_path / "cache", split=_only_split(tmp_path / "cache"),
                            window=512, context=256, keys=("start",), epoch_size=200)
    assert max(int(uniform[i]["start"]) for i in range(200)) > 10000


def _only_split(root):
    from waveloom.data.cache import AudioCache

    return AudioCache(root).entries[0]["split"]
