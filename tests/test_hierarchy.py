"""Hierarchical WaveNets (issue 6): discrete bottlenecks, ADA levels, the code prior, top-down
sampling through a manifest, the encode-codes verb, and their one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from waveloom.checkpoint import save_checkpoint
from waveloom.cli import main
from waveloom.config import SamplingOptions
from waveloom.errors import CheckpointError, ConfigError, DataError
from waveloom.models.codes import codes_to_samples, tokens_from_samples
from waveloom.models.load import load_config
from waveloom.models.registry import build_model
from waveloom.nn.quantize import ArgmaxQuantizer, VectorQuantizer, perplexity
from waveloom.sampling.autoregressive import decode_steps, sample_tokens
from waveloom.sampling.hierarchy import Hierarchy, load_hierarchy, write_manifest
from waveloom.sampling.sample import decode, sample

from .conftest import CONFIGS

# ----------------------------------------------------------------------------- quantizers


def test_perplexity_of_known_histograms():
    assert perplexity(torch.tensor([0, 1, 2, 3] * 5), 8).item() == pytest.approx(4.0)
    assert perplexity(torch.zeros(10, dtype=torch.long), 8).item() == pytest.approx(1.0)
    assert perplexity(torch.arange(8).repeat(3), 8).item() == pytest.approx(8.0)


@pytest.mark.parametrize("kind", ["vqvae", "amae"])
def test_quantizer_output_shapes_and_embed(kind):
    torch.manual_seed(0)
    q = VectorQuantizer(6, 4, 16) if kind == "vqvae" else ArgmaxQuantizer(16, 4)
    q.eval()
    out = q(torch.randn(3, q.in_channels, 7))
    assert out.codes.shape == (3, 7) and out.codes.dtype == torch.long
    assert out.quantized.shape == (3, 4, 7)
    assert 0 <= int(out.codes.min()) and int(out.codes.max()) < 16
    # embed(codes) is exactly what the decoder saw
    torch.testing.assert_close(q.embed(out.codes), out.quantized, rtol=1e-5, atol=1e-6)
    assert set(out.stats) == {"perplexity", "used_codes", "dead_codes"}
    assert out.losses == {}  # auxiliary losses only in training


def test_vq_straight_through_gradient_is_identity():
    torch.manual_seed(0)
    q = VectorQuantizer(4, 4, 8, commitment_weight=0.0, dead_code_threshold=0.0)
    q.train()  # (the library only builds the straight-through graph in training)
    z = torch.randn(2, 4, 5, requires_grad=True)
    w = torch.randn(2, 4, 5)
    (q(z).quantized * w).sum().backward()
    torch.testing.assert_close(z.grad, w)


def test_amae_straight_through_gradient_reaches_scores():
    torch.manual_seed(0)
    q = ArgmaxQuantizer(8, 3, diversity_weight=0.0)
    s = torch.rand(2, 8, 5, requires_grad=True)  # positive: relu is the identity here
    out = q(s)
    # forward: exactly the embedding column of the argmax
    e = q.embedding.weight[:, :, 0]
    torch.testing.assert_close(out.quantized, e[:, s.argmax(1)].movedim(0, 1))
    w = torch.randn_like(out.quantized)
    (out.quantized * w).sum().backward()
    # backward: as if the decoder had seen E q with q = s / sum(s)
    s2 = s.detach().clone().requires_grad_(True)
    qn = s2 / (s2.sum(1, keepdim=True) + q.eps)
    (torch.einsum("dk,bkf->bdf", e.detach(), qn) * w).sum().backward()
    torch.testing.assert_close(s.grad, s2.grad)


def test_amae_diversity_loss_values():
    q = ArgmaxQuantizer(4, 2)
    uniform = torch.full((2, 4, 3), 0.25)
    assert q.diversity_loss(uniform).item() == pytest.approx(0.0)
    collapsed = torch.zeros(2, 4, 3)
    collapsed[:, 0] = 1.0  # every frame on code 0: K*mean - 1 = [3, -1, -1, -1]
    assert q.diversity_loss(collapsed).item() == pytest.approx(12.0)
    q.train()
    out = q(torch.rand(2, 4, 3, requires_grad=True))
    assert set(out.losses) == {"diversity"} and out.losses["diversity"].requires_grad


def test_vq_ema_moves_used_code_towards_data():
    torch.manual_seed(0)
    q = VectorQuantizer(2, 2, 4, decay=0.5, dead_code_threshold=0.0)
    q.train()
    target = torch.tensor([3.0, -2.0])
    x = target[None, :, None] + 0.01 * torch.randn(8, 2, 16)
    initial = q.codebook.detach().clone()
    code = int(q(x).codes[0, 0])
    before = (initial[code] - target).norm().item()  # the code as initialised, before any step
    for _ in range(5):
        q(x)
    after = (q.codebook[code] - target).norm().item()
    assert after < 0.1 * before


def test_vq_dead_codes_are_revived_from_the_batch():
    torch.manual_seed(0)
    q = VectorQuantizer(2, 2, 8, decay=0.9, dead_code_threshold=2.0)
    with torch.no_grad():  # every code far from the data but one
        q.vq._codebook.embed.fill_(100.0)
        q.vq._codebook.embed[0, 0] = torch.tensor([1.0, 1.0])
    q.train()
    x = torch.randn(4, 2, 64) + 1.0
    for _ in range(3):
        out = q(x)
    assert (q.codebook.abs() < 50).all(), "unused codes were not re-seeded from the batch"
    assert out.stats["used_codes"].item() > 1


# ----------------------------------------------------------------------------- models


def _tiny(family, *overrides):
    run = load_config(CONFIGS / family / "tiny.yaml", list(overrides))
    torch.manual_seed(0)
    return run, build_model(run).eval()


CODE_LEVEL = ("model.input=codes", "model.input_codebook=16", "data.sample_rate=2000")


def test_code_cache_representation_round_trips():
    codes = torch.tensor([[0, 5, 15]])
    samples = codes_to_samples(codes)
    assert samples.abs().max() <= 1.0
    padded = torch.cat([torch.zeros(1, 2), samples], 1)
    assert tokens_from_samples(padded, 16).tolist() == [[16, 16, 0, 5, 15]]
    with pytest.raises(DataError, match="codebook size"):
        tokens_from_samples(codes_to_samples(torch.tensor([[20]])), 16)


@pytest.mark.parametrize("overrides", [(), CODE_LEVEL, ("model.bottleneck=amae",)])
def test_ada_decoder_is_causal_given_codes(overrides):
    _, model = _tiny("ada", *overrides)
    g = torch.Generator().manual_seed(0)
    levels = model.head.num_params
    tokens = torch.randint(0, levels, (2, 64), generator=g)
    codes = torch.randint(0, model.codebook_size, (2, 8), generator=g)
    with torch.no_grad():
        base = model.decoder_params(tokens, codes)
        t0 = 40
        moved = tokens.clone()
        moved[:, t0:] = (moved[:, t0:] + 7) % levels
        after = model.decoder_params(moved, codes)
        assert torch.equal(base[..., : t0 + 1], after[..., : t0 + 1])
        assert not torch.equal(base[..., t0 + 1 :], after[..., t0 + 1 :])
        frame = 3  # a later code frame changes nothing before its first step
        c2 = codes.clone()
        c2[:, frame:] = (c2[:, frame:] + 1) % model.codebook_size
        after = model.decoder_params(tokens, c2)
        assert torch.equal(base[..., : frame * model.hop], after[..., : frame * model.hop])
        assert not torch.equal(base, after)


def test_ada_loss_logs_codebook_usage():
    _, model = _tiny("ada")
    model.train()
    losses = model.loss(model.example_batch(2, model.context + 128))
    for key in ("loss", "nll", "commitment", "perplexity", "dead_codes", "used_codes"):
        assert key in losses and torch.isfinite(losses[key])
    assert 1.0 <= losses["perplexity"].item() <= 16.0


def _hierarchy():
    _, l1 = _tiny("ada")
    _, l2 = _tiny("ada", *CODE_LEVEL)
    _, prior = _tiny("code_prior")
    return Hierarchy(prior, [l2, l1], 16000)


def test_top_down_sampling_equals_the_levels_own_samplers():
    h = _hierarchy()
    prior, (l2, l1) = h.prior, h.levels
    cond = {"instrument": torch.tensor([1, 2])}
    length = 300  # not a multiple of the total hop (64): the last level is cropped
    audio, trace = h.generate(2, length, cond, SamplingOptions(seed=5, progress=False),
                              return_codes=True)
    assert audio.shape == (2, length) and audio.abs().max() <= 1.0
    assert torch.equal(audio, sample(h, 2, length, cond, SamplingOptions(seed=5, progress=False)))
    frames = -(-length // 64)
    top = sample_tokens(prior, 2, frames, cond, SamplingOptions(seed=5, progress=False))
    mid = decode_steps(l2, top, frames * 8, SamplingOptions(seed=6, progress=False))
    wave = decode(l1, mid, None, length, SamplingOptions(seed=7, progress=False))
    assert torch.equal(trace[0], top) and torch.equal(trace[1], mid)
    assert torch.equal(audio, wave)
    # the fast engine (auto on a CPU) and the plain torch reference agree on the code levels
    slow = decode_steps(l2, top, frames * 8, SamplingOptions(seed=6, progress=False,
                                                             engine="torch"))
    assert (slow == mid).float().mean() > 0.99
    slow_top = sample_tokens(prior, 2, frames, cond, SamplingOptions(seed=5, progress=False,
                                                                     engine="torch"))
    assert (slow_top == top).float().mean() > 0.99


def _save_tiny_hierarchy(root):
    paths = {}
    for name, family, overrides in (("l1", "ada", ()), ("l2", "ada", CODE_LEVEL),
                                    ("prior", "code_prior", ())):
        run, model = _tiny(family, *overrides)
        paths[name] = save_checkpoint(root / name / "model.safetensors", model, run)
    manifest = write_manifest(root / "h.json", paths["prior"], [paths["l2"], paths["l1"]])
    return manifest, paths


def test_manifest_round_trip_and_cli_generate_subprocess(tmp_path):
    manifest, _ = _save_tiny_hierarchy(tmp_path)
    data = json.loads(manifest.read_text())
    assert data["levels"] == ["l2/model.safetensors", "l1/model.safetensors"]
    h = load_hierarchy(manifest)
    assert h.total_hop == 64 and h.sample_rate == 16000
    out = tmp_path / "gen"
    proc = subprocess.run(
        [sys.executable, "-m", "waveloom.cli", "generate", str(manifest), "--out", str(out),
         "--n", "1", "--seconds", "0.05", "--instrument", "1", "--threads", "1"],
        capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "[1/3] prior" in proc.stderr and "[3/3] level 1" in proc.stderr
    audio, sr = sf.read(out / "sample-0.wav")
    assert sr == 16000 and len(audio) == 800


def test_encode_codes_makes_a_cache_the_next_level_trains_on(tmp_path):
    from waveloom.app.codes import encode_example
    from waveloom.data.cache import AudioCache
    from waveloom.data.prepare import prepare

    src = tmp_path / "wavs"
    src.mkdir()
    t = np.arange(3000) / 16000
    for i, f in enumerate((220.0, 330.0)):
        sf.write(src / f"tone{i}.wav", 0.5 * np.sin(2 * np.pi * f * t), 16000)
    prepare(src, tmp_path / "cache", sample_rate=16000, progress=False)
    _, paths = _save_tiny_hierarchy(tmp_path)
    assert main(["encode-codes", str(paths["l1"]), "--data", str(tmp_path / "cache"),
                 "--out", str(tmp_path / "codes"), "-q"]) == 0
    codes = AudioCache(tmp_path / "codes")
    assert codes.sample_rate == 2000 and codes.info["codes"]["codebook_size"] == 16
    assert list(codes.lengths) == [375, 375]
    # the cached codes are the level's codes of the whole clip; chunked encoding agrees
    _, l1 = _tiny("ada")
    clip = torch.from_numpy(AudioCache(tmp_path / "cache").clip(0))
    whole = l1.encode(clip[None])[0]
    cached = tokens_from_samples(torch.from_numpy(codes.clip(0))[None], 16)[0]
    assert torch.equal(cached, whole)
    assert torch.equal(encode_example(l1, clip, chunk=256), whole)
    # ... and the code level trains on it through the ordinary trainer
    assert main(["train", str(CONFIGS / "ada" / "tiny.yaml"), "--data", str(tmp_path / "codes"),
                 "--out", str(tmp_path / "r2"), "--max-steps", "2", "-q", *CODE_LEVEL,
                 "data.window=64"]) == 0
    # evaluate's NLL says what it is: an autoencoder's is conditional on its own codes (no
    # compressor baseline), a prior's on a code cache is a code length beside xz of the codes
    from waveloom.evaluate.run import evaluate

    split = str(codes.splits[0])
    rep = evaluate(paths["l1"], metrics=["nll"], data=tmp_path / "cache", split=split,
                   progress=False)
    assert rep["nll_kind"] == "conditional" and "baselines" not in rep
    run, prior = _tiny("code_prior", "data.sample_rate=2000", "model.codebook_size=16")
    prior_path = save_checkpoint(tmp_path / "p2" / "model.safetensors", prior, run)
    rep = evaluate(prior_path, metrics=["nll"], data=tmp_path / "codes", split=split,
                   progress=False)
    assert rep["nll_kind"] == "codes" and rep["baselines"]["raw_bits_per_sample"] == 8.0
    assert 0 < rep["baselines"]["xz_bits_per_sample"] < 8.0


# ----------------------------------------------------------------------------- errors


def _one_line_error(capsys, *argv):
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    manifest, paths = _save_tiny_hierarchy(tmp_path)
    out = str(tmp_path / "g")
    assert "not found" in _one_line_error(capsys, "generate", str(tmp_path / "no.json"),
                                          "--out", out)
    (tmp_path / "bad.json").write_text("{not json")
    assert "not a hierarchy manifest" in _one_line_error(capsys, "generate",
                                                         str(tmp_path / "bad.json"), "--out", out)
    (tmp_path / "other.json").write_text('{"format": "x"}')
    assert "waveloom hierarchy" in _one_line_error(capsys, "generate",
                                                   str(tmp_path / "other.json"), "--out", out)
    # levels in the wrong order / a prior over another codebook
    msg = _one_line_error(capsys, "hierarchy", "--prior", str(paths["prior"]), "--levels",
                          str(paths["l1"]), str(paths["l2"]), "--out", str(tmp_path / "x.json"))
    assert "model.input" in msg and not (tmp_path / "x.json").exists()
    run, big = _tiny("code_prior", "model.codebook_size=32")
    p32 = save_checkpoint(tmp_path / "p32.safetensors", big, run)
    msg = _one_line_error(capsys, "hierarchy", "--prior", str(p32), "--levels",
                          str(paths["l2"]), str(paths["l1"]), "--out", str(tmp_path / "y.json"))
    assert "32 codes" in msg
    msg = _one_line_error(capsys, "hierarchy", "--prior", str(paths["l1"]), "--levels",
                          str(paths["l1"]), "--out", str(tmp_path / "z.json"))
    assert "code_prior" in msg
    assert "--prime" in _one_line_error(capsys, "generate", str(manifest), "--out", out,
                                        "--prime", str(tmp_path / "a.wav"))
    assert "model.bottleneck" in _one_line_error(
        capsys, "train", str(CONFIGS / "ada" / "tiny.yaml"), "--data", str(tmp_path),
        "--out", str(tmp_path / "r"), "model.bottleneck=kmeans")
    # API-level errors name the culprit
    _, l1 = _tiny("ada")
    with pytest.raises(ConfigError, match="outside 0..15"):
        decode(l1, torch.tensor([[3, 99]]), options=SamplingOptions(progress=False))
    with pytest.raises(ConfigError, match="integer codes"):
        decode(l1, torch.rand(1, 4), options=SamplingOptions(progress=False))
    with pytest.raises(ConfigError, match="no pitch conditioning"):
        decode(l1, torch.tensor([[3, 4]]), 60)
    with pytest.raises(ConfigError, match="cond\\['codes'\\]"):
        l1.sampling_plan(1, 10, {})
    _, l2 = _tiny("ada", *CODE_LEVEL)
    with pytest.raises(DataError, match="integer"):
        l2.encode(torch.rand(1, 64))
    with pytest.raises(CheckpointError):
        load_hierarchy(tmp_path / "missing.json")


# ----------------------------------------------------------------------------- evaluation


def test_chroma_structure_separates_a_steady_key_from_a_key_change():
    from waveloom.evaluate.hierarchy import chroma_structure

    sr = 4000
    t = np.arange(25 * sr) / sr

    def chord(freqs, span):
        return sum(np.sin(2 * np.pi * f * span) for f in freqs)

    c_major = (261.6, 329.6, 392.0)
    f_sharp = (370.0, 466.2, 277.2)  # F# major: shares no pitch class with C major
    steady = chord(c_major, t)
    change = np.concatenate([chord(c_major, t[: 8 * sr]), chord(f_sharp, t[8 * sr :])])
    s, c = chroma_structure(steady, sr), chroma_structure(change, sr)
    assert s["profile_correlation"] > 0.9 > 0.0 > c["profile_correlation"]
    assert s["frame_correlation"] > c["frame_correlation"]
    assert s["same_key"] == 1.0 and c["same_key"] == 0.0
    assert s["key_clarity"] > 0.5 and s["chroma_change"] < 0.05  # tonal, but a static drone
    melody = np.concatenate([chord((f,), t[i * sr // 2:(i + 1) * sr // 2])  # C-major arpeggio
                             for i, f in zip(range(50), [261.6, 329.6, 392.0, 523.2] * 13)])
    m = chroma_structure(melody, sr)
    assert m["chroma_change"] > 10 * s["chroma_change"] and m["same_key"] == 1.0
    with pytest.raises(DataError, match="25 s"):
        chroma_structure(steady[: 10 * sr], sr)


def test_level_scores_report_every_level_and_the_prior():
    from waveloom.evaluate.hierarchy import level_scores

    h = _hierarchy()
    t = np.arange(2000) / 16000
    clips = [0.5 * np.sin(2 * np.pi * 220 * t), 0.3 * np.sin(2 * np.pi * 330 * t)]
    rows = level_scores(h, clips, seconds=0.1)
    assert [r["level"] for r in rows] == [1, 2, "prior"]
    for r in rows[:2]:
        assert r["spectral_distance"] > 0 and r["bits_per_step"] > 0 and r["perplexity"] >= 1
    assert 0 < rows[-1]["bits_per_code"] < 10
