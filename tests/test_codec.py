"""The codec family (issue #24): frame rate and bandwidths, causality (what streaming needs),
the loss balancer's shares, eval purity of the residual VQ, one-line errors, and training
through the trainer."""

from __future__ import annotations

import math

import pytest
import torch

from waveloom.errors import ConfigError
from waveloom.models.load import load_config
from waveloom.models.registry import build_model
from waveloom.nn.codec_losses import LossBalancer

from .conftest import CONFIGS


def _model(preset: str = "tiny", *overrides: str):
    run = load_config(CONFIGS / "codec" / f"{preset}.yaml", list(overrides))
    torch.manual_seed(0)
    return run, build_model(run)


def test_small_runs_at_50_hz_and_serves_half_kbps_steps_up_to_6():
    _, model = _model("small")
    model.eval()
    assert model.hop == 320 and model.config.frame_rate == 50.0
    assert model.config.bandwidths() == [0.5 * k for k in range(1, 13)]
    assert model.codebooks_for(1.5) == 3 and model.codebooks_for(6) == 12
    codes = model.encode(torch.randn(16000) * 0.1, bandwidth=3.0)
    assert codes.shape == (1, 6, 50) and codes.dtype == torch.int64
    with pytest.raises(ConfigError, match="serves 0.5, 1, 1.5") as err:
        model.codebooks_for(7.0)
    assert "\n" not in str(err.value)


def test_encoder_and_decoder_are_causal():
    """Frame j depends on samples before (j + 1) * hop only; a decoded sample on codes up
    to its own frame: chunked streaming can then equal offline."""
    _, model = _model()
    hop, x = model.hop, torch.randn(1, 1, 40 * model.hop) * 0.1
    with torch.no_grad():  # one training pass: k-means fills the codebooks (zeros until then)
        model.generator.quantize(model.generator.encoder(torch.randn(4, 1, 64 * hop) * 0.1))
    model.eval()
    y = x.clone()
    y[..., 20 * hop:] = torch.randn(1, 1, 20 * hop)
    with torch.no_grad():
        a, b = model.generator.encoder(x), model.generator.encoder(y)
    assert torch.equal(a[..., :20], b[..., :20]) and not torch.equal(a, b)
    codes = model.encode(x[0])
    other = codes.clone()
    other[..., 25:] = (other[..., 25:] + 1) % model.config.codebook_size
    da, db = model.decode(codes), model.decode(other)
    assert torch.equal(da[..., : 25 * hop], db[..., : 25 * hop]) and not torch.equal(da, db)


def test_eval_never_changes_the_model_and_fewer_codebooks_decode():
    _, model = _model()
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    audio = torch.randn(2, 512) * 0.1
    full, three = model.encode(audio), model.encode(audio, bandwidth=model.config.bandwidths()[2])
    assert torch.equal(full[:, :3], three)
    assert model.decode(three).shape == (2, 512)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_bad_codes_are_one_line():
    _, model = _model()
    model.eval()
    with pytest.raises(ConfigError, match="reads"):
        model.decode(torch.zeros(1, 5, 4, dtype=torch.long))  # 5 > n_q = 4
    with pytest.raises(ConfigError, match="another codec"):
        model.decode(torch.full((1, 2, 4), 99))
    with pytest.raises(ConfigError, match="model.strides"):
        _model("tiny", "model.strides=[3,7]")


def test_balancer_gives_each_loss_its_share_of_the_update():
    balancer = LossBalancer({"a": 1.0, "b": 3.0})
    y = torch.randn(4, 10, requires_grad=True)
    losses = {"a": 100.0 * y.sum(), "b": (y ** 2).sum()}
    total = balancer.surrogate(losses, y)
    total.backward()
    ga = torch.full_like(y, 100.0)
    gb = 2 * y.detach()
    expected = 0.25 * ga / ga.norm() + 0.75 * gb / gb.norm()
    assert torch.allclose(y.grad, expected, atol=1e-6)
    value = float(total.detach())
    assert math.isclose(value, float(0.25 * losses["a"] + 0.75 * losses["b"]), rel_tol=1e-5)


def test_balancer_balances_a_subset_and_starts_the_others_fresh():
    """A warm-up passes only the reconstruction losses: they get their own shares of the update
    and the absent losses' norms stay unmeasured, so they start from their own first gradient."""
    balancer = LossBalancer({"a": 1.0, "b": 3.0})
    y = torch.randn(4, 10, requires_grad=True)
    balancer.surrogate({"a": 100.0 * y.sum()}, y).backward()
    ga = torch.full_like(y, 100.0)
    assert torch.allclose(y.grad, 0.25 * ga / ga.norm(), atol=1e-6)
    assert float(balancer.norms[1]) == 0.0
    y.grad = None
    balancer.surrogate({"a": 100.0 * y.sum(), "b": (y ** 2).sum()}, y).backward()
    assert float(balancer.norms[1]) == pytest.approx(float((2 * y.detach()).norm()), rel=1e-5)


def test_a_warm_up_trains_the_codec_on_reconstruction_first(notes_cache, tmp_path):
    """model.adversarial_start: the first steps use time + mel alone (it was a TypeError)."""
    from waveloom.train.trainer import train

    _, model = _model("tiny")
    model.train()
    warm = model.generator_loss(model.example_batch(2, 2048), adversarial=False)
    assert "adv" not in warm and set(warm) >= {"time", "mel", "reconstruction", "commit"}
    run = load_config(CONFIGS / "codec" / "tiny.yaml",
                      ["train.max_steps=3", "model.adversarial_start=2"])
    result = train(run, notes_cache, tmp_path / "warm", progress=False)
    assert result.step == 3 and math.isfinite(result.last_loss)


def test_trains_through_the_trainer(notes_cache, tmp_path):
    from waveloom.train.trainer import train

    run = load_config(CONFIGS / "codec" / "tiny.yaml",
                      ["train.max_steps=3", "model.quantizer_dropout=false"])
    result = train(run, notes_cache, tmp_path / "run", progress=False)
    assert result.step == 3 and math.isfinite(result.last_loss)
    from waveloom.models.load import load_checkpoint

    model, _ = load_checkpoint(tmp_path / "run" / "model.safetensors")
    flags = [bool(m.initted) for m in model.generator.quantizer.modules() if hasattr(m, "initted")]
    assert flags and all(flags), "k-means initialised every codebook on the first batch"


def test_streaming_in_chunks_equals_offline():
    from waveloom.models.codec import CodecStream

    _, model = _model()
    hop = model.hop
    with torch.no_grad():
        model.generator.quantize(model.generator.encoder(torch.randn(4, 1, 64 * hop) * 0.1))
    model.eval()
    audio = torch.randn(2, 90 * hop) * 0.1
    offline = model.encode(audio)
    stream = CodecStream(model)
    cuts = [0, 7 * hop, 8 * hop, 40 * hop, 90 * hop]  # chunks of 7, 1, 32 and 50 frames
    chunks = [stream.encode(audio[:, a:b]) for a, b in zip(cuts, cuts[1:])]
    assert torch.equal(torch.cat(chunks, -1), offline)
    stream = CodecStream(model)
    frames = [0, 3, 4, 50, 90]
    pieces = [stream.decode(offline[..., a:b]) for a, b in zip(frames, frames[1:])]
    assert torch.allclose(torch.cat(pieces, -1), model.decode(offline), atol=1e-6)
    with pytest.raises(ConfigError, match="multiple of"):
        CodecStream(model).encode(audio[:, : hop + 1])


def test_encode_and_decode_verbs_write_int16_codes_and_refuse_another_codecs(tmp_path, capsys):
    """`waveloom encode CODEC --bandwidth` writes int16 [k, frames] + a sidecar; `decode`
    plays them back, and refuses codes written by another codec in one line."""
    import json

    import numpy as np
    import soundfile as sf

    from waveloom.checkpoint import save_checkpoint
    from waveloom.cli import main

    run, model = _model()
    with torch.no_grad():
        model.generator.quantize(model.generator.encoder(torch.randn(4, 1, 512) * 0.1))
    ckpt = save_checkpoint(tmp_path / "codec.safetensors", model, run)
    torch.manual_seed(1)
    other = save_checkpoint(tmp_path / "other.safetensors", build_model(run), run)
    sf.write(tmp_path / "a.wav", np.random.default_rng(0).normal(0, 0.1, 4000), 16000)
    bw = model.config.bandwidths()[1]
    assert main(["encode", str(ckpt), str(tmp_path / "a.wav"), "--out", str(tmp_path / "z"),
                 "--bandwidth", str(bw)]) == 0
    codes = np.load(tmp_path / "z" / "a.npy")
    assert codes.dtype == np.int16 and codes.shape == (2, 500)
    assert json.loads((tmp_path / "z" / "a.json").read_text())["codebooks"] == 2
    assert main(["decode", str(ckpt), str(tmp_path / "z" / "a.npy"), "--out",
                 str(tmp_path / "y")]) == 0
    assert sf.info(str(tmp_path / "y" / "a.wav")).frames == 4000
    capsys.readouterr()
    assert main(["decode", str(other), str(tmp_path / "z" / "a.npy"), "--out",
                 str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert "another codec" in err and err.count("\n") == 1
    assert main(["encode", str(ckpt), str(tmp_path / "a.wav"), "--out", str(tmp_path / "z"),
                 "--bandwidth", "99"]) == 2
    assert "serves" in capsys.readouterr().err


def test_a_batch_too_small_for_the_dead_code_threshold_is_warned():
    """4 x 25 frames for 1024 entries: every entry would be 'dead' at every step (measured on
    the first CPU run: commitment 0, eleven collapsed codebooks)."""
    import warnings

    _, model = _model()
    model.train()
    model.config.dead_code_threshold = 2.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fake_sample({"audio": torch.randn(1, 16 * model.hop) * 0.1}, None)  # 1 use each
    assert any("dead_code_threshold" in str(w.message) for w in caught)


def test_latent_bound_keeps_the_encoder_causal_and_bounded():
    """model.latent_bound > 0: |latent| < bound and frame j still reads samples before
    (j + 1) x hop only."""
    _, model = _model("tiny", "model.latent_bound=0.5")
    enc = model.generator.encoder
    x = torch.randn(1, 1, 32 * model.hop) * 10
    z = enc(x)
    assert z.abs().max() < 0.5
    y = x.clone()
    y[..., 20 * model.hop:] = 0
    assert torch.allclose(enc(y)[..., :20], z[..., :20])


def test_dac_codebooks_look_up_in_a_normalised_projection():
    """``codebook_dim`` + ``cosine_codes`` (DAC): the latents are projected to
    ``codebook_dim`` and every codebook entry is a unit vector (lookup by direction), and the
    model still encodes and decodes at every bitrate."""
    _, model = _model("tiny", "model.codebook_dim=4", "model.cosine_codes=true")
    rvq, hop = model.generator.quantizer, model.hop
    assert rvq.project_in.out_features == 4 and rvq.project_in.in_features == 16
    with torch.no_grad():  # one training pass initialises the codebooks
        model.generator.quantize(model.generator.encoder(torch.randn(4, 1, 64 * hop) * 0.1))
    assert bool(rvq.layers[0]._codebook.initted)  # (quantizer dropout may skip the others)
    for layer in rvq.layers:
        embed = layer._codebook.embed
        assert embed.shape[-1] == 4
        if bool(layer._codebook.initted):
            assert torch.allclose(embed.norm(dim=-1), torch.ones(()), atol=1e-5)
    model.eval()
    codes = model.encode(torch.randn(2, 16 * hop) * 0.1)
    assert codes.shape == (2, 4, 16) and int(codes.max()) < 16
    assert model.decode(codes).shape == (2, 16 * hop)
    with pytest.raises(ConfigError, match="codebook_dim"):
        _model("tiny", "model.codebook_dim=99")


@pytest.mark.parametrize("overrides", [(), ("model.codebook_dim=4",),
                                       ("model.codebook_dim=4", "model.cosine_codes=true"),
                                       ("model.codebook_dim=4",
                                        "model.per_codebook_projection=true")])
def test_a_decode_only_codec_decodes_exactly_as_the_full_one(overrides):
    """decode_only(): the same state dict loads strictly into the lookup quantizer, whose
    decodes equal ResidualVQ's at every bitrate (and its fingerprint too); it refuses to
    encode with a clear line."""
    from waveloom.app._codec_io import fingerprint
    from waveloom.models.codec import decode_only
    from waveloom.nn.rvq_lookup import RVQLookup

    run, model = _model("tiny", *overrides)
    hop = model.hop
    with torch.no_grad():  # training passes initialise every codebook
        for _ in range(3):
            model.generator.quantize(model.generator.encoder(torch.randn(8, 1, 64 * hop) * 0.1))
    model.eval()
    with decode_only():
        light = build_model(run)
    assert isinstance(light.generator.quantizer, RVQLookup)
    light.load_state_dict(model.state_dict(), strict=True)
    light.eval()
    assert fingerprint(light) == fingerprint(model)
    codes = model.encode(torch.randn(2, 12 * hop) * 0.1)
    for k in range(1, codes.shape[1] + 1):
        torch.testing.assert_close(light.decode(codes[:, :k]), model.decode(codes[:, :k]),
                                   atol=1e-6, rtol=1e-5)
    with pytest.raises(ConfigError, match="decode only"):
        light.encode(torch.randn(1, 4 * hop))
    with decode_only():
        pass
    assert not isinstance(build_model(run).generator.quantizer, RVQLookup)  # scope ends


def _rank(latents: torch.Tensor) -> int:
    """Linear rank of a set of latent vectors [..., dim] (bias included as a direction)."""
    return int(torch.linalg.matrix_rank(latents.reshape(-1, latents.shape[-1]), atol=1e-4))


def test_per_codebook_projections_let_later_codebooks_add_dimensions():
    """ResidualVQ's shared projection keeps every decode in a rank-(codebook_dim + 1) set
    however many codebooks are summed (why the CPU codec is bitrate-blind); DAC's projection
    per codebook lets each codebook add its own directions. Quantizer dropout keeps a seeded
    number of codebooks per training batch (later codes -1), and eval keeps them all."""
    decodes = {}
    for per in (False, True):
        _, model = _model("tiny", "model.codebook_dim=4",
                          f"model.per_codebook_projection={str(per).lower()}")
        rvq, hop = model.generator.quantizer, model.hop
        with torch.no_grad():  # training passes (with dropout) until k-means filled them all
            while not all(bool(m.initted) for m in rvq.modules() if hasattr(m, "initted")):
                model.generator.quantize(
                    model.generator.encoder(torch.randn(8, 1, 64 * hop) * 0.1))
        codes = torch.randint(0, 16, (1, 256, 4))
        with torch.no_grad():
            decodes[per] = [_rank(rvq.get_output_from_indices(codes[..., :k])) for k in (1, 4)]
    assert decodes[False][1] <= 5 and decodes[True][0] <= 5
    assert decodes[True][1] >= 12  # 16-dim latents, four 4-dim codebooks
    _, model = _model("tiny", "model.codebook_dim=4", "model.per_codebook_projection=true")
    gen, hop = model.generator, model.hop
    x = gen.encoder(torch.randn(2, 1, 32 * hop) * 0.1)
    kept = []
    for seed in (0, 0, 1, 2, 3):
        torch.manual_seed(seed)
        codes = gen.quantize(x)[1]
        used = int((codes[:, :, 0] >= 0).sum(1).min())  # [B, n_q, F]: codebooks coded
        assert bool((codes[:, used:] == -1).all()) and bool((codes[:, :used] >= 0).all())
        kept.append(used)
    assert kept[0] == kept[1] and len(set(kept)) > 1
    model.eval()
    assert bool((model.encode(torch.randn(1, 16 * hop) * 0.1) >= 0).all())
    with pytest.raises(ConfigError, match="per_codebook_projection needs"):
        _model("tiny", "model.per_codebook_projection=true")


def test_per_codebook_layers_learn_to_decode_what_they_code():
    """FactorizedRVQ's decode term: trained on latents alone (100 Adam steps), each layer's
    output comes to approximate the residual it coded, so the relative error falls with every
    codebook kept; without the term the projections never learn to decode (error stays near
    1 or above). Untrained, each layer already projects onto its own subspace (error < 1)."""
    from waveloom.nn.factorized_rvq import FactorizedRVQ

    errors = {}
    for weight in (0.0, 1.0):
        torch.manual_seed(0)
        rvq = FactorizedRVQ(16, 4, 32, 4, quantize_dropout=False, residual_weight=weight,
                            kmeans_init=True, kmeans_iters=10, decay=0.9,
                            threshold_ema_dead_code=0.0)
        mix = torch.randn(16, 16) * torch.linspace(1, 0.1, 16)  # latents of falling spread
        opt = torch.optim.Adam(rvq.parameters(), 1e-2)
        for _ in range(100):
            losses = rvq((torch.randn(256, 16) @ mix.T)[None])[2]
            opt.zero_grad()
            losses.sum().backward()
            opt.step()
        rvq.eval()
        x = torch.randn(512, 16) @ mix.T
        with torch.no_grad():
            levels = rvq.get_codes_from_indices(rvq(x[None])[1])[:, 0]
        errors[weight] = [float((x - levels[:k].sum(0)).norm() / x.norm()) for k in (1, 2, 4)]
    torch.manual_seed(0)  # untrained, each layer starts as a projection onto its subspace
    fresh = FactorizedRVQ(16, 4, 32, 4, quantize_dropout=False, kmeans_init=True)
    x = torch.randn(1024, 16) @ mix.T
    with torch.no_grad():
        fresh(x[None])  # k-means initialisation
        levels = fresh.eval().get_codes_from_indices(fresh(x[None])[1])[:, 0]
    start = [float((x - levels[:k].sum(0)).norm() / x.norm()) for k in (1, 2, 4)]
    assert start[0] > start[1] > start[2] and start[0] < 1
    assert errors[1.0][0] > errors[1.0][1] > errors[1.0][2] and errors[1.0][2] < 0.5
    assert min(errors[0.0]) > 0.9
    rvq.train()  # a loss downstream of the output reaches project_in, never project_out
    rvq.zero_grad()
    x = torch.randn(1, 64, 16, requires_grad=True)
    rvq(x)[0].pow(2).sum().backward()
    layer = rvq.layers[0]
    assert layer.project_out.weight.grad is None
    assert float(layer.project_in.weight.grad.abs().sum()) > 0 and float(x.grad.abs().sum()) > 0


def test_a_decode_only_codec_load_imports_no_vector_quantize_pytorch(tmp_path):
    """The point of decode_only: loading a codec checkpoint for decoding leaves
    vector-quantize-pytorch (and einx, torch._dynamo) unimported."""
    from waveloom.checkpoint import save_checkpoint

    from .conftest import python_output

    run, model = _model("tiny")
    save_checkpoint(tmp_path / "codec.safetensors", model, run)
    path = str(tmp_path / "codec.safetensors")
    code = ("import sys\nimport torch\nfrom waveloom.models.codec import decode_only\n"
            "from waveloom.models.load import load_checkpoint\n"
            f"with decode_only():\n    m, _ = load_checkpoint({path!r})\n"
            "m.eval().decode(torch.zeros(1, 2, 3, dtype=torch.long))\n"
            "print('vector_quantize_pytorch' in sys.modules, 'einx' in sys.modules)\n")
    assert python_output(code) == "False False"
