"""The codec token LM: tagged code storage, the three patterns, KV cache, guidance, windows."""

from __future__ import annotations

import pytest
import torch

from waveloom.data.codec_codes import frames_from_stored, stored_from_codes
from waveloom.data.prepare import SCALE
from waveloom.errors import ConfigError, DataError
from waveloom.models.load import load_config
from waveloom.models.registry import build_model
from waveloom.sampling.codec_lm import CodeSampling, sample_codes

K, C = 4, 32


def _lm(pattern: str = "delay", **model):
    run = load_config("configs/codec_lm/tiny.yaml")
    run.model.pattern = pattern
    for key, value in model.items():
        setattr(run.model, key, value)
    torch.manual_seed(0)
    return build_model(run).eval()


@pytest.mark.parametrize("start", range(K))
def test_stored_codes_read_back_from_any_start(start):
    """A window cut at any codebook of a frame is realigned on the next whole frame."""
    codes = torch.randint(0, C, (K, 12), generator=torch.Generator().manual_seed(start))
    raw = torch.from_numpy(stored_from_codes(codes, C).astype("int64"))[start:][None]
    frames = (raw.shape[1] + 1) // K - 1
    got = frames_from_stored(raw, K, C, frames)
    first = 0 if start == 0 else 1
    assert torch.equal(got[0], codes[:, first:first + frames])


def test_no_code_positions_read_as_pad_and_alien_values_are_refused():
    codes = torch.randint(0, C, (K, 6), generator=torch.Generator().manual_seed(1))
    raw = torch.from_numpy(stored_from_codes(codes, C).astype("int64"))
    padded = torch.cat([torch.zeros(5, dtype=torch.long), raw])[None]  # an example's start
    got = frames_from_stored(padded, K, C, 6)
    assert (got[0, :, 0] == C).all() and torch.equal(got[0, :, 1:], codes[:, :5])
    with pytest.raises(DataError, match="outside 0"):
        frames_from_stored(torch.full((1, 40), K * C + 1), K, C, 4)
    with pytest.raises(DataError, match="raise data.window"):
        frames_from_stored(raw[None, :7], K, C, 4)


@pytest.mark.parametrize("pattern,every_step", [("delay", False), ("parallel", False),
                                                ("flattened", False), ("delay", True),
                                                ("flattened", True)])
def test_cached_steps_equal_the_full_forward(pattern, every_step):
    """prime + step with the KV cache gives the teacher-forced logits step by step (with the
    condition on every step, step() must be given it: without, a clear error)."""
    lm = _lm(pattern, cond_every_step=every_step)
    batch = lm.example_batch(2, 67, seed=3)
    tokens = lm._tokens(batch)
    cond = lm.condition(batch["instrument"], batch["pitch"], 2)
    with torch.no_grad():
        full = lm(tokens, cond)
        logits, caches = lm.prime(tokens[..., :3], cond, tokens.shape[-1] + 1)
        torch.testing.assert_close(logits, full[..., 3, :], atol=1e-5, rtol=1e-5)
        for s in range(3, 8):
            logits = lm.step(tokens[..., s], s, caches, cond)
            torch.testing.assert_close(logits, full[..., s + 1, :], atol=1e-5, rtol=1e-5)
        if every_step:
            with pytest.raises(ConfigError, match="conditions every step"):
                lm.step(tokens[..., 8], 8, caches)


def test_the_condition_on_every_step_changes_every_step():
    """Prefix-only and every-step models with the same weights differ from the first code's
    logits on, and a different pitch changes every step's logits of the every-step model."""
    lm = _lm("delay", cond_every_step=True)
    batch = lm.example_batch(1, 67, seed=5)
    tokens = lm._tokens(batch)
    with torch.no_grad():
        a = lm(tokens, lm.condition(batch["instrument"], torch.tensor([60]), 1))
        b = lm(tokens, lm.condition(batch["instrument"], torch.tensor([61]), 1))
        lm.config.cond_every_step = False
        prefix = lm(tokens, lm.condition(batch["instrument"], torch.tensor([60]), 1))
    assert not torch.allclose(a[..., 1:, :], prefix[..., 1:, :])
    assert bool(((a - b).abs().amax(-1) > 1e-4).all())


@pytest.mark.parametrize("pattern", ["delay", "parallel", "flattened"])
def test_loss_counts_only_real_codes(pattern):
    lm = _lm(pattern)
    batch = lm.example_batch(3, 67)
    nll, keep = lm._nll(batch)
    frames = lm.frames_in(67)
    # every frame's K codes are predicted once, whatever the pattern (row 0 starts with pads)
    assert int(keep[1:].sum()) == 2 * K * frames
    assert float(nll.detach()[~keep].abs().sum()) == 0.0
    assert torch.isfinite(lm.loss(batch)["loss"])


def test_a_code_cache_of_audio_is_refused():
    lm = _lm()
    with pytest.raises(DataError, match="not a code cache"):
        lm.loss({"audio": torch.full((1, 67), -0.5)})


@pytest.mark.parametrize("pattern,every_step", [("delay", False), ("flattened", False),
                                                ("delay", True)])
def test_sampling_is_seeded_keeps_the_prime_and_fills_every_code(pattern, every_step):
    lm = _lm(pattern, cond_every_step=every_step)
    prime = torch.randint(0, C, (1, K, 5), generator=torch.Generator().manual_seed(2))
    opts = CodeSampling(seed=4, top_k=8, cfg=2.0)
    a = sample_codes(lm, 2, 7, {"instrument": 1, "pitch": 60}, prime, opts)
    b = sample_codes(lm, 2, 7, {"instrument": 1, "pitch": 60}, prime, opts)
    assert a.shape == (2, K, 12) and torch.equal(a, b)
    assert torch.equal(a[:, :, :5], prime.expand(2, -1, -1))
    assert int(a.min()) >= 0 and int(a.max()) < C


@pytest.mark.parametrize("every_step", [False, True])
def test_guidance_of_one_is_the_conditional_model_and_greedy_is_its_argmax(every_step):
    """cfg=1 draws from p(x|c) alone; temperature 0 then follows the argmax step by step."""
    lm = _lm("parallel", cond_every_step=every_step)
    codes = sample_codes(lm, 1, 3, {"instrument": 2, "pitch": 50}, None,
                         CodeSampling(temperature=0.0))
    cond = lm.condition(torch.tensor([2]), torch.tensor([50]), 1)
    with torch.no_grad():
        logits = lm(torch.cat([codes, codes[..., :1]], -1), cond)
    assert torch.equal(logits[..., :3, :].argmax(-1), codes)


def test_long_outputs_are_made_window_by_window():
    """context_frames 16: 40 frames need three windows, every code drawn, still seeded."""
    lm = _lm()
    a = sample_codes(lm, 1, 40, {"instrument": 0}, None, CodeSampling(seed=1))
    assert a.shape == (1, K, 40) and int(a.min()) >= 0
    assert torch.equal(a, sample_codes(lm, 1, 40, {"instrument": 0}, None, CodeSampling(seed=1)))


def test_bad_sampling_requests_are_clear():
    lm = _lm(instrument_conditioning=False, pitch_conditioning=False)
    with pytest.raises(ConfigError, match="nothing to guide"):
        sample_codes(lm, 1, 2, None, None, CodeSampling(cfg=3.0))
    lm = _lm()
    with pytest.raises(ConfigError, match="prime codes of shape"):
        sample_codes(lm, 1, 2, None, torch.zeros(1, K + 1, 3, dtype=torch.long))
    with pytest.raises(ConfigError, match="out of range"):
        sample_codes(lm, 1, 2, {"instrument": 9})


def test_too_many_codebooks_for_a_code_cache_is_a_config_error():
    with pytest.raises((ConfigError, DataError), match="fit a code cache"):
        _lm(n_q=40, codebook_size=1024)
    assert SCALE > K * C


def test_a_codec_code_cache_trains_the_lm(notes_cache, tmp_path):
    """encode-codes with a codec writes tagged frames that read back as the codec's codes; the
    trainer then trains the LM on them, refusing an LM of another codebook size first."""
    from waveloom.app.codes import encode_cache
    from waveloom.data.cache import AudioCache
    from waveloom.models.load import load_checkpoint
    from waveloom.train.trainer import train

    codec_run = load_config("configs/codec/tiny.yaml",
                            ["train.max_steps=1", "model.quantizer_dropout=false"])
    train(codec_run, notes_cache, tmp_path / "codec", progress=False)
    ckpt = tmp_path / "codec" / "model.safetensors"
    summary = encode_cache(ckpt, notes_cache, tmp_path / "codes", progress=False)
    codec, _ = load_checkpoint(ckpt)
    codes = AudioCache(tmp_path / "codes")
    assert summary.code_rate == codes.sample_rate == 2000 * 4  # 16 kHz / hop 8, x 4 codebooks
    raw = torch.from_numpy(codes.read_raw(0).astype("int64"))[None]
    clip = torch.from_numpy(AudioCache(notes_cache).clip(0))
    expected = codec.eval().encode(clip[None])
    got = frames_from_stored(raw, 4, 16, raw.shape[1] // 4 - 1)
    assert torch.equal(got, expected[..., : got.shape[-1]])

    lm_run = load_config("configs/codec_lm/tiny.yaml",
                         ["train.max_steps=2", "data.sample_rate=8000", "model.frame_rate=2000"])
    with pytest.raises(ConfigError, match="model.codebook_size=16"):
        train(lm_run, tmp_path / "codes", tmp_path / "bad", progress=False)
    lm_run.model.codebook_size = 16
    result = train(lm_run, tmp_path / "codes", tmp_path / "lm", progress=False)
    assert result.step == 2
    lm, run = load_checkpoint(tmp_path / "lm" / "model.safetensors")
    assert run.model.codec == str(ckpt.resolve())
    _generate_through_the_cli(tmp_path, tmp_path / "lm" / "model.safetensors")
    _benchmarks_draw_notes(lm, tmp_path / "lm" / "model.safetensors", codec)
    _pitch_margins(lm.eval(), tmp_path / "codes", run.data.window)


def _pitch_margins(lm, codes, window):
    """codec_lm_pitch_margin: finite NLLs under the right label and its two neighbours."""
    import sys
    from pathlib import Path

    from waveloom.data.cache import AudioCache

    bench = Path(__file__).resolve().parent.parent / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        import codec_lm_pitch_margin as margin
    finally:
        sys.path.remove(str(bench))
    cache = AudioCache(codes)
    entries = cache.entries
    pitch, split = int(entries[0]["pitch"]), entries[0]["split"]
    rows = margin.rows_of(entries, pitch, split, None)
    got = margin.margins(lm, cache, entries, rows, pitch, window)
    assert sorted(got) == [pitch - 1, pitch, pitch + 1]
    assert all(0 < a < 20 and 0 < b < 20 for a, b in got.values())


def _benchmarks_draw_notes(lm, lm_ckpt, codec):
    """pitch_grid's codec-LM cells and codec_lm_speed's timed draw: one decoded note per
    pitch, as long as asked, from the LM's own codec."""
    import sys
    from argparse import Namespace
    from pathlib import Path

    bench = Path(__file__).resolve().parent.parent / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        import codec_lm_speed
        import pitch_grid
    finally:
        sys.path.remove(str(bench))
    args = Namespace(checkpoint=lm_ckpt, seconds=0.01, cfg=2.0, temperature=1.0, top_k=0, seed=0)
    assert pitch_grid._codec_rate(lm, args) == 16000
    cond = {"pitch": torch.tensor([55, 57]), "instrument": torch.zeros(2, dtype=torch.long)}
    audio = pitch_grid.codec_lm_cells(lm, cond, args)
    assert audio.shape == (2, 160)  # 20 frames of hop 8
    drew, decoded = codec_lm_speed.time_draw(lm, codec.eval(), 20, 1, 2.0, 0)
    assert drew > 0 and decoded > 0


def _generate_through_the_cli(tmp_path, lm_ckpt):
    """generate on an LM checkpoint: codes decoded by its codec; --prime, --cfg, windows."""
    import numpy as np
    import soundfile as sf

    from waveloom.cli import main

    prime = tmp_path / "prime.wav"
    sf.write(prime, (0.1 * np.sin(np.arange(80) / 3)).astype("float32"), 16000)
    assert main(["generate", str(lm_ckpt), "--out", str(tmp_path / "gen"), "--n", "2",
                 "--seconds", "0.02", "--cfg", "2", "--prime", str(prime), "--top-k", "4",
                 "-q"]) in (0, None)
    audio, sr = sf.read(tmp_path / "gen" / "sample-0.wav")
    assert sr == 16000 and len(audio) == 80 + 320  # the prime's 10 frames + 40 new ones
    assert (tmp_path / "gen" / "sample-1.png").is_file()
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(5, "float32"), 16000)
    with pytest.raises(DataError, match="shorter than one codec frame"):
        _raise_from_cli(["generate", str(lm_ckpt), "--out", str(tmp_path / "g2"), "--n", "1",
                         "--seconds", "0.01", "--prime", str(short), "-q"])


def _raise_from_cli(argv):
    """Run the verb's function directly so its error is raised, not printed."""
    from waveloom.cli import build_parser

    args = build_parser().parse_args(argv)
    args.run(args)
