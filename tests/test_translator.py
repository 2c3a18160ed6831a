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
