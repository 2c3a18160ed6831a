"""``waveloom generate`` on a packed WaveNet without torch (issue 21's start-up): the torch-free
twins equal their torch references bit for bit, a pack round-trips, and the command that
packs, the command that runs the pack without importing torch and the Python API write the
same samples for a seed."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from waveloom.checkpoint import save_checkpoint
from waveloom.cli import main
from waveloom.models.load import load_config
from waveloom.models.plan import draw_uniforms
from waveloom.models.registry import build_model
from waveloom.sampling import cbuild

from .conftest import CONFIGS

pytestmark = pytest.mark.skipif(cbuild.load()[0] is None, reason="needs the C kernel")
VOCAB = ["brass", "flute", "keys", "organ"]
NOTE = ["model.head=gaussian", "model.input=scalar", "model.pitch_excitation=true",
        "model.excitation_phase=onset", "model.note_clock=true"]


@pytest.mark.parametrize("seed", [0, 7, 2**31 + 3, -5])
def test_uniform_stream_is_torch_rand_in_pieces(seed):
    from waveloom.sampling.uniforms import UniformStream

    gen = torch.Generator()
    gen.manual_seed(seed)
    stream = UniformStream(seed)
    for shape in ((1000, 2, 1), (37, 3, 2)):
        np.testing.assert_array_equal(stream.draw(*shape), torch.rand(*shape, generator=gen))


def test_normal_deviates_are_the_gaussian_heads_to_the_bit():
    from scipy.special import ndtri

    from waveloom.sampling.uniforms import normal_deviates

    u = torch.cat([draw_uniforms(3, 200_000, 1, 1).flatten(),
                   torch.tensor([0.0, 1e-7, 2**-24, 0.5, 0.075, 0.925, 1 - 2**-24])])
    head = (math.sqrt(2.0) * torch.erfinv(2.0 * u.clamp(1e-7, 1 - 1e-7).double() - 1.0)).float()
    ours = normal_deviates(u.numpy())
    np.testing.assert_array_equal(ours, head.numpy())
    clamped = np.clip(u.numpy(), np.float32(1e-7), np.float32(1 - 1e-7)).astype(np.float64)
    np.testing.assert_allclose(ours, ndtri(clamped), rtol=1e-6)


def test_clock_signals_equal_the_models_features():
    from waveloom.nn import pitch_clock
    from waveloom.sampling import clock_signals

    times = torch.arange(-2000, 300_000)[None].expand(3, -1)
    np.testing.assert_array_equal(
        clock_signals.note_clock(times.numpy(), 16000, pitch_clock.NOTE_CLOCK_TAUS),
        pitch_clock.note_clock(times, 16000).numpy())
    for pitch in ([48, -1, 76], None):
        for onset in (True, False):
            ref = pitch_clock.pitch_excitation(
                None if pitch is None else torch.tensor(pitch), times, 16000,
                random_phase=False, onset_phase=onset, device="cpu")
            ours = clock_signals.pitch_excitation(
                None if pitch is None else np.array(pitch), times.numpy(), 16000,
                onset_phase=onset)
            np.testing.assert_array_equal(ours, ref.numpy())


def test_numpy_stft_and_mel_filterbank_equal_the_torch_ones():
    from waveloom.audio import spectral
    from waveloom.audio.mel_scale import mel_filterbank_numpy, stft_numpy

    x = np.random.default_rng(0).standard_normal(5000) * 0.3
    np.testing.assert_allclose(stft_numpy(x, 512, 128),
                               spectral.stft(torch.from_numpy(x), 512, 128).numpy(), atol=1e-10)
    np.testing.assert_array_equal(mel_filterbank_numpy(16000, 1024, 80),
                                  spectral.mel_filterbank(16000, 1024, 80).numpy())


@pytest.fixture(scope="module")
def note_model(tmp_path_factory):
    """A tiny note WaveNet (Gaussian head, pitch + 4 instruments, excitation + clock)."""
    torch.manual_seed(0)
    run = load_config(CONFIGS / "wavenet" / "tiny.yaml", NOTE)
    model = build_model(run)
    path = tmp_path_factory.mktemp("packed") / "note.safetensors"
    return save_checkpoint(path, model, run, extra={"instruments": VOCAB})


def test_a_pack_round_trips_and_runs_as_the_torch_engine(note_model, tmp_path):
    from waveloom.models.load import load_checkpoint
    from waveloom.sampling.fast import FastWaveNet
    from waveloom.sampling.kernel_engine import KernelEngine
    from waveloom.sampling.packed import load_packed, save_packed

    model, _ = load_checkpoint(note_model)
    engine = FastWaveNet(model.stack, model.head, backend="c")
    extra = {"anything": [1, 2]}
    engine.prep.extra = extra
    save_packed(engine.prep, tmp_path / "p.safetensors", {"table": np.arange(3.0)})
    packed, arrays = load_packed(tmp_path / "p.safetensors")
    assert packed.extra == extra and np.array_equal(arrays["table"], np.arange(3.0))
    lite = KernelEngine(packed)
    g = torch.randn(2, model.global_cond.out_dim)
    codes = torch.randint(0, model.head.levels, (2, 300))
    local = torch.randn(2, model.stack.local_channels, 300)
    u = draw_uniforms(1, 300, 2, 1)
    results = []
    for eng in (engine, lite):
        eng.reset(2, g)
        results.append(eng.teacher_force(codes, local, u))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def _wavs(folder: Path, n: int) -> list[np.ndarray]:
    return [sf.read(folder / f"sample-{i}.wav", dtype="int16")[0] for i in range(n)]


def test_packed_generate_runs_without_torch_and_writes_the_same_samples(
        note_model, tmp_path, monkeypatch):
    """The first command packs (torch), the second runs the pack in a fresh process that never
    imports torch; both write what the Python API draws for the seed."""
    from waveloom.app import _generate_packed as packing
    from waveloom.app.generate import build_cond, load_source
    from waveloom.audio.io import save_audio
    from waveloom.config import SamplingOptions
    from waveloom.sampling.sample import sample

    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(cbuild.cache_dir() / cbuild.library_name(), cache)  # the built kernel
    monkeypatch.setenv("WAVELOOM_CACHE", str(cache))
    flags = ["--n", "2", "--seconds", "0.3", "--seed", "3", "--pitch", "67", "--instrument",
             "flute", "--device", "cpu", "--threads", "1", "-q"]
    assert main(["generate", str(note_model), *flags, "--out", str(tmp_path / "a")]) == 0
    pack = packing.pack_path(note_model, "float32")
    assert pack is not None and pack.is_file()
    code = ("import sys\nfrom waveloom.cli import main\n"
            f"assert main({['generate', str(note_model), *flags, '--out', str(tmp_path / 'b')]!r})"
            " == 0\nassert 'torch' not in sys.modules, 'the packed path imported torch'\n")
    env = {**os.environ, "WAVELOOM_CACHE": str(cache)}
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, env=env)
    first, second = _wavs(tmp_path / "a", 2), _wavs(tmp_path / "b", 2)
    source = load_source(note_model, "cpu", 1)
    cond = build_cond(source.model, 2, pitch=67, instrument="flute", vocabulary=VOCAB)
    options = SamplingOptions(seed=3, engine="fast", threads=1, progress=False)
    whole = sample(source.model, 2, 4800, cond, options).numpy()
    for i in range(2):
        api = sf.read(save_audio(tmp_path / f"api{i}.wav", whole[i], 16000), dtype="int16")[0]
        np.testing.assert_array_equal(first[i], second[i])
        np.testing.assert_array_equal(first[i], api)
    assert (tmp_path / "b" / "sample-0.png").is_file()


def test_packed_path_keeps_one_line_errors_and_repacks_a_changed_checkpoint(
        note_model, tmp_path, monkeypatch, capsys):
    from waveloom.app import _generate_packed as packing

    monkeypatch.setenv("WAVELOOM_CACHE", str(tmp_path))
    out = ["--device", "cpu", "--seconds", "0.05", "-q", "--out", str(tmp_path / "o")]
    assert main(["generate", str(note_model), *out]) == 0
    before = packing.pack_path(note_model, "float32")
    assert before.is_file()
    assert main(["generate", str(note_model), "--instrument", "9", *out]) == 2
    assert "--instrument 9: this model knows ids 0..3" in capsys.readouterr().err
    os.utime(note_model, ns=(1, 1))  # the checkpoint changed: another key, packed again
    after = packing.pack_path(note_model, "float32")
    assert after != before
    assert main(["generate", str(note_model), *out]) == 0
    assert after.is_file() and not before.exists()  # the old pack is dropped, not kept
    after.write_bytes(b"not a pack")  # a damaged pack: the torch path draws and packs again
    assert main(["generate", str(note_model), *out]) == 0
    assert packing.load_pack(after) is not None
