"""The universal music translator: gradient reversal, augmentation, per-domain decoders, verb."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from waveloom.config import SamplingOptions
from waveloom.errors import ConfigError
from waveloom.models.load import load_config
from waveloom.models.registry import build_model
from waveloom.models.translator import local_pitch_shift, reverse_gradient


def _tiny():
    torch.manual_seed(0)
    return build_model(load_config("configs/translator/tiny.yaml"))


def test_gradient_reversal_flips_the_gradient_only():
    x = torch.randn(3, requires_grad=True)
    y = reverse_gradient(x, 0.5)
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.equal(x.grad, torch.full((3,), -0.5))


def test_local_pitch_shift_moves_a_tone_by_at_most_half_a_semitone():
    sr = 16000
    t = torch.arange(sr) / sr
    tone = torch.sin(2 * math.pi * 440 * t)[None]
    shifted = local_pitch_shift(tone, sr, 0.5, (0.25, 0.5), torch.Generator().manual_seed(1))
    assert shifted.shape == tone.shape and not torch.equal(shifted, tone)
    seg = shifted[0, 1000:3000].numpy()  # inside the first segment (>= 0.25 s)
    spectrum = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), 1 << 16))
    f = np.argmax(spectrum) * sr / (1 << 16)
    assert abs(12 * math.log2(f / 440)) <= 0.5 + 0.05


def test_loss_reads_each_examples_own_decoder_and_confuses_the_classifier():
    model = _tiny().train()
    batch = model.example_batch(2, model.context + 512)
    batch["instrument"] = torch.tensor([0, 1])
    out = model.loss(batch)
    out["loss"].backward()
    # both decoders trained (each saw its own example); the classifier and encoder got gradients
    for decoder in model.decoders:
        assert decoder.stack.out2.weight.grad.abs().sum() > 0
    assert model.classifier[0].weight.grad.abs().sum() > 0
    assert model.encoder.end.weight.grad.abs().sum() > 0
    batch["instrument"] = torch.tensor([0, 0])
    model.zero_grad()
    model.loss(batch)["loss"].backward()
    assert model.decoders[1].stack.out2.weight.grad is None or \
        model.decoders[1].stack.out2.weight.grad.abs().sum() == 0
    with pytest.raises(Exception, match="outside 0..1"):
        model.loss({**batch, "instrument": torch.tensor([0, 5])})


def test_translate_verb_names_domains_and_is_seeded(tmp_path, capsys):
    from waveloom.app.translate import resolve_domain
    from waveloom.checkpoint import save_checkpoint
    from waveloom.cli import main
    from waveloom.sampling.translate import translate

    run = load_config("configs/translator/tiny.yaml")
    model = _tiny()
    ckpt = save_checkpoint(tmp_path / "tr.safetensors", model, run,
                           extra={"instruments": ["organ", "strings"]})
    audio = torch.sin(torch.arange(640) / 7.0)[None] * 0.3
    opts = SamplingOptions(seed=2, progress=False)
    a = translate(model, audio, 1, opts)
    assert a.shape == (1, 640) and torch.equal(a, translate(model, audio, 1, opts))
    wav = tmp_path / "in.wav"
    sf.write(wav, audio[0].numpy(), 22050)  # another rate: resampled
    assert main(["translate", str(ckpt), str(wav), "--domain", "strings", "--out",
                 str(tmp_path / "out"), "-q"]) in (0, None)
    assert (tmp_path / "out" / "in-to-strings.wav").is_file()
    twin = tmp_path / "twin.wav"
    sf.write(twin, audio[0].numpy() * 0.5, 22050)
    capsys.readouterr()
    main(["translate", str(ckpt), str(wav), str(twin), "--domain", "0", "--out",
          str(tmp_path / "pair"), "-q"])
    assert capsys.readouterr().out.count("2 in one batch") == 2  # equal lengths: one batch
    with pytest.raises(ConfigError, match="knows 0: organ, 1: strings"):
        resolve_domain("flute", ["organ", "strings"], 2)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(640, "float32"), 16000)
    main(["translate", str(ckpt), str(silent), "--domain", "0", "--out", str(tmp_path / "o"),
          "-q"])
    assert "is silent" in capsys.readouterr().err


def test_trains_through_the_trainer(notes_cache, tmp_path):
    from waveloom.train.trainer import train

    run = load_config("configs/translator/tiny.yaml", ["train.max_steps=2"])
    result = train(run, notes_cache, tmp_path / "run", progress=False)
    assert result.step == 2 and math.isfinite(result.last_loss)


def test_input_noise_reaches_every_decoder():
    """model.input_noise is each decoder's: noise on its teacher-forced history, so z has to
    carry the signal (configs/translator/cpu.yaml sets 1.0)."""
    run = load_config("configs/translator/tiny.yaml", ["model.input_noise=1.0"])
    model = build_model(run)
    assert all(d.config.input_noise == 1.0 for d in model.decoders)
    assert build_model(load_config("configs/translator/cpu.yaml")).decoders[0].config \
        .input_noise == 1.0


def test_split_midi_copies_one_split_once_per_piece(tmp_path):
    """scripts/split_midi.py: the test rows' MIDI, one copy per piece named without the
    ensemble; a folder with no such row or no rows file exits with a line."""
    import json
    import subprocess
    import sys

    import pretty_midi

    from .conftest import REPO

    src = tmp_path / "renders"
    (src / "2024").mkdir(parents=True)
    rows = []
    for piece, split in (("bwv1", "test"), ("bwv2", "train")):
        for ens in ("strings", "winds"):
            name = f"2024/bach-{piece}-soprano-{ens}.midi"
            pretty_midi.PrettyMIDI().write(str(src / name))
            rows.append({"midi_filename": name, "split": split, "instrument_str": ens})
    (src / "render-midi.rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    script = [sys.executable, str(REPO / "scripts" / "split_midi.py")]
    subprocess.run(script + [str(src), "--ensemble", "strings", "--out", str(tmp_path / "o")],
                   check=True, capture_output=True)
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["bach-bwv1-soprano.mid"]
    bad = subprocess.run(script + [str(src), "--split", "valid", "--out", str(tmp_path / "x")],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "no row of split 'valid'" in bad.stderr


def test_the_latent_cannot_die_into_one_vector():
    """Session 26's CPU run: the encoder's ReLU before its 1x1 went all-negative under the
    reversed domain gradient, z became one constant vector, and every decoder ignored it.
    With the skip sum made negative everywhere, z must still follow the input; the loss logs
    latent_std (0 for a collapsed encoder)."""
    from waveloom.models.translator import latent_spread

    model = _tiny().eval()
    with torch.no_grad():
        for layer in model.encoder.layers:
            half = layer.out.bias.shape[0] // 2
            layer.out.bias[half:] = -100.0  # the skip half: every skip strongly negative
    a = model.encode(torch.randn(1, 640) * 0.3)
    b = model.encode(torch.randn(1, 640) * 0.3)
    assert not torch.allclose(a, b, atol=1e-4)
    assert float(latent_spread(torch.ones(2, 8, 5))) == 0.0
    batch = model.example_batch(2, model.context + 256)
    assert float(_tiny().train().loss(batch)["latent_std"]) > 0


def test_the_reversed_gradient_ramps_in_with_the_updates():
    """model.confusion_ramp_steps: Ganin & Lempitsky's schedule, 0 at the first update, about
    0.46 at 10 % of the ramp, about 1 at its end; evaluation does not count as an update."""
    run = load_config("configs/translator/tiny.yaml", ["model.confusion_ramp_steps=10"])
    model = build_model(run).train()
    assert model.reversal_scale() == 0.0
    batch = model.example_batch(2, model.context + 128)
    model.loss(batch)
    assert int(model.updates) == 1 and abs(model.reversal_scale() - 0.462) < 0.01
    model.updates.fill_(10)
    assert model.reversal_scale() > 0.99
    model.eval().loss(batch)
    assert int(model.updates) == 10
    assert _tiny().reversal_scale() == 1.0  # no ramp: full from the start


def test_the_f0_source_hands_each_decoder_the_inputs_periods():
    """model.f0_excitation: the decoders read harmonics of the tracked f0 as more local
    channels. Their teacher-forced prediction depends on that f0; silence (f0 0, or a frame
    under the voicing confidence) is a silent source; a batch without the curves is a line."""
    from waveloom.errors import DataError
    from waveloom.models.translator import voiced_f0

    run = load_config("configs/translator/tiny.yaml", ["model.f0_excitation=4"])
    torch.manual_seed(0)
    model = build_model(run).eval()
    for d in model.decoders:  # the output layer starts at zero: every code equally likely
        torch.nn.init.normal_(d.stack.out2.weight, std=0.5)
    assert all(d.config.f0_excitation == 4 for d in model.decoders)
    assert model.batch_keys() == ("instrument", "f0_hz", "f0_confidence")
    assert model.frame_features().frame_rate == 250 and model.frame_features().hop == 64
    batch = model.example_batch(2, model.context + 256)
    base = model.loss(batch)["nll_bits"]
    moved = model.loss({**batch, "f0_hz": batch["f0_hz"] * 1.5})["nll_bits"]
    assert not torch.allclose(base, moved)
    decoder = model.decoders[0]
    silent = decoder._f0_source(torch.zeros(1, 6), 1, 320, "test")
    assert silent.shape == (1, 4, 320) and silent.abs().max() == 0
    tone = decoder._f0_source(torch.full((1, 6), 500.0), 1, 320, "test")
    spectrum = np.abs(np.fft.rfft(tone[0, 0].numpy()))
    assert abs(np.argmax(spectrum) * 16000 / 320 - 500) <= 50
    assert torch.equal(voiced_f0(torch.tensor([[220.0, 330.0]]), torch.tensor([[1.0, 0.2]])),
                       torch.tensor([[220.0, 0.0]]))
    with pytest.raises(DataError, match="f0_confidence"):
        model.loss({k: v for k, v in batch.items() if k != "f0_hz"})
    with pytest.raises(DataError, match="needs 'f0_hz'"):
        decoder.loss({"audio": batch["audio"], "latent": torch.zeros(2, 8, 40)})


def test_an_f0_translator_trains_on_tracked_f0_and_translates(notes_cache, tmp_path):
    """The trainer serves each window's f0 curves (tracked once per cache, context included)
    and `translate` tracks the input's f0 the same way: the sampled translation is seeded,
    and the fast engine and the torch reference agree on it."""
    from waveloom.sampling.translate import translate
    from waveloom.train.trainer import train

    run = load_config("configs/translator/tiny.yaml", ["train.max_steps=2",
                                                      "model.f0_excitation=4"])
    result = train(run, notes_cache, tmp_path / "run", progress=False)
    assert result.step == 2 and math.isfinite(result.last_loss)
    model = build_model(run).eval()
    t = torch.arange(1280) / 16000
    audio = (0.3 * torch.sin(2 * math.pi * 330 * t))[None]
    f0 = model.source_f0(audio)
    assert f0.shape == (1, 20) and abs(float(f0[0, 5:15].median()) - 330) < 5
    fast = translate(model, audio, 1, SamplingOptions(seed=3, progress=False, engine="fast"))
    ref = translate(model, audio, 1, SamplingOptions(seed=3, progress=False,
                                                    engine="torch"))
    assert fast.shape == (1, 1280)
    assert (fast - ref).abs().max() < 0.05


def test_the_fitted_phase_locks_the_source_to_its_target():
    """waveloom.nn.excitation.fitted_phase: for a tone of any phase (a vibrato-free note with
    harmonics) the source started at the fitted phase has the tone's fundamental phase; with
    model.f0_phase=fit a decoder's training source is that one (not a random phase)."""
    from waveloom.nn.excitation import SINE_AMPLITUDE, fitted_phase, harmonic_excitation

    sr, hop = 16000, 320
    f0 = torch.full((1, 11), 440.0)
    t = torch.arange(3200) / sr
    for true in (0.0, 1.0, -2.5):
        tone = 0.3 * torch.sin(2 * math.pi * 440 * t + true) + 0.2 * torch.sin(
            2 * math.pi * 880 * t + 0.7)
        phase = fitted_phase(f0, tone[None], sr, hop)
        assert abs(math.remainder(float(phase) - true, 2 * math.pi)) < 0.01
        source = harmonic_excitation(f0, sr, hop, 1, phase)[0, 0, :3200] / SINE_AMPLITUDE
        assert (source - torch.sin(2 * math.pi * 440 * t + true)).abs().max() < 1e-3
    run = load_config("configs/translator/tiny.yaml", ["model.f0_excitation=2",
                                                      "model.f0_phase=fit"])
    decoder = build_model(run).decoders[0].train()
    audio = (0.3 * torch.sin(2 * math.pi * 440 * torch.arange(640) / sr + 1.0))[None]
    first = decoder._f0_source(torch.full((1, 10), 440.0), 1, 640, "t", audio)
    again = decoder._f0_source(torch.full((1, 10), 440.0), 1, 640, "t", audio)
    assert torch.equal(first, again)  # fitted, not drawn
    assert torch.corrcoef(torch.stack([first[0, 0], audio[0]]))[0, 1] > 0.99
    with pytest.raises(ConfigError, match="f0_phase"):
        load_config("configs/translator/tiny.yaml", ["model.f0_excitation=2",
                                                     "model.f0_phase=onset"])


def test_a_gaussian_head_reaches_every_decoder_and_temperature_narrows_its_draws():
    """model.head=gaussian builds every decoder with ClariNet's Gaussian head (its loss is the
    Gaussian's NLL, finite and trainable), and a colder translation draws smaller deviations
    from the predicted means: the spread is what temperature scales."""
    from waveloom.sampling.translate import translate

    torch.manual_seed(0)
    model = build_model(load_config("configs/translator/tiny.yaml", ["model.head=gaussian"]))
    assert all(d.config.head == "gaussian" for d in model.decoders)
    batch = model.example_batch(2, model.context + 512)
    batch["instrument"] = torch.tensor([0, 1])
    out = model.train().loss(batch)
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    assert model.decoders[1].stack.out2.weight.grad.abs().sum() > 0
    t = torch.arange(1280) / 16000
    audio = (0.3 * torch.sin(2 * math.pi * 330 * t))[None]

    def spread(temperature: float) -> float:
        y = translate(model, audio, 0, SamplingOptions(seed=1, progress=False,
                                                       temperature=temperature))
        return float((y[0, 1:] - y[0, :-1]).abs().mean())

    assert spread(0.1) < spread(1.0)
    with pytest.raises(ConfigError, match="model.head"):
        build_model(load_config("configs/translator/tiny.yaml", ["model.head=cauchy"]))
