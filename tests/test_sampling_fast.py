"""The fast sampling engine against the plain-torch reference.

Exactness is checked in two ways:

* logits: teacher-forced runs (the engine fed given codes from a zero state) must match
  ``WaveNetStack.forward`` to 1e-4 at EVERY step, for each preset and each kind of
  conditioning;
* codes: both engines turn logits into codes by the inverse CDF of the same pre-drawn
  uniform. Logits equal to ~1e-6 give the same code unless the uniform lies within that
  distance of a CDF boundary, so a disagreement is accepted only at a step where the
  reference's own CDF puts the uniform within a bound derived from the measured logit error
  ("provably ambiguous"), and such steps must be rare.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
import torch

from waveloom.config import SamplingOptions
from waveloom.device import set_threads
from waveloom.errors import ConfigError
from waveloom.models.load import load_config
from waveloom.models.registry import build_model
from waveloom.nn.heads import CategoricalHead, DiscretizedGaussianHead
from waveloom.sampling import cbuild
from waveloom.sampling import numba_kernels as nk
from waveloom.sampling.driver_race import DriverRace
from waveloom.sampling.engine import resolve_engine, sample_codes
from waveloom.sampling.fast import WEIGHT_KINDS, FastWaveNet, sample_fast
from waveloom.sampling.incremental import draw_uniforms, sample_incremental
from waveloom.sampling.sample import sample

from .conftest import CONFIGS

BACKENDS = ["numba"] + (["c"] if cbuild.load()[0] is not None else [])
TOL = 1e-4


def _model(preset: str, *overrides: str, seed: int = 0):
    torch.manual_seed(seed)
    run = load_config(CONFIGS / "wavenet" / f"{preset}.yaml", list(overrides))
    return build_model(run).eval()


def _inputs(stack, batch: int, length: int, seed: int = 0):
    """Random codes [B, T], global vector [B, G] and local features [B, L, T] (or None)."""
    gen = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, stack.input_levels, (batch, length), generator=gen)
    g = torch.randn(batch, stack.global_channels, generator=gen) if stack.global_channels else None
    l = None
    if stack.local_channels:
        l = torch.randn(batch, stack.local_channels, length, generator=gen)
    return codes, g, l


def _ambiguous(head, params: torch.Tensor, u: torch.Tensor, err: float) -> torch.Tensor:
    """Which rows of ``params`` [N, P] could draw another code from ``u`` [N, U] if the
    logits moved by at most ``err`` (the measured logit error) -> bool [N]."""
    slack = 2.0 * err + 2e-6  # |d log p| <= 2 err, so every CDF value moves by <= 2 err
    if isinstance(head, CategoricalHead):
        cdf = torch.softmax(params.double(), -1).cumsum(-1)
        return ((cdf - u[:, :1].double()).abs() <= slack).any(-1)
    if isinstance(head, DiscretizedGaussianHead):  # x = mu + s z: only the rounding can flip
        mu, log_s = head.gaussian(params)
        z = (2.0 ** 0.5) * torch.erfinv(2.0 * u[:, 0].double().clamp(1e-7, 1 - 1e-7) - 1.0)
        s = log_s.double().exp()
        x = mu.double() + s * z
        dx = err * (1.0 + s * z.abs()) + 1e-6
        pos = (x.clamp(-1, 1) + 1.0) * 0.5 * (head.levels - 1)
        return ((pos - pos.floor() - 0.5).abs() * 2.0 / (head.levels - 1)) <= dx
    k = head.components
    logits, means, log_scales = params[:, :k], params[:, k : 2 * k], params[:, 2 * k :]
    cdf = torch.softmax(logits.double(), -1).cumsum(-1)
    near_component = ((cdf - u[:, :1].double()).abs() <= slack).any(-1)
    target = u[:, :1].float().contiguous()
    comp = torch.searchsorted(cdf.float(), target, right=True).clamp(max=k - 1)
    mu = means.gather(1, comp)[:, 0].double()
    s = log_scales.gather(1, comp)[:, 0].clamp(min=head.log_scale_min).double().exp()
    v = u[:, 1].double().clamp(1e-7, 1 - 1e-7)
    logit = v.log() - (-v).log1p()
    x = mu + s * logit
    dx = err * (1.0 + s * logit.abs()) + 1e-6  # mean and log-scale both move by <= err
    pos = (x.clamp(-1, 1) + 1.0) * 0.5 * (head.levels - 1)
    near_rounding = ((pos - pos.floor() - 0.5).abs() * 2.0 / (head.levels - 1)) <= dx
    return near_component | near_rounding


def _check_teacher_forced(model, length: int, backend: str, batch: int = 2) -> float:
    """Engine logits vs forward() at every step; draws vs the head; returns the max error."""
    stack, head = model.stack, model.head
    codes, g, l = _inputs(stack, batch, length)
    with torch.no_grad():
        ref = stack(codes, g, l).permute(2, 0, 1)  # [T, B, P]
    u = draw_uniforms(7, length, batch, 2)
    engine = FastWaveNet(stack, head, backend=backend)
    engine.reset(batch, g)
    params, draws = engine.teacher_force(codes, l, u)
    err = (torch.from_numpy(params) - ref).abs()
    step_err = err.amax(dim=(1, 2))
    assert step_err.max() < TOL, f"step {int(step_err.argmax())}: logit error {step_err.max()}"
    flat = ref.reshape(-1, ref.shape[-1])
    u_flat = u[:, :, : head.uniforms_per_step].reshape(-1, head.uniforms_per_step)
    expected = head.sample(flat, u_flat).reshape(length, batch).t()
    differ = torch.from_numpy(draws).long() != expected
    ambiguous = _ambiguous(head, flat, u_flat, float(err.max())).reshape(length, batch).t()
    assert not (differ & ~ambiguous).any(), "a code differs where the draw is not ambiguous"
    assert differ.float().mean() < 0.01
    return float(err.max())


# --------------------------------------------------------------------------- numerics


def test_tanh_and_its_fit_are_accurate():
    x = np.concatenate([np.linspace(-12, 12, 400_001), 10.0 ** np.linspace(-30, 1, 2001)])
    x = np.concatenate([x, -x]).astype(np.float32)
    err = np.abs(nk.tanh_array(x).astype(np.float64) - np.tanh(x.astype(np.float64)))
    assert err.max() < 5e-7
    p, q, fit_err = nk.fit_tanh_rational(points=4000, iters=30)
    assert fit_err < 1e-7 and len(p) == len(nk.TANH_P) and len(q) == len(nk.TANH_Q)


# --------------------------------------------------------------------------- logits

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "preset, overrides",
    [
        ("tiny", ()),  # global pitch + instrument
        ("small", ()),  # global + local pitch excitation
        ("tiny", ("model.local=mel", "model.local_channels=80")),
        ("tiny", ("model.local=roll", "model.local_channels=128", "model.input=onehot")),
        ("tiny", ("model.head=logistic_mixture",)),
        ("tiny", ("model.head=logistic_mixture", "model.mixture_levels=65536",
                  "model.kernel_size=3")),
        ("tiny", ("model.input=scalar",)),  # the code as its value (a distillation teacher)
        ("tiny", ("model.input=scalar", "model.head=gaussian")),  # ClariNet's teacher
    ],
    ids=["tiny", "small", "tiny-mel", "tiny-roll-onehot", "tiny-mixture", "tiny-mix16-k3",
         "tiny-scalar", "tiny-gaussian"],
)
def test_teacher_forced_logits_match_torch_for_4000_steps(preset, overrides, backend):
    _check_teacher_forced(_model(preset, *overrides), 4000, backend)


@pytest.fixture(scope="module")
def nsynth():
    return _model("nsynth")


@pytest.fixture
def one_numba_thread():
    """Pin numba to one thread (the serial driver) for the test, then restore."""
    import numba

    before, torch_threads = numba.get_num_threads(), torch.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)
    torch.set_num_threads(torch_threads)  # numba's first call may have reset it


@pytest.mark.parametrize("backend", BACKENDS)
def test_nsynth_preset_logits_match_torch(nsynth, backend, one_numba_thread):
    """The 30-layer 512-channel NSynth decoder: 200 steps only (~15 ms a step on one core,
    where the small preset takes ~10 us)."""
    _check_teacher_forced(nsynth, 200, backend, batch=1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("local_channels", [80, 6], ids=["rows", "features-in-kernel"])
def test_single_step_calls_equal_a_teacher_forced_run(backend, local_channels):
    model = _model("tiny", "model.local=mel", f"model.local_channels={local_channels}")
    codes, g, l = _inputs(model.stack, 3, 50)
    engine = FastWaveNet(model.stack, model.head, backend=backend)
    engine.reset(3, g)
    whole, _ = engine.teacher_force(codes, l)
    engine.reset(3, g)
    rows = engine.local_rows(l).reshape(50, 3, -1)
    for t in range(50):
        np.testing.assert_array_equal(engine.step(codes[:, t], rows[t]), whole[t])


@pytest.mark.parametrize("backend", BACKENDS)
def test_prime_leaves_the_state_of_a_forward_pass_even_after_use(backend):
    """prime (the torch pass on numba, kernel steps on C) == forward() on the last receptive
    field, then steps continue it; a second prime on a used state starts afresh."""
    model = _model("tiny", "model.local=mel", "model.local_channels=80")
    rf = model.stack.receptive_field
    codes, g, l = _inputs(model.stack, 2, rf + 40)
    with torch.no_grad():
        ref = model.stack(codes[:, -rf - 8 :], g, l[..., -rf - 8 :])  # [B, P, rf + 8]
    engine = FastWaveNet(model.stack, model.head, backend=backend)
    engine.reset(2, g)
    engine.prime(codes[:, :-8], l[..., :-8])  # used: the next prime must not inherit it
    engine.step(codes[:, -8], engine.local_rows(l[..., -8:-7]).reshape(1, 2, -1)[0])
    first = engine.prime(codes[:, :-8], l[..., :-8])
    np.testing.assert_allclose(first, ref[..., -9].numpy(), atol=TOL, rtol=0)
    rows = engine.local_rows(l[..., -8:]).reshape(8, 2, -1)
    for t in range(8):
        got = engine.step(codes[:, -8 + t], rows[t])
        np.testing.assert_allclose(got, ref[..., -8 + t].numpy(), atol=TOL, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_drivers_agree_serial_batch_and_channel_split(backend, monkeypatch):
    """Threads split streams (or, numba at batch 1, layer columns) without changing results."""
    import numba

    from waveloom.sampling import kernel_engine

    model = _model("tiny", "model.local=mel", "model.local_channels=80")
    codes, g, l = _inputs(model.stack, 4, 300)
    engine = FastWaveNet(model.stack, model.head, backend=backend)
    results = {}
    monkeypatch.setattr(kernel_engine, "CHANNEL_PARALLEL_MIN_MACS", 0)  # let tiny layers split too
    before, torch_threads = numba.get_num_threads(), torch.get_num_threads()
    for threads, batch in ((1, 4), (2, 4), (1, 1), (2, 1)):
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        try:
            engine.reset(batch, None if g is None else g[:batch])
            driver = engine.driver()
            results[threads, batch] = engine.teacher_force(codes[:batch], l[:batch])[0]
        finally:
            numba.set_num_threads(before)
            torch.set_num_threads(torch_threads)
        if threads > 1 and numba.config.NUMBA_NUM_THREADS > 1:
            expected = "batch" if batch > 1 else ("channels" if backend == "numba" else "pipe")
            assert driver == expected
    np.testing.assert_allclose(results[2, 4], results[1, 4], atol=1e-6)
    np.testing.assert_allclose(results[2, 1], results[1, 1], atol=1e-6)
    np.testing.assert_allclose(results[1, 1], results[1, 4][:, :1], atol=1e-6)


@pytest.mark.skipif("c" not in BACKENDS, reason="the two-thread pipeline is the C backend's")
@pytest.mark.parametrize("weights", WEIGHT_KINDS)
@pytest.mark.parametrize("local_channels", [80, 6], ids=["rows", "features-in-kernel"])
def test_two_thread_pipeline_draws_the_one_thread_codes(weights, local_channels, monkeypatch):
    """One stream on two threads (front: convs and residuals; back: skips, end stack, draw)
    gives exactly one thread's codes and parameters, free-running across chunks and calls
    (``final=False`` then a continuation), teacher-forced too, with local conditioning as
    precomputed rows (80 mel bands) or as features the kernel projects (6)."""
    from waveloom.sampling import fast, kernel_engine

    model = _model("tiny", "model.local=mel", f"model.local_channels={local_channels}")
    codes, g, l = _inputs(model.stack, 1, 900)
    u = draw_uniforms(3, 700, 1, 2)
    monkeypatch.setattr(kernel_engine, "CHUNK_WORK", 1 << 20)  # several chunks per call
    out = {}
    for threads in (1, 2):
        monkeypatch.setattr(kernel_engine, "engine_threads", lambda threads=threads: threads)
        engine = FastWaveNet(model.stack, model.head, weights=weights, backend="c")
        engine.race.pin = "pipe" if threads == 2 else None  # not the faster: the pipeline
        engine.reset(1, g)
        engine.prime(codes[:, :200], l[..., :200])
        first = engine.generate(400, u[:400], 0.9, l, 200, final=False)
        second = engine.generate(300, u[400:], 0.9, l, 600)
        engine.reset(1, g)
        forced = engine.teacher_force(codes, l, u[:1].expand(900, 1, 2).clone())
        out[threads] = (engine.driver(), first, second, *forced)
    assert out[2][0] == "pipe" and out[1][0] == "serial"
    assert (engine.prep.kernel_local_w is not None) == (local_channels <= fast.KERNEL_LOCAL_MAX)
    for one, two in zip(out[1][1:], out[2][1:]):
        np.testing.assert_array_equal(one, two)


def test_driver_race_runs_the_faster_and_tries_again_as_the_load_changes():
    """The pipeline loses on a busy core: the race measures both, keeps the faster, and
    tries both again after its interval (doubled while the same one wins)."""
    race = DriverRace(("pipe", "serial"), interval=2, max_interval=4, warmup=1)
    assert race.next() == "serial"  # the first chunk: the safe driver, untimed (cold caches)
    race.record("serial", 4000, 1e6)
    assert race.next() == "pipe" and not race.rates
    speed = {"pipe": 0.4, "serial": 1.0}  # samples per second, relative: one core busy
    ran = []
    for _ in range(12):
        name = race.next()
        ran.append(name)
        race.record(name, 4000, 4000 / speed[name])
    assert ran[:2] == ["pipe", "serial"]  # one trial each
    assert ran.count("pipe") <= 4 and ran[-1] == "serial"
    speed = {"pipe": 1.5, "serial": 1.0}  # the core is free again
    for _ in range(12):
        name = race.next()
        race.record(name, 4000, 4000 / speed[name])
    assert race.choice == "pipe"
    race.record("pipe", 3, 100.0)  # a few steps are not timed
    assert race.rates["pipe"] == 1.5
    busy = DriverRace(("pipe", "serial"), interval=3, warmup=0, busy=True)
    ran = []
    for _ in range(4):
        ran.append(busy.next())
        busy.record(ran[-1], 4000, 1.0)
    assert ran == ["serial"] * 3 + ["pipe"]  # a busy machine starts on one thread


@pytest.mark.parametrize("backend", BACKENDS)
def test_int8_weights_stay_close(backend):
    model = _model("small")
    codes, g, l = _inputs(model.stack, 2, 1000)
    with torch.no_grad():
        ref = model.stack(codes, g, l).permute(2, 0, 1).numpy()
    engine = FastWaveNet(model.stack, model.head, weights="int8", backend=backend)
    engine.reset(2, g)
    params, _ = engine.teacher_force(codes, l)
    assert np.abs(params - ref).max() < 0.05  # ~1e-2 measured on random weights
    assert engine.prep.net.conv_w.dtype == np.int8


@pytest.mark.skipif("c" not in BACKENDS, reason="float16 weights need the C backend")
def test_float16_weights_stay_closer_than_int8_and_numba_refuses_them():
    model = _model("small")
    codes, g, l = _inputs(model.stack, 2, 1000)
    with torch.no_grad():
        ref = model.stack(codes, g, l).permute(2, 0, 1).numpy()
    errors = {}
    for kind in ("float16", "int8"):
        engine = FastWaveNet(model.stack, model.head, weights=kind, backend="c")
        engine.reset(2, g)
        params, _ = engine.teacher_force(codes, l)
        errors[kind] = np.abs(params - ref).max()
        assert engine.prep.net.conv_w.dtype == np.dtype(kind)
    assert errors["float16"] < 2e-3 and errors["float16"] < errors["int8"] / 4, errors
    # the scalar conversion (ISAs without F16C) equals numpy's on every half but NaNs
    lib, _ = cbuild.load()
    lib.wl_half_to_float.restype = ctypes.c_float
    lib.wl_half_to_float.argtypes = [ctypes.c_uint16]
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    expected = bits.view(np.float16).astype(np.float32)
    got = np.array([lib.wl_half_to_float(int(b)) for b in bits], np.float32)
    ok = np.isnan(expected)
    assert np.array_equal(got[~ok], expected[~ok]) and np.isnan(got[ok]).all()
    if "numba" in BACKENDS:
        with pytest.raises(ConfigError, match="C kernel only"):
            FastWaveNet(model.stack, model.head, weights="float16", backend="numba")


# --------------------------------------------------------------------------- sampling

def first_divergence_is_ambiguous(model, n, length, cond, seed, ref, out):
    """Per stream: codes agree up to the first difference, which must be ambiguous."""
    if torch.equal(ref, out):
        return
    plan = model.sampling_plan(n, length, cond, None)
    u = draw_uniforms(seed, length, n, model.head.uniforms_per_step)
    p = plan.prefix.shape[-1]
    for b in range(n):
        diff = (ref[b] != out[b]).nonzero()
        if len(diff) == 0:
            continue
        t = int(diff[0])
        history = torch.cat([plan.prefix[b : b + 1], model.head.input_codes(ref[b : b + 1, :t])], 1)
        g = None if plan.g is None else plan.g[b : b + 1]
        loc = None if plan.local is None else plan.local[b : b + 1, :, 1 : p + t + 1]
        with torch.no_grad():
            params = model.stack(history, g, loc)[..., -1]
        assert _ambiguous(model.head, params, u[t, b : b + 1], 1e-5).all(), (b, t)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "preset, overrides",
    [("tiny", ()), ("small", ()), ("tiny", ("model.local=roll", "model.local_channels=128")),
     ("tiny", ("model.head=logistic_mixture",)),
     ("tiny", ("model.input=scalar", "model.head=gaussian"))],
    ids=["tiny", "small", "tiny-roll", "tiny-mixture", "tiny-gaussian"],
)
def test_seeded_sampling_gives_the_reference_codes(preset, overrides, backend):
    model = _model(preset, *overrides)
    n, length = 3, 1000
    prime = 0.3 * torch.sin(torch.arange(700) / 9.0)  # shorter than the small preset's context
    cond = {k: v for k, v in model.example_batch(n, 700 + length + 256).items() if k != "audio"}
    cond["prime"] = prime
    ref = sample_incremental(model, n, length, cond, seed=11, progress=False)
    out = sample_fast(model, n, length, cond, seed=11, progress=False, backend=backend)
    assert out.dtype == torch.long and out.shape == (n, length)
    first_divergence_is_ambiguous(model, n, length, cond, 11, ref, out)


def test_generate_routes_through_the_engine_and_temperature_matches():
    model = _model("tiny")
    cond = {"pitch": torch.tensor([60, 64]), "instrument": torch.tensor([1, 2])}
    a = sample(model, 2, 400, cond,
               options=SamplingOptions(seed=3, temperature=0.7, progress=False, engine="torch"))
    b = sample(model, 2, 400, cond,
               options=SamplingOptions(seed=3, temperature=0.7, progress=False, engine="fast"))
    c = sample(model, 2, 400, cond,
               options=SamplingOptions(seed=3, temperature=0.7, progress=False))  # auto -> fast
    assert torch.equal(a, b) and torch.equal(b, c)
    assert a.abs().max() <= 1.0


def test_engine_choice_and_errors():
    model = _model("tiny")
    assert resolve_engine("auto", model) == "fast"
    assert resolve_engine("torch", model) == "torch"
    with pytest.raises(ConfigError, match="cuda-graph needs the model on a GPU"):
        resolve_engine("cuda-graph", model)
    with pytest.raises(ConfigError, match="--engine"):
        resolve_engine("turbo", model)
    with pytest.raises(ConfigError, match="needs the fast engine"):
        sample_codes(model, 1, 10, {"pitch": 60}, engine="torch", weights="int8")
    with pytest.raises(ConfigError, match="--threads"):
        set_threads(0)
    before = torch.get_num_threads()
    set_threads(1)  # numba's pool starts first, so torch keeps the count asked for
    assert torch.get_num_threads() == 1
    torch.set_num_threads(before)


def test_packed_engine_is_reused_until_the_weights_change():
    model = _model("tiny")
    a = FastWaveNet.for_model(model)
    assert FastWaveNet.for_model(model) is a
    with torch.no_grad():
        model.stack.out2.bias.add_(1.0)  # an in-place update, as an optimiser step makes
    assert FastWaveNet.for_model(model) is not a


def test_numba_backend_when_c_is_unavailable(monkeypatch):
    monkeypatch.setenv("WAVELOOM_NO_C", "1")
    monkeypatch.setattr(cbuild, "_loaded", {})
    model = _model("tiny")
    assert FastWaveNet(model.stack, model.head).backend == "numba"
    with pytest.raises(ValueError, match="WAVELOOM_NO_C"):
        FastWaveNet(model.stack, model.head, backend="c")


def test_c_panel_layout_round_trips():
    w = np.arange(2 * 5 * 37, dtype=np.float32).reshape(2, 5, 37)
    packed = cbuild.panels(w, 16)
    assert packed.shape == w.shape and sorted(packed.ravel()) == sorted(w.ravel())
    # element (r, c) of panel p (width pw) sits at p*16*R + r*pw + c - 16p
    for m, r, c in ((0, 0, 0), (1, 4, 20), (1, 3, 36), (0, 2, 15)):
        p = c // 16
        pw = min(16, 37 - 16 * p)
        assert packed[m].ravel()[p * 16 * 5 + r * pw + c - 16 * p] == w[m, r, c]


def test_cli_generate_accepts_engine_threads_and_weights(tmp_path):
    from waveloom.checkpoint import save_checkpoint
    from waveloom.cli import main

    run = load_config(CONFIGS / "wavenet" / "tiny.yaml")
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "model.safetensors", build_model(run), run)
    outs = {}
    for engine in ("torch", "fast"):
        outs[engine] = tmp_path / engine
        args = ["generate", str(ckpt), "--out", str(outs[engine]), "--n", "2", "--seconds",
                "0.03", "--pitch", "60", "--engine", engine, "--threads", "1", "-q"]
        assert main(args) == 0
    for wav in sorted(outs["torch"].glob("*.wav")):
        assert wav.read_bytes() == (outs["fast"] / wav.name).read_bytes()
    assert main(["generate", str(ckpt), "--out", str(tmp_path / "q"), "--n", "1", "--seconds",
                 "0.01", "--weights", "int8", "-q"]) == 0
    assert len(list((tmp_path / "q").glob("*.wav"))) == 1
