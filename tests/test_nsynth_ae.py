"""The NSynth WaveNet autoencoder and its spectral baseline: codes, causality, sampling through
the shared engines, and the encode / decode / interpolate verbs."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from waveloom.checkpoint import save_checkpoint
from waveloom.cli import main
from waveloom.config import SamplingOptions
from waveloom.errors import ConfigError
from waveloom.models.load import build_run_config, load_config
from waveloom.models.registry import build_model
from waveloom.nn.encoder import CodeStatistics, DilatedEncoder, average_frames
from waveloom.sampling import cbuild
from waveloom.sampling.fast import sample_fast
from waveloom.sampling.incremental import sample_incremental, sample_naive
from waveloom.sampling.sample import decode, sample

from .conftest import CONFIGS
from .test_sampling_fast import _check_teacher_forced, first_divergence_is_ambiguous

BACKENDS = ["numba"] + (["c"] if cbuild.load()[0] is not None else [])


def _model(family: str = "nsynth_ae", preset: str = "tiny", *overrides: str, seed: int = 0):
    torch.manual_seed(seed)
    run = load_config(CONFIGS / family / f"{preset}.yaml", list(overrides))
    return build_model(run).eval()


def _note(length: int, hz: float = 330.0, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / 16000.0
    decay = torch.exp(-3.0 * t)
    return 0.5 * decay * torch.sin(2 * math.pi * hz * t) + 0.01 * torch.randn(length, generator=gen)


# --------------------------------------------------------------------------- presets


def test_presets_build_and_paper_sizes():
    for family, presets in (("nsynth_ae", ("tiny", "small")), ("spectral_ae", ("tiny", "small"))):
        for preset in presets:
            model = _model(family, preset)
            assert sum(p.numel() for p in model.parameters()) * 4 / 1e6 < 20  # shippable
    small = _model("nsynth_ae", "small")
    assert (small.embedding_dim, small.hop) == (16, 512)
    paper = load_config(CONFIGS / "nsynth_ae" / "paper.yaml").model
    encoder_layers = paper.encoder_layers_per_stack * paper.encoder_stacks
    assert (encoder_layers, paper.encoder_channels) == (30, 128)
    assert (paper.embedding_dim, paper.hop) == (16, 512)
    assert (paper.layers_per_stack * paper.stacks, paper.residual_channels) == (30, 512)
    assert paper.kernel_size == 3 and paper.skip_channels == 256


@pytest.mark.parametrize(
    "family, model, match",
    [
        ("nsynth_ae", {"hop": 512, "upsample_factors": [8, 8]}, "multiply to model.hop=512"),
        ("nsynth_ae", {"embedding_dim": 0}, "model.embedding_dim=0"),
        ("nsynth_ae", {"cond_dropout": 1.0}, "cond_dropout"),
        ("spectral_ae", {"hop": 768}, "power of"),
        ("spectral_ae", {"loss": "l3"}, "model.loss"),
    ],
)
def test_config_validation_names_the_key(family, model, match):
    with pytest.raises(ConfigError, match=match):
        build_run_config({"family": family, "model": model})


# --------------------------------------------------------------------------- encoder


def test_average_frames_and_embedding_rate():
    x = torch.arange(10.0).reshape(1, 1, 10)
    torch.testing.assert_close(average_frames(x, 4), torch.tensor([[[1.5, 5.5, 8.5]]]))
    for family in ("nsynth_ae", "spectral_ae"):
        model = _model(family)
        for length in (1, model.hop - 1, model.hop, model.hop + 1, 5 * model.hop + 3):
            z = model.encode(torch.zeros(2, length))
            assert z.shape == (2, model.embedding_dim, -(-length // model.hop)), (family, length)


def test_encoder_is_non_causal_and_decoder_is_causal():
    model = _model()
    ctx, hop = model.context, model.hop
    audio = _note(ctx + 8 * hop)[None]
    z = model.encode(audio)
    later = audio.clone()
    spot = 6 * hop  # the first sample of frame 6, past the decoder's context
    assert spot > ctx
    later[:, spot] += 0.5
    z2 = model.encode(later)
    f = spot // hop
    assert not torch.equal(z[..., f - 1], z2[..., f - 1]), "the encoder must see the future"
    reach = model.encoder.reach
    far = max(0, (spot - reach - 1) // hop)  # frames that end before the reach are untouched
    assert torch.equal(z[..., :far], z2[..., :far])
    with torch.no_grad():  # with the code held fixed, prediction t reads only samples < t
        before, _ = model.decoder_params(audio, z, 60)
        after, _ = model.decoder_params(later, z, 60)
    t = spot - ctx  # the prediction of sample `spot`
    assert torch.equal(before[..., : t + 1], after[..., : t + 1])
    assert not torch.equal(before[..., t + 1], after[..., t + 1])


def test_dilated_encoder_reach_is_exact():
    torch.manual_seed(0)
    enc = DilatedEncoder(1, 16, 2, layers_per_stack=3, stacks=2, kernel_size=3).eval().double()
    assert enc.reach == 1 + 2 * (1 + 2 + 4)
    x = torch.randn(1, 1, 101, dtype=torch.float64)  # the edge path is a product of 7 weights
    with torch.no_grad():
        y = enc(x)[..., 50]

        def changes(offset: int) -> bool:  # a bump of either sign (a ReLU may hide one)
            outs = []
            for sign in (-1.0, 1.0):
                bumped = x.clone()
                bumped[..., 50 + offset] += sign
                outs.append(not torch.equal(enc(bumped)[..., 50], y))
            return any(outs)

        for side in (-1, 1):
            assert changes(side * enc.reach)
            assert not changes(side * (enc.reach + 1))


def test_pitch_conditioning_on_and_off():
    on = _model()
    assert on.conditioning_keys() == ("pitch",) and on.stack.global_channels > 0
    audio = _note(on.context + 300)[None]
    z = on.encode(audio)
    with torch.no_grad():
        a, _ = on.decoder_params(audio, z, 60)
        b, _ = on.decoder_params(audio, z, 67)
    assert not torch.equal(a, b)
    off = _model("nsynth_ae", "tiny", "model.pitch_conditioning=false")
    assert off.conditioning_keys() == () and off.global_cond is None
    assert off.stack.global_channels == 0
    assert torch.isfinite(off.loss(off.example_batch(2, off.context + 200))["loss"])
    spec = _model("spectral_ae", "tiny")
    z = spec.encode(audio)
    assert not torch.equal(decode(spec, z, 60, options=SamplingOptions(seed=0, progress=False)),
                           decode(spec, z, 67, options=SamplingOptions(seed=0, progress=False)))


def test_pitch_excitation_joins_the_code_and_alone_carries_the_pitch():
    """With the pitch clock and no pitch embedding, the pitch still reaches the decoder (two
    local channels beside the code), the plan's clock has the label's period from phase 0, and
    an unknown pitch is silence on those channels."""
    model = _model("nsynth_ae", "tiny", "model.pitch_excitation=true",
                   "model.pitch_conditioning=false")
    d, ctx = model.embedding_dim, model.context
    assert model.conditioning_keys() == ("pitch",) and model.global_cond is None
    audio = _note(ctx + 300)[None]
    z = model.encode(audio)
    with torch.no_grad():
        a, _ = model.decoder_params(audio, z, 60)
        b, _ = model.decoder_params(audio, z, 67)
    assert not torch.equal(a, b)
    n = 2 * model.hop
    with torch.no_grad():
        plan = model.sampling_plan(2, n, {"embedding": z[..., :3].expand(2, -1, -1),
                                          "pitch": torch.tensor([69, -1])})
    assert plan.local.shape == (2, d + 2, ctx + n)
    t = torch.arange(ctx + n) / 16000.0
    torch.testing.assert_close(plan.local[0, d], torch.sin(2 * math.pi * 440.0 * t),
                               atol=1e-4, rtol=0)
    assert float(plan.local[1, d:].abs().max()) == 0.0
    with torch.no_grad():
        unknown = model.sampling_plan(1, n, {"embedding": z[..., :3]})
    assert float(unknown.local[0, d:].abs().max()) == 0.0


def test_input_noise_touches_training_histories_only():
    model = _model("nsynth_ae", "tiny", "model.input_noise=2.0")
    batch = model.example_batch(2, model.context + 200)
    clean = [float(model.loss(batch)["loss"]) for _ in range(2)]
    assert clean[0] == clean[1]  # eval: no noise
    model.train()
    torch.manual_seed(0)
    noisy = float(model.loss(batch)["loss"])
    assert noisy != clean[0] and math.isfinite(noisy)
    with pytest.raises(ConfigError, match="model.input_noise"):
        _model("nsynth_ae", "tiny", "model.input_noise=-1")


def test_code_statistics_follow_training_codes_only():
    stats = CodeStatistics(3, momentum=0.5)
    stats.update(torch.full((2, 3, 4), 2.0))
    torch.testing.assert_close(stats.mean, torch.ones(3))
    z = stats.sample(2, 5, seed=1)
    assert z.shape == (2, 3, 5) and torch.equal(z, stats.sample(2, 5, seed=1))
    assert torch.equal(z[..., :1].expand(-1, -1, 5), z)  # one draw held over time
    model = _model()
    before = model.code_stats.mean.clone()
    model.loss(model.example_batch(2, model.context + 256))  # eval mode: untouched
    assert torch.equal(before, model.code_stats.mean)
    model.train().loss(model.example_batch(2, model.context + 256))
    assert not torch.equal(before, model.code_stats.mean)


# --------------------------------------------------------------------------- sampling


def test_plan_puts_the_code_on_the_output_timeline():
    model = _model()
    ctx, hop = model.context, model.hop
    z = torch.randn(2, model.embedding_dim, 4)
    feats = model.upsample(z, 4 * hop)
    plan = model.sampling_plan(2, 3 * hop, {"embedding": z, "pitch": 60})
    assert plan.prefix.shape == (2, ctx) and plan.local.shape == (2, model.embedding_dim,
                                                                   ctx + 3 * hop)
    torch.testing.assert_close(plan.local[..., ctx:], feats[..., : 3 * hop])
    silent = model.upsample(model.silence_codes(-(-ctx // hop))[None], None)
    torch.testing.assert_close(plan.local[:1, :, :ctx], silent[..., silent.shape[-1] - ctx :])
    prime = 0.1 * torch.randn(hop // 2)
    plan = model.sampling_plan(2, hop, {"embedding": z, "prime": prime})
    torch.testing.assert_close(plan.local[..., ctx - hop // 2 :], feats[..., : hop + hop // 2])
    with pytest.raises(ConfigError, match="pass more code frames"):
        model.sampling_plan(1, 6 * hop, {"embedding": z[:1]})
    with pytest.raises(ConfigError, match="codes are"):
        model.sampling_plan(1, hop, {"embedding": torch.zeros(1, 3, 4)})


GAUSSIAN_16BIT = ("model.head=gaussian", "model.mixture_levels=65536")


@pytest.mark.parametrize("overrides", [(), ("model.pitch_excitation=true",), GAUSSIAN_16BIT])
def test_incremental_sampling_equals_the_naive_rerun(overrides):
    """The cached engine and a full forward per sample agree on the same plan (prime + code,
    and the pitch clock when there is one; and a Gaussian head over 16-bit levels)."""
    model = _model("nsynth_ae", "tiny", *overrides)
    z = model.encode(_note(4 * model.hop)[None].expand(2, -1))
    cond = {"embedding": z, "pitch": torch.tensor([60, 64]), "prime": 0.2 * _note(20)}
    ref = sample_naive(model, 2, 3 * model.hop, cond, seed=4, progress=False)
    out = sample_incremental(model, 2, 3 * model.hop, cond, seed=4, progress=False)
    if model.config.head == "categorical":
        assert torch.equal(ref, out)
    else:  # 65536 levels: a float-rounding difference may move a draw across a level's edge
        first_divergence_is_ambiguous(model, 2, 3 * model.hop, cond, 4, ref, out)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("overrides", [(), ("model.pitch_excitation=true",), GAUSSIAN_16BIT])
def test_fast_engine_matches_the_torch_reference(backend, overrides):
    model = _model("nsynth_ae", "small", *overrides)
    _check_teacher_forced(model, 600, backend)
    n, length = 2, 1500
    z = model.encode(_note(length)[None].expand(n, -1))
    cond = {"embedding": z, "pitch": torch.tensor([57, 62])}
    ref = sample_incremental(model, n, length, cond, seed=9, progress=False)
    out = sample_fast(model, n, length, cond, seed=9, progress=False, backend=backend)
    first_divergence_is_ambiguous(model, n, length, cond, 9, ref, out)


def test_decode_and_generate_route_through_the_engines():
    model = _model()
    z = model.encode(_note(3 * model.hop)[None])
    a = decode(model, z, 60, options=SamplingOptions(engine="torch", seed=2, progress=False))
    b = decode(model, z, 60, options=SamplingOptions(engine="fast", seed=2, progress=False))
    assert a.shape == (1, 3 * model.hop) and torch.equal(a, b)
    audio = _note(2 * model.hop)
    rec = sample(model, 1, 2 * model.hop, {"audio": audio, "pitch": 60},
                 options=SamplingOptions(seed=2, progress=False))
    dec = decode(model, model.encode(audio[None]), 60,
                 options=SamplingOptions(seed=2, progress=False))
    assert torch.equal(rec, dec)


def test_spectral_autoencoder_learns_and_decodes():
    torch.manual_seed(0)
    model = _model("spectral_ae", "tiny").train()
    batch = {"audio": torch.stack([_note(1024, 300.0), _note(1024, 500.0, seed=1)]),
             "pitch": torch.tensor([62, 71])}
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        loss = model.loss(batch)
        first = float(loss["loss"].detach()) if first is None else first
        opt.zero_grad()
        loss["loss"].backward()
        opt.step()
    assert float(model.loss(batch)["loss"].detach()) < 0.5 * first
    model.eval()
    z = model.encode(batch["audio"])
    audio = decode(model, z, batch["pitch"], 1000, options=SamplingOptions(seed=0, progress=False))
    assert audio.shape == (2, 1000) and torch.isfinite(audio).all()
    assert audio.abs().max() <= 1.0 and audio.abs().max() > 0.01


# --------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny NSynth AE trained for 3 steps on 4 rendered notes, plus two of the notes."""
    root = tmp_path_factory.mktemp("ae")
    notes, cache, run = root / "notes", root / "cache", root / "run"
    assert main(["data", "render-notes", str(notes), "--programs", "0", "--pitches", "60-63",
                 "--velocities", "100", "-q"]) == 0
    assert main(["prepare", str(notes), str(cache), "-q"]) == 0
    assert main(["train", str(CONFIGS / "nsynth_ae" / "tiny.yaml"), "--data", str(cache),
                 "--out", str(run), "--max-steps", "3", "data.window=256", "data.batch_size=2",
                 "--threads", "1", "-q"]) == 0
    wavs = sorted((notes / "audio").glob("*.wav"))
    return root, run / "model.safetensors", wavs[0], wavs[-1]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "waveloom.cli", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_encode_decode_interpolate_in_a_subprocess(trained):
    root, ckpt, a, b = trained
    enc = _cli("encode", str(ckpt), str(a), str(b), "--out", str(root / "enc"), "--seconds", "0.1")
    assert enc.returncode == 0, enc.stderr
    npy = root / "enc" / f"{a.stem}.npy"
    z = np.load(npy)
    assert z.shape == (4, -(-1600 // 64)) and z.dtype == np.float32
    assert npy.with_suffix(".png").is_file()
    dec = _cli("decode", str(ckpt), str(npy), "--out", str(root / "dec"), "--pitch", "60",
               "--seconds", "0.05", "--threads", "1", "-q")
    assert dec.returncode == 0, dec.stderr
    audio, sr = sf.read(root / "dec" / f"{a.stem}.wav")
    assert sr == 16000 and len(audio) == 800 and np.isfinite(audio).all()
    ip = _cli("interpolate", str(ckpt), str(a), str(b), "--steps", "3", "--out",
              str(root / "ip"), "--seconds", "0.05", "--pitch", "61", "--engine", "torch", "-q")
    assert ip.returncode == 0, ip.stderr
    assert sorted(p.name for p in (root / "ip").iterdir()) == [
        "interp-0.wav", "interp-1.wav", "interp-2.wav", "rainbowgrams.png"]
    steps = [sf.read(root / "ip" / f"interp-{i}.wav")[0] for i in range(3)]
    assert all(len(x) == 800 and np.isfinite(x).all() for x in steps)


def test_generate_continues_a_prime_on_the_primes_own_code(trained, tmp_path, capsys):
    """`generate --prime FILE` on an NSynth AE continues the file: the decoder is conditioned on
    the prime's code, then its last whole frame held (it used to ask for more code frames
    than the drawn code had and stop with an API-level error)."""
    from waveloom.models.load import load_checkpoint

    _, ckpt, a, _ = trained
    prime = tmp_path / "prime.wav"
    audio, sr = sf.read(a, dtype="float32")
    sf.write(prime, audio[:1000], sr)  # 15 frames of 64 and a partial one
    assert main(["generate", str(ckpt), "--prime", str(prime), "--pitch", "60", "--n", "2",
                 "--seconds", "0.05", "--out", str(tmp_path / "g"), "--threads", "1",
                 "-q"]) == 0
    out = [sf.read(tmp_path / "g" / f"sample-{i}.wav")[0] for i in range(2)]
    assert all(len(x) == 800 and np.isfinite(x).all() for x in out)
    model, _ = load_checkpoint(ckpt)
    z = model.continued_codes(2, 800, torch.from_numpy(audio[:1000]))
    own = model.encode(torch.from_numpy(audio[:1000]))
    assert z.shape == (2, own.shape[1], -(-1800 // 64))
    torch.testing.assert_close(z[:, :, : own.shape[-1]], own.expand(2, -1, -1))
    assert torch.equal(z[:, :, -1], own[:, :, 1000 // 64 - 1].expand(2, -1))
    with pytest.raises(ConfigError, match="cond.'prime'. has shape"):
        model.continued_codes(2, 800, torch.zeros(3, 100))


def test_bad_inputs_are_one_line_errors(trained, tmp_path, capsys):
    root, ckpt, a, _ = trained
    run = load_config(CONFIGS / "wavenet" / "tiny.yaml")
    wavenet = save_checkpoint(tmp_path / "wavenet.safetensors", build_model(run), run)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 5), np.float32))
    cases = [
        (["encode", str(ckpt), str(tmp_path / "missing.wav"), "--out", str(tmp_path)],
         "missing.wav"),
        (["encode", str(wavenet), str(a), "--out", str(tmp_path)], "has no encoder"),
        (["decode", str(ckpt), str(tmp_path / "none.npy"), "--out", str(tmp_path)], "none.npy"),
        (["decode", str(ckpt), str(a), "--out", str(tmp_path)], "not a .npy code array"),
        (["decode", str(ckpt), str(bad), "--out", str(tmp_path), "--pitch", "60"],
         "codes are \\[4, frames\\]"),
        (["decode", str(ckpt), str(bad), "--out", str(tmp_path)], "pass --pitch"),
        (["interpolate", str(ckpt), str(a), str(a), "--steps", "1", "--out", str(tmp_path)],
         "--steps 1"),
        (["interpolate", str(tmp_path / "no.safetensors"), str(a), str(a), "--out",
          str(tmp_path)], "checkpoint not found"),
    ]
    for args, match in cases:
        capsys.readouterr()
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), err
        assert re.search(match, err[0]), (match, err[0])
    proc = _cli("interpolate", str(wavenet), str(a), str(a), "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error: ") and "has no encoder" in proc.stderr


def _with_extra(src, dst, **entries):
    """A copy of checkpoint ``src`` whose metadata's ``extra`` gains ``entries``."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta["extra"] = json.dumps({**json.loads(meta.get("extra", "{}")), **entries})
    save_file(tensors, str(dst), metadata=meta)
    return dst


def test_a_recorded_temperature_is_the_default_and_a_flag_overrides_it(trained, capsys):
    """extra.sampling.temperature (scripts/ship_checkpoint.py --temperature) is what decode
    uses without --temperature, with a note; --temperature wins; a bad record is one line."""
    root, ckpt, a, _ = trained
    cold = _with_extra(ckpt, root / "cold.safetensors", sampling={"temperature": 0.5})
    assert main(["encode", str(ckpt), str(a), "--out", str(root / "t-enc"), "--seconds",
                 "0.1"]) == 0
    npy = root / "t-enc" / f"{a.stem}.npy"

    def decoded(model, *flags):
        out = root / f"t-{model.stem}-{'-'.join(flags) or 'default'}"
        assert main(["decode", str(model), str(npy), "--out", str(out), "--pitch", "60",
                     "--seconds", "0.05", "--engine", "torch", "-q", *flags]) == 0
        return sf.read(out / f"{a.stem}.wav")[0]

    capsys.readouterr()
    default = decoded(cold)
    assert "temperature 0.5" in capsys.readouterr().err
    assert np.array_equal(default, decoded(cold, "--temperature", "0.5"))
    assert not np.array_equal(default, decoded(cold, "--temperature", "1"))
    assert np.array_equal(decoded(ckpt), decoded(ckpt, "--temperature", "1"))
    assert "temperature" not in capsys.readouterr().err  # nothing recorded: 1, silently
    bad = _with_extra(ckpt, root / "bad.safetensors", sampling={"temperature": -1})
    capsys.readouterr()
    assert main(["decode", str(bad), str(npy), "--out", str(root / "t-bad"), "--pitch",
                 "60", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "extra.sampling.temperature=-1" in err
