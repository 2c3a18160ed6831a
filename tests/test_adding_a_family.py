"""docs/DESIGN.md's "Adding a family", done for real: a family that is only its own model file,
one registry line and a preset trains, resumes exactly, samples, saves and loads, and is
scored, through the same verbs as every built-in family, with no edit anywhere else.

The family is written to a temporary folder (as a user's plug-in would be), its registry line
is added the way a contributor adds one (an entry in ``registry._FAMILIES``), and its preset
lives beside it. Everything else, the trainer, the objectives, the sampling entry point, the
loader and the CLI, is used unchanged; if any of them needed to know the family, this fails.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from waveloom.cli import main
from waveloom.config import SamplingOptions
from waveloom.models import registry
from waveloom.models.load import load_checkpoint, load_config
from waveloom.models.registry import build_model
from waveloom.sampling.sample import sample

# A first-order Markov model over mu-law codes: small, real (it has a likelihood and learns
# the data's code transitions), and unlike any built-in family.
FAMILY_FILE = '''
"""A bigram model of mu-law codes: p(x_t | x_{t-1}) from an embedding and a linear layer."""
from __future__ import annotations
from dataclasses import dataclass
import torch
import torch.nn.functional as F
from torch import nn
from waveloom.audio.mulaw import dequantize, quantize
from waveloom.config import ModelConfig, require_positive
from waveloom.models.base import Likelihood, require_default_engine


@dataclass
class BigramConfig(ModelConfig):
    embed: int = 16

    def validate(self) -> None:
        require_positive(self, "embed")


class Bigram(Likelihood):
    config_class = BigramConfig

    def __init__(self, config: BigramConfig) -> None:
        super().__init__(config)
        self.embed = nn.Embedding(256, config.embed)
        self.out = nn.Linear(config.embed, 256)

    @property
    def context(self) -> int:
        return 1

    def _logits(self, codes):
        return self.out(self.embed(codes[:, :-1]))  # [B, T-1, 256]

    def log_prob(self, batch):
        codes = quantize(batch["audio"])
        logp = F.log_softmax(self._logits(codes), -1)
        return logp.gather(-1, codes[:, 1:, None])[..., 0]

    def loss(self, batch):
        nll = -self.log_prob(batch).mean()
        return {"loss": nll, "bits": nll / 0.6931471805599453}

    @torch.no_grad()
    def generate(self, n, length, cond=None, options=None):
        require_default_engine(self, options)
        gen = torch.Generator().manual_seed(options.seed or 0)
        code = torch.full((n,), 128, dtype=torch.long)
        out = torch.empty(n, length, dtype=torch.long)
        for t in range(length):
            probs = F.softmax(self.out(self.embed(code)) / options.temperature, -1)
            code = torch.multinomial(probs, 1, generator=gen)[:, 0]
            out[:, t] = code
        return dequantize(out).clamp(-1.0, 1.0)
'''

PRESET = """family: bigram
model: {embed: 8}
data: {window: 512, batch_size: 4}
train: {lr: 0.01, max_steps: 6, checkpoint_every: 3, log_every: 1}
"""


@pytest.fixture()
def bigram(tmp_path, monkeypatch) -> Path:
    """The plug-in family's three pieces: its file, its registry line, its preset."""
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "bigram_family.py").write_text(textwrap.dedent(FAMILY_FILE))
    monkeypatch.syspath_prepend(str(plugin))
    monkeypatch.setitem(registry._FAMILIES, "bigram", ("bigram_family:Bigram", "likelihood"))
    preset = tmp_path / "configs" / "bigram" / "tiny.yaml"
    preset.parent.mkdir(parents=True)
    preset.write_text(PRESET)
    yield preset
    sys.modules.pop("bigram_family", None)


def test_the_family_meets_the_model_contract(bigram, tmp_path):
    model = build_model(load_config(bigram))
    batch = model.example_batch(2, model.context + 256)
    losses = model.loss(batch)
    losses["loss"].backward()
    assert torch.isfinite(losses["loss"]) and model.out.weight.grad.abs().sum() > 0
    options = SamplingOptions(seed=3, progress=False)
    a, b = sample(model, 2, 100, None, options), sample(model, 2, 100, None, options)
    assert a.shape == (2, 100) and torch.equal(a, b) and a.abs().max() <= 1.0


def test_train_resume_generate_and_evaluate_through_the_cli(bigram, notes_cache, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = ["--data", str(notes_cache), "--threads", "1", "--quiet"]
    assert main(["train", str(bigram), "--out", str(straight), *common]) == 0
    assert main(["train", str(bigram), "--out", str(split), *common, "train.max_steps=3"]) == 0
    assert main(["train", str(bigram), "--out", str(split), *common, "--resume"]) == 0
    a = load_file(str(straight / "model.safetensors"))
    b = load_file(str(split / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), \
        "6 straight steps must equal 3 + resume + 3, bit for bit"

    model, run = load_checkpoint(straight / "model.safetensors")
    assert run.family == "bigram" and type(model).__name__ == "Bigram"
    out = tmp_path / "generated"
    assert main(["generate", str(straight / "model.safetensors"), "--out", str(out), "--n", "2",
                 "--seconds", "0.05", "--seed", "1"]) == 0
    assert sorted(p.name for p in out.glob("*.wav")) == ["sample-0.wav", "sample-1.wav"]

    report = tmp_path / "nll.json"
    assert main(["evaluate", str(straight / "model.safetensors"), "--data", str(notes_cache),
                 "--split", "train", "--metrics", "nll", "--json", str(report)]) == 0
    bits = json.loads(report.read_text())
    assert bits["family"] == "bigram" and bits["split"] == "train"
    # Six steps from a uniform start: already below the 8 raw bits of a mu-law code.
    assert 0.0 < bits["nll"]["bits_per_sample"] < bits["baselines"]["raw_bits_per_sample"]
