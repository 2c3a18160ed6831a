"""The SampleRNN family: configs, shapes, causality, stateful sampling equal to the teacher-forced
pass, truncated-BPTT state carry, the trainer's chunked path, NLL, and the CLI end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import waveloom.models.samplernn as srnn
from waveloom.config import SamplingOptions
from waveloom.errors import ConfigError, DataError
from waveloom.evaluate.nll import model_nll_bits
from waveloom.models.load import build_run_config, load_config
from waveloom.models.registry import build_model
from waveloom.models.samplernn import LinearCategoricalHead, SampleRNN, SampleRNNConfig, Stepper
from waveloom.sampling.sample import sample
from waveloom.train.objectives.bptt import window_losses

from .conftest import CONFIGS

TINY = dict(frame_sizes=(8, 2), hidden=16, mlp_hidden=16, embedding_dim=8, num_instruments=4,
            pitch_conditioning=True, instrument_conditioning=True, cond_dim=4)
VARIANTS = {
    "gru-3tier": {},
    "lstm-4tier-linear": dict(rnn="lstm", frame_sizes=(16, 8, 2), quantization="linear"),
    "gru-2layer-2tier-nocond": dict(frame_sizes=(4,), rnn_layers=2, mlp_layers=3,
                                    pitch_conditioning=False, instrument_conditioning=False),
    "gru-3tier-clock": dict(pitch_excitation=True, note_clock=True, input_noise=2.0),
}


def _clock(batch):
    """The (pitch, start) a pitch-clock model reads from a batch (ignored by the others)."""
    return batch.get("pitch"), batch.get("start")


def _model(seed=0, **overrides) -> SampleRNN:
    torch.manual_seed(seed)
    model = SampleRNN(SampleRNNConfig(**{**TINY, **overrides})).eval()
    with torch.no_grad():  # a non-trivial start state, as after training
        for tier in model.tiers:
            tier.h0.normal_(0, 0.5)
    return model


def _batch(model, n=2, predicted=64, seed=0):
    return model.example_batch(n, model.context + predicted, seed=seed)


# --------------------------------------------------------------------------- configs


@pytest.mark.parametrize("name", ["tiny", "small", "paper"])
def test_presets_load_and_build(name):
    run = load_config(CONFIGS / "samplernn" / f"{name}.yaml")
    assert run.family == "samplernn" and run.data.chunks > 1
    assert run.data.window % run.model.frame_sizes[0] == 0
    if name == "paper":  # Mehri et al. 2017, three tiers: no need to build 100 MB of weights
        c = run.model
        assert (tuple(c.frame_sizes), c.rnn, c.hidden, c.mlp_hidden) == ((16, 4), "gru", 1024,
                                                                       1024)
        assert (c.quantization, c.embedding_dim) == ("mulaw", 256)
        return
    model = build_model(run)
    assert model.context == run.model.frame_sizes[0]


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"frame_sizes": [4, 16]}, "multiple of the next"),
        ({"frame_sizes": [16, 5]}, "multiple of the next"),
        ({"frame_sizes": []}, "one or more"),
        ({"rnn": "rnn"}, "model.rnn='rnn'"),
        ({"quantization": "alaw"}, "model.quantization"),
        ({"hidden": 0}, "model.hidden=0"),
        ({"cond_dropout": 1.0}, "cond_dropout"),
        ({"frame_size": [16, 4]}, "did you mean 'frame_sizes'"),
    ],
)
def test_config_validation_names_the_key(overrides, match):
    with pytest.raises(ConfigError, match=match):
        build_run_config({"family": "samplernn", "model": overrides})
    with pytest.raises(ConfigError, match="data.chunks=0"):
        build_run_config({"family": "samplernn", "data": {"chunks": 0}})


def test_linear_quantisation_bins():
    head = LinearCategoricalHead()
    x = torch.tensor([-1.0, -0.999, -1e-4, 0.0, 0.5, 0.999, 1.0])
    codes = head.encode(x)
    assert codes.tolist() == [0, 0, 127, 128, 192, 255, 255]
    assert torch.all((head.decode(codes) - x.clamp(max=1 - 1 / 256)).abs() <= 1 / 256)


# --------------------------------------------------------------------------- the network


@pytest.mark.parametrize("rnn", ["gru", "lstm"])
def test_frame_tier_step_equals_forward(rnn):
    from waveloom.nn.tiers import FrameTier

    torch.manual_seed(0)
    tier = FrameTier(frame=4, ratio=2, hidden=12, out_dim=6, rnn=rnn, layers=2, global_dim=3,
                     learn_h0=True).eval()
    with torch.no_grad():
        tier.h0.normal_()
        frames, above, g = torch.randn(2, 5, 4), torch.randn(2, 5, 12), torch.randn(2, 3)
        out, final = tier(frames, above, g, None)
        state, g_bias = None, tier.global_proj(g)
        for i in range(5):
            vectors, state = tier.step(frames[:, i], above[:, i], g_bias, state)
            torch.testing.assert_close(vectors, out[:, 2 * i : 2 * i + 2], atol=1e-6, rtol=0)
        pairs = zip(state, final) if rnn == "lstm" else [(state, final)]  # (h, c) or h
        for a, b in pairs:
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_shapes_any_length_and_loss(variant):
    model = _model(**VARIANTS[variant])
    for predicted in (64, 37, 1):  # 37 and 1: not whole top frames (padded internally)
        batch = _batch(model, predicted=predicted)
        assert model.log_prob(batch).shape == (2, predicted)
    model.train()
    losses = model.loss(_batch(model))
    assert set(losses) == {"loss", "bits_per_sample"} and torch.isfinite(losses["loss"])
    losses["loss"].backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_causality_future_samples_do_not_change_the_past(variant):
    model = _model(**VARIANTS[variant])
    batch = _batch(model, predicted=48)
    ctx = model.context
    with torch.no_grad():
        base, _, _ = model._run(batch["audio"], model._global(batch, 2, False), None, False,
                                _clock(batch))
        for t in (0, 1, 7, 8, 9, 15, 16, 33, 47):  # predicted positions, across frame borders
            changed = batch["audio"].clone()
            changed[:, ctx + t :] = torch.rand_like(changed[:, ctx + t :]) * 2 - 1
            logits, _, _ = model._run(changed, model._global(batch, 2, False), None, False,
                                      _clock(batch))
            # Logits of position t depend only on samples < t: equal up to and including t.
            torch.testing.assert_close(logits[..., : t + 1], base[..., : t + 1], atol=1e-6,
                                       rtol=0)
            if t + 2 < logits.shape[-1]:
                assert not torch.allclose(logits[..., t + 2 :], base[..., t + 2 :])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_stateful_steps_equal_the_teacher_forced_pass(variant):
    """Feeding the true codes to the sampler's step path gives the full pass's logits."""
    model = _model(**VARIANTS[variant])
    batch = _batch(model, predicted=80)
    ctx, n = model.context, 2
    with torch.no_grad():
        g = model._global(batch, n, False)
        full, codes, _ = model._run(batch["audio"], g, None, False, _clock(batch))
        history = model.head.encode(batch["audio"][:, :ctx])
        local = model._features(batch["pitch"], batch.get("start"), codes.shape[1])
        stepper = Stepper(model, g, history, None, codes.shape[1], local)
        for t in range(codes.shape[1]):
            torch.testing.assert_close(stepper.logits(), full[..., t], atol=1e-5, rtol=0)
            stepper.push(codes[:, t])
        assert torch.equal(stepper.codes(), codes)


@pytest.mark.parametrize("variant", ["gru-3tier", "gru-3tier-clock"])
def test_prime_continues_from_the_exact_state(variant):
    """generate's priming (a prime of any length, left-padded to whole frames) then steps
    equals the teacher-forced pass over silence + prime + continuation; with a pitch clock,
    the prime's first sample is the note's onset."""
    model = _model(**VARIANTS[variant])
    ctx, n, p = model.context, 2, 29  # 29: not a whole top frame
    audio = _batch(model, predicted=60)["audio"][:, ctx:]
    cond = {"pitch": torch.tensor([60, 70]), "instrument": torch.tensor([1, 2]),
            "prime": audio[:, :p]}
    with torch.no_grad():
        g, history, state, first = model._sampling_inputs(n, cond)
        assert first == p
        pad = ctx + (-p % ctx)
        clock = (cond["pitch"], torch.full((n,), -pad))
        full, codes, _ = model._run(torch.nn.functional.pad(audio, (pad, 0)), g, None, False,
                                    clock)
        local = model._features(cond["pitch"], torch.full((n,), p - ctx), 60 - p + 3)
        stepper = Stepper(model, g, history, state, 60 - p, local)
        for t in range(pad - ctx + p, full.shape[-1]):  # the positions after the prime
            torch.testing.assert_close(stepper.logits(), full[..., t], atol=1e-5, rtol=0)
            stepper.push(codes[:, t])


@pytest.mark.parametrize("variant", ["gru-3tier", "lstm-4tier-linear", "gru-3tier-clock"])
def test_tbptt_two_chunks_with_carried_state_equal_one_pass(variant):
    model = _model(**VARIANTS[variant])
    ctx, w = model.context, 64
    batch = _batch(model, predicted=2 * w)
    audio = batch["audio"]
    first = {**batch, "audio": audio[:, : ctx + w]}
    second = {**batch, "audio": audio[:, w : 2 * w + ctx]}  # overlaps by the context
    if "start" in batch:  # the second window starts w samples later in the note
        second["start"] = batch["start"] + w
    with torch.no_grad():
        whole = model.log_prob(batch)
        lp1, state = model.log_prob_chunk(first, None)
        lp2, _ = model.log_prob_chunk(second, state)
        torch.testing.assert_close(torch.cat([lp1, lp2], 1), whole, atol=1e-5, rtol=0)
        loss1, state = model.loss_chunk(first, None)
        loss2, _ = model.loss_chunk(second, state)
        torch.testing.assert_close((loss1["loss"] + loss2["loss"]) / 2,
                                   model.loss(batch)["loss"], atol=1e-6, rtol=0)
        lp2_fresh, _ = model.log_prob_chunk(second, None)
        assert not torch.allclose(lp2_fresh, lp2), "the carried state must matter"
    with pytest.raises(DataError, match=f"multiple of its top frame size {ctx}"):
        model.loss_chunk({**batch, "audio": audio[:, : ctx + ctx // 2]}, None)


def test_long_sequences_are_scored_in_state_carrying_passes(monkeypatch):
    model = _model()
    batch = _batch(model, predicted=200)
    with torch.no_grad():
        one_pass = model.log_prob(batch)
        monkeypatch.setattr(srnn, "SCORE_CHUNK", 24)  # 3 top frames per pass
        torch.testing.assert_close(model.log_prob(batch), one_pass, atol=1e-5, rtol=0)


def test_nll_scores_each_clip_from_its_start_in_one_pass():
    model = _model()
    rng = np.random.default_rng(0)
    clips = [(0.3 * rng.standard_normal(n)).clip(-1, 1).astype(np.float32) for n in (300, 77)]
    cond = [{"pitch": 60, "instrument": 1}, {"pitch": 62, "instrument": 0}]
    got = model_nll_bits(model, clips, cond=cond, chunk=64, progress=False)
    expected = 0.0
    with torch.no_grad():
        for clip, c in zip(clips, cond):
            audio = torch.from_numpy(np.concatenate([np.zeros(model.context, np.float32), clip]))
            batch = {"audio": audio[None], **{k: torch.tensor([v]) for k, v in c.items()}}
            expected -= float(model.log_prob(batch).double().sum())
    assert got["samples"] == 377
    assert got["total_bits"] == pytest.approx(expected / np.log(2), rel=1e-6)


# --------------------------------------------------------------------------- sampling


def _cpu_steppers() -> list:
    from waveloom.models import samplernn_kernel
    from waveloom.models.samplernn_stepper import NumpyStepper

    kernel = [samplernn_kernel.CStepper] if samplernn_kernel.unavailable() is None else []
    return [NumpyStepper, *kernel]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_cpu_steppers_are_the_torch_stepper(variant):
    """The CPU samplers (numpy, and the C kernel where it builds) give the torch stepper's
    logits step by step from a primed state, and the same codes for a seed through
    sample()."""
    model = _model(**VARIANTS[variant])
    ctx, n, p = model.context, 2, 21
    audio = _batch(model, predicted=60)["audio"][:, ctx:]
    cond = {"pitch": torch.tensor([60, 70]), "instrument": torch.tensor([1, 2]),
            "prime": audio[:, :p]}
    for stepper in _cpu_steppers():
        with torch.no_grad():
            g, history, state, first = model._sampling_inputs(n, cond)
            local = model._features(cond["pitch"], torch.full((n,), first - ctx), 48)
            ref = Stepper(model, g, history, state, 40, local)
            ours = stepper(model, g, history, state, 40, local)
            for _ in range(40):
                expected = ref.logits()
                np.testing.assert_allclose(ours.logits(), expected.numpy(), atol=2e-5, rtol=0,
                                           err_msg=stepper.__name__)
                codes = expected.argmax(-1)
                ref.push(codes)
                ours.buf[:, ctx + ours.t] = codes.numpy()
                ours.t += 1
    cond.pop("prime")
    draws = [sample(model, n, 70, cond, SamplingOptions(seed=3, progress=False, engine=e))
             for e in ("torch", "auto")]
    assert torch.equal(*draws)


def test_kernel_streams_split_over_threads_draw_the_same_codes():
    """The C sampler's streams in groups on two threads draw what one group draws, and the
    stepper refuses uniforms of the wrong shape or past its length in one line."""
    from waveloom.models import samplernn_kernel as sk

    if sk.unavailable() is not None:
        pytest.skip(sk.unavailable())
    model = _model(**VARIANTS["gru-3tier-clock"])
    n, length = 3, 150
    cond = {"pitch": torch.tensor([60, 64, 67]), "instrument": torch.tensor([0, 1, 2])}
    with torch.no_grad():
        g, history, state, first = model._sampling_inputs(n, cond)
        local = model._features(cond["pitch"], torch.full((n,), first - model.context), 160)
        u = np.random.default_rng(0).random((length, n)).astype(np.float32)
        runs = [sk.sample_codes(model, g, history, state, length, local, u, 1.0, threads)
                for threads in (1, 2)]
        np.testing.assert_array_equal(*runs)
        stepper = sk.CStepper(model, g, history, state, length, local)
        with pytest.raises(ValueError, match="expected"):
            stepper.run(u[:, :2], 1.0)
        with pytest.raises(ValueError, match="overrun"):
            stepper.run(np.concatenate([u, u]), 1.0)


def test_seed_and_temperature():
    model = _model()
    cond = {"pitch": torch.tensor([60, 67]), "instrument": torch.tensor([0, 3])}
    a = sample(model, 2, 50, cond, options=SamplingOptions(seed=5, progress=False))
    assert a.shape == (2, 50) and a.abs().max() <= 1
    assert torch.equal(a, sample(model, 2, 50, cond,
                                 options=SamplingOptions(seed=5, progress=False, engine="torch")))
    assert not torch.equal(a, sample(model, 2, 50, cond,
                                     options=SamplingOptions(seed=6, progress=False)))
    with torch.no_grad():  # a confident model: at a low temperature the seed hardly matters
        model.mlp.out.weight.mul_(50.0)
    cold = sample(model, 2, 50, cond,
                  options=SamplingOptions(seed=5, temperature=0.05, progress=False))
    again = sample(model, 2, 50, cond,
                   options=SamplingOptions(seed=9, temperature=0.05, progress=False))
    assert (cold == again).float().mean() > 0.9


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(engine="fast"), "plain torch only; use --engine auto or torch"),
        (dict(engine="cuda-graph"), "plain torch only"),
        (dict(weights="int8"), "samples in float32"),
        (dict(n=0), "must be positive"),
        (dict(temperature=0.0), "temperature 0.0"),  # refused by SamplingOptions
        (dict(cond={"pitch": 200}), "pitch 200 is not a MIDI pitch"),
        (dict(cond={"instrument": torch.tensor([0, 1, 2])}), "3 values for n=2"),
        (dict(cond={"prime": torch.zeros(3, 10)}), r"cond\['prime'\] has shape"),
    ],
)
def test_bad_generate_arguments_are_one_line_errors(kwargs, match):
    model = _model()
    args = {"n": 2, "length": 10, "cond": None, **kwargs}
    with pytest.raises(ConfigError, match=match) as err:
        options = {k: args.pop(k) for k in ("engine", "weights", "temperature") if k in args}
        sample(model, args["n"], args["length"], args["cond"],
               SamplingOptions(progress=False, **options))
    assert "\n" not in str(err.value)


def test_bad_batches_are_one_line_errors():
    model = _model()
    with pytest.raises(DataError, match=r"expected \[B, T\]"):
        model.loss({"audio": torch.zeros(10)})
    with pytest.raises(DataError, match="context of 8 plus at least one more"):
        model.log_prob({"audio": torch.zeros(2, 8)})


# --------------------------------------------------------------------------- training


class _Recorder(torch.nn.Module):
    """A stand-in recurrent model: records the state it is given for each window."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.seen: list = []

    def loss_chunk(self, batch, state):
        self.seen.append((batch["audio"].clone(), state))
        new = self.w * batch["audio"].sum() + (0 if state is None else state[0])
        return {"loss": new}, (new, [new * 2])


def test_trainer_steps_through_windows_carrying_detached_state():
    model = _Recorder()
    audio = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(2, 3, 5)
    batch = {"audio": audio, "pitch": torch.ones(2)}
    per_batch = [list(window_losses(model, b)) for b in (batch, batch)]
    assert [len(windows) for windows in per_batch] == [3, 3]
    losses = [d["loss"] for d in per_batch[0]]
    assert len(model.seen) == 6 and model.seen[3][1] is None, "a new batch starts a new state"
    assert model.seen[0][1] is None
    for j, (window, state) in enumerate(model.seen[:3]):
        assert torch.equal(window, audio[:, j])
        if j:
            prev = losses[j - 1]
            assert not state[0].requires_grad and not state[1][0].requires_grad
            assert float(state[0]) == float(prev.detach()) and isinstance(state[1], list)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny SampleRNN trained a few steps from the CLI on a few rendered notes."""
    from waveloom.data.prepare import prepare
    from waveloom.data.synth import render_notes

    root = tmp_path_factory.mktemp("samplernn")
    render_notes(root / "notes", programs=[0, 24], pitches=[60, 64], velocities=[100],
                 hold_seconds=0.3, release_seconds=0.1, progress=False)
    prepare(root / "notes", root / "cache", progress=False)
    run = root / "run"
    result = subprocess.run(
        [sys.executable, "-m", "waveloom.cli", "train", str(CONFIGS / "samplernn" / "tiny.yaml"),
         "--data", str(root / "cache"), "--out", str(run), "--max-steps", "3", "--threads", "1",
         "-q", "train.checkpoint_every=2", "data.onset_fraction=0.5"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return root / "cache", run


def test_train_resume_is_exact(trained, tmp_path):
    from safetensors.torch import load_file

    from waveloom.train.trainer import train

    cache, _ = trained
    tiny = CONFIGS / "samplernn" / "tiny.yaml"
    over = ["train.checkpoint_every=2", "data.batch_size=2"]
    train(load_config(tiny, [*over, "train.max_steps=4"]), cache, tmp_path / "a", progress=False)
    train(load_config(tiny, [*over, "train.max_steps=2"]), cache, tmp_path / "b", progress=False)
    train(load_config(tiny, [*over, "train.max_steps=4"]), cache, tmp_path / "b", resume=True,
          progress=False)
    a, b = (load_file(str(tmp_path / r / "model.safetensors")) for r in "ab")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_ddp_two_processes_equal_one_process(trained, tmp_path):
    """Per-window updates under DDP (h0 unused after the first window) match one process."""
    from safetensors.torch import load_file

    cache, _ = trained
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    for name, devices, batch in (("ddp", "2", 2), ("one", "1", 4)):
        extra = ["--strategy", "ddp"] if devices == "2" else []
        result = subprocess.run(
            [sys.executable, "-m", "waveloom.cli", "train",
             str(CONFIGS / "samplernn" / "tiny.yaml"), "--data", str(cache), "--out",
             str(tmp_path / name), "--max-steps", "2", "--accelerator", "cpu", "--devices",
             devices, *extra, "-q", f"data.batch_size={batch}"],
            capture_output=True, text=True, timeout=300, env=env,
        )
        assert result.returncode == 0, result.stderr[-2000:]
    a, b = (load_file(str(tmp_path / r / "model.safetensors")) for r in ("ddp", "one"))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5


def test_cli_generate_and_evaluate_on_a_trained_checkpoint(trained, tmp_path):
    import soundfile as sf

    from waveloom.evaluate.run import evaluate

    cache, run = trained
    ckpt = run / "model.safetensors"

    def generate(out: Path, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "waveloom.cli", "generate", str(ckpt), "--out", str(out),
             "--n", "2", "--seconds", "0.05", "--pitch", "62", "--seed", "4", "-q", *extra],
            capture_output=True, text=True, timeout=120,
        )

    ok = generate(tmp_path / "a", "--engine", "torch", "--threads", "1")
    assert ok.returncode == 0, ok.stderr[-2000:]
    audio, sr = sf.read(tmp_path / "a" / "sample-0.wav")
    assert sr == 16000 and len(audio) == 800 and (tmp_path / "a" / "sample-1.png").is_file()
    same = model_generate_bytes(ckpt, seed=4)
    assert np.array_equal(np.stack([sf.read(tmp_path / "a" / f"sample-{i}.wav")[0]
                                    for i in range(2)]), same)
    bad = generate(tmp_path / "b", "--engine", "fast")
    assert bad.returncode != 0
    lines = [x for x in bad.stderr.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and "use --engine auto or torch" in lines[0]

    report = evaluate(ckpt, metrics=("nll",), data=cache, split="train", progress=False)
    nll = report["nll"]
    assert nll["samples"] > 0 and 0 < nll["bits_per_sample"] < 9


def model_generate_bytes(ckpt: Path, seed: int) -> np.ndarray:
    """What the CLI writes for 2 x 0.05 s at pitch 62, drawn in-process (16-bit WAV values)."""
    import soundfile as sf

    from waveloom.app.generate import generate_to_folder
    from waveloom.config import SamplingOptions

    with __import__("tempfile").TemporaryDirectory() as tmp:
        paths = generate_to_folder(ckpt, tmp, n=2, seconds=0.05, pitch=62, device="cpu",
                                   plots=False, options=SamplingOptions(seed=seed, progress=False))
        return np.stack([sf.read(p)[0] for p in paths])


def test_pitch_clock_runs_from_the_onset_and_noise_touches_only_the_inputs():
    """The clock a pitch-clock SampleRNN reads is the labelled pitch's sine with phase 0 at the
    note's onset (silent before it); training noise changes the input history, never the
    targets; a batch without 'start' is a one-line error."""
    model = _model(**VARIANTS["gru-3tier-clock"])
    ctx, sr = model.context, model.config.sample_rate
    assert model.batch_keys() == ("pitch", "instrument", "start")
    local = model._features(torch.tensor([69]), torch.tensor([-ctx - 5]), 400)  # onset at 5
    t = torch.arange(400) - 5.0
    expected = torch.sin(2 * torch.pi * 440.0 * t / sr) * (t >= 0)
    torch.testing.assert_close(local[0, :, 0], expected, atol=1e-4, rtol=0)
    assert local.shape == (1, 400, model.local_channels) and local[0, :5].abs().max() == 0
    batch = _batch(model, predicted=64)
    _, clean_targets, _ = model._run(batch["audio"], model._global(batch, 2, False), None,
                                     False, _clock(batch))
    model.train()
    torch.manual_seed(1)
    noisy, targets, _ = model._run(batch["audio"], model._global(batch, 2, False), None, False,
                                   _clock(batch))
    assert torch.equal(targets, clean_targets)
    model.eval()
    plain, _, _ = model._run(batch["audio"], model._global(batch, 2, False), None, False,
                             _clock(batch))
    assert not torch.allclose(noisy, plain)
    with pytest.raises(DataError, match="needs each window's 'start'"):
        model.loss({k: v for k, v in batch.items() if k != "start"})
    out = [model.generate(1, 40, {"pitch": p, "instrument": 1}, SamplingOptions(seed=3))
           for p in (60, 72)]
    assert out[0].shape == (1, 40) and not torch.equal(out[0], out[1])
