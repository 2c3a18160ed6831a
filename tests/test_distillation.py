"""Probability density distillation: a scalar-input Gaussian WaveNet teacher, the IAF student's
closed-form Gaussian, the reverse KL, and ``waveloom distill`` end to end on tiny presets."""

from __future__ import annotations

import soundfile as sf
import torch

from waveloom.cli import main
from waveloom.models.load import load_config
from waveloom.models.registry import build_model
from waveloom.nn.iaf import IAFStack, gaussian_kl
from waveloom.nn.wavenet import WaveNetStack
from waveloom.train.objectives.distillation import with_noise

from .conftest import CONFIGS

TEACHER = ["model.head=gaussian", "model.input=scalar", "model.pitch_excitation=true"]


def _student(*overrides: str, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(load_config(CONFIGS / "student" / "tiny.yaml", list(overrides)))


def test_gaussian_kl_is_the_closed_form():
    g = torch.Generator().manual_seed(0)
    mq, mp = torch.randn(50, generator=g), torch.randn(50, generator=g)
    lq, lp = 0.5 * torch.randn(50, generator=g), 0.5 * torch.randn(50, generator=g)
    expected = torch.distributions.kl_divergence(torch.distributions.Normal(mq, lq.exp()),
                                                 torch.distributions.Normal(mp, lp.exp()))
    torch.testing.assert_close(gaussian_kl(mq, lq, mp, lp), expected)
    assert float(gaussian_kl(mq, lq, mq, lq).abs().max()) < 1e-6


def test_scalar_input_reads_codes_as_their_level_and_passes_gradients():
    torch.manual_seed(0)
    stack = WaveNetStack(2, 8, 8, 8, 8, layers_per_stack=3, stacks=1, input="scalar")
    codes = torch.randint(0, 256, (2, 40))
    values = codes.float() * (2.0 / 255.0) - 1.0
    torch.testing.assert_close(stack(codes), stack(values))
    x = values.clone().requires_grad_(True)
    fast = torch.autograd.grad(stack(x).square().sum(), x)[0]
    ref = torch.autograd.grad(stack(x, reference=True).square().sum(), x)[0]
    torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-6)
    assert float(fast.abs().sum()) > 0


def test_iaf_sample_is_gaussian_given_its_past():
    """x = z S + M exactly, and M_t, S_t depend on z_<t only (so q(x_t | x_<t) is N(M_t, S_t^2)),
    while x_t moves with z_t."""
    torch.manual_seed(0)
    flows = IAFStack([WaveNetStack(2, 8, 8, 8, 8, layers_per_stack=3, stacks=1,
                                   input="scalar") for _ in range(3)])
    for stack in flows.flows:  # away from the near-identity start, so the test has teeth
        torch.nn.init.normal_(stack.out2.weight, std=0.3)
    z = torch.randn(2, 64)
    with torch.no_grad():
        x, mean, log_scale = flows(z)
    torch.testing.assert_close(x, z * log_scale.exp() + mean)
    t0 = 30
    z2 = z.clone()
    z2[:, t0] += 1.0
    with torch.no_grad():
        x2, mean2, log_scale2 = flows(z2)
    torch.testing.assert_close(mean2[:, : t0 + 1], mean[:, : t0 + 1])
    torch.testing.assert_close(log_scale2[:, : t0 + 1], log_scale[:, : t0 + 1])
    torch.testing.assert_close(x2[:, :t0], x[:, :t0])
    assert float((x2[:, t0] - x[:, t0]).abs().min()) > 0
    assert float((mean2[:, t0 + 1 :] - mean[:, t0 + 1 :]).abs().max()) > 0


def test_chunked_flows_equal_the_whole_clip():
    """Generation runs each flow span by span with its receptive field of context: the same
    sample as one pass over the clip, at a span's memory."""
    torch.manual_seed(0)
    flows = IAFStack([WaveNetStack(2, 8, 8, 8, 8, layers_per_stack=4, stacks=1,
                                   input="scalar", local_channels=2) for _ in range(2)])
    for stack in flows.flows:
        torch.nn.init.normal_(stack.out2.weight, std=0.3)
    z, l = torch.randn(2, 300), torch.randn(2, 2, 300)
    with torch.no_grad():
        whole = flows(z, None, l)
        spans = flows(z, None, l, chunk=37)
    for a, b in zip(whole, spans):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_student_loss_trains_the_flows_through_the_teacher():
    model = _student("model.power_weight=0", "model.log_scale_weight=0").train()
    batch = with_noise(model.example_batch(2, model.context + 128), seed=3)
    losses = model.loss(batch)
    assert {"kl", "log_scale_gap", "power"} <= set(losses)
    losses["loss"].backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert sum(float(p.grad.abs().sum()) for p in model.iaf.parameters()
               if p.grad is not None) > 0
    # the teacher's Gaussian moves with the student's samples: the gradient path the KL needs
    x = (0.1 * torch.randn(2, model.context + 64)).requires_grad_(True)
    mean_p, _ = model.teacher.predictive_gaussian({**batch, "audio": x})
    assert float(torch.autograd.grad(mean_p.sum(), x)[0].abs().sum()) > 0


def test_noise_is_seeded_by_step():
    batch = {"audio": torch.zeros(2, 100)}
    assert torch.equal(with_noise(batch, 5)["noise"], with_noise(batch, 5)["noise"])
    assert not torch.equal(with_noise(batch, 5)["noise"], with_noise(batch, 6)["noise"])


def test_student_generates_in_one_pass_seeded():
    from waveloom.config import SamplingOptions
    from waveloom.sampling.sample import sample

    model = _student().eval()
    opts = SamplingOptions(seed=4, progress=False)
    a = sample(model, 2, 400, {"pitch": [60, 64], "instrument": 1}, options=opts)
    b = sample(model, 2, 400, {"pitch": [60, 64], "instrument": 1}, options=opts)
    assert a.shape == (2, 400) and torch.equal(a, b) and float(a.abs().max()) <= 1.0


def test_distill_verb_end_to_end(notes_cache, tmp_path, capsys):
    """Train a tiny teacher, distil it for a few steps, generate from the student; a teacher
    that is not a Gaussian scalar-input WaveNet and a missing one are one-line errors."""
    teacher_run = tmp_path / "teacher"
    assert main(["train", str(CONFIGS / "wavenet" / "tiny.yaml"), *TEACHER, "--data",
                 str(notes_cache), "--out", str(teacher_run), "--max-steps", "3", "-q"]) == 0
    teacher = teacher_run / "model.safetensors"
    run = tmp_path / "student"
    assert main(["distill", str(teacher), "--config", str(CONFIGS / "student" / "tiny.yaml"),
                 "--data", str(notes_cache), "--out", str(run), "--max-steps", "3", "-q"]) == 0
    out = tmp_path / "gen"
    assert main(["generate", str(run / "model.safetensors"), "--pitch", "60", "--seconds",
                 "0.1", "--n", "2", "--out", str(out), "-q"]) == 0
    wavs = sorted(out.glob("*.wav"))
    assert len(wavs) == 2 and sf.info(str(wavs[0])).frames == 1600
    capsys.readouterr()

    plain = tmp_path / "plain"
    assert main(["train", str(CONFIGS / "wavenet" / "tiny.yaml"), "--data", str(notes_cache),
                 "--out", str(plain), "--max-steps", "1", "-q"]) == 0
    for ckpt, needle in ((plain / "model.safetensors", "model.head=gaussian model.input=scalar"),
                         (tmp_path / "nope.safetensors", "no such teacher checkpoint")):
        assert main(["distill", str(ckpt), "--config", str(CONFIGS / "student" / "tiny.yaml"),
                     "--data", str(notes_cache), "--out", str(tmp_path / "x"), "-q"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and needle in err
