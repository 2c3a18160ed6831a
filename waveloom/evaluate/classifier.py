"""A small instrument-family + pitch classifier on log-mel: accuracy, Inception Score, embedding.

GANSynth (Engel et al. 2019) judges generated notes with a pitch classifier trained on real
notes: if a classifier trained on real data recognises the requested pitch (and here also the
instrument family) in a generated note, the note is recognisable as what was asked for. The
same network yields

* **accuracy** per head on labelled generated clips;
* an **Inception Score** analogue, ``exp(E_x KL(p(y|x) || p(y)))`` with ``p(y)`` the mean
  prediction over the set (Salimans et al. 2016): high when each clip is classified confidently
  *and* the set covers many classes; at most the number of classes, 1 for a collapsed set;
* a **FAD embedding**, ``fad[waveloom-classifier]``: its penultimate layer (after ReLU).

Architecture (``[B, 1, n_mels, frames]`` in): four blocks of 3x3 conv -> BatchNorm -> ReLU ->
2x2 max-pool, then the mean over time (so any clip length works) keeping the frequency axis
(pitch lives there), a linear layer to the ``embed_dim``-d penultimate layer, and one linear
head per task. Input: the log-mel spectrogram (128 bands, 128 ms windows, 32 ms hop at 16 kHz)
of the clip's first ``seconds``, referenced to its own peak, so the prediction does not depend
on the clip's gain. Trained by :mod:`waveloom.evaluate.train_classifier`; stored as safetensors
with its config and class lists in the metadata (no pickles).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from waveloom.audio.io import resample
from waveloom.errors import CheckpointError
from waveloom.evaluate.embedding_base import Embedding

FORMAT = "waveloom-classifier"
FORMAT_VERSION = "1"
#: Floor of the peak-referenced log-mel, in nepers (natural log): -12 is about -104 dB.
LOG_FLOOR = -12.0


@dataclass
class ClassifierConfig:
    """Everything needed to rebuild the classifier and its input features."""

    sample_rate: int = 16000
    seconds: float = 1.0  # analysis window from the start of each clip
    n_fft: int = 2048
    hop: int = 512
    n_mels: int = 128
    fmin: float = 30.0
    channels: tuple[int, ...] = (16, 32, 64, 128)
    embed_dim: int = 128
    dropout: float = 0.3
    families: list[str] = field(default_factory=list)  # class names of the family head
    pitches: list[int] = field(default_factory=list)  # MIDI pitches of the pitch head

    @property
    def samples(self) -> int:
        return int(round(self.seconds * self.sample_rate))

    @property
    def frames(self) -> int:
        return 1 + self.samples // self.hop

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ClassifierConfig:
        data = json.loads(text)
        data["channels"] = tuple(data["channels"])
        return cls(**data)


def raw_log_mel(audio: Tensor, cfg: ClassifierConfig) -> Tensor:
    """Natural-log mel magnitudes ``[B, n_mels, 1 + samples // hop]`` of audio ``[B, samples]``."""
    from waveloom.audio.spectral import mel_spectrogram

    mel = mel_spectrogram(audio, cfg.sample_rate, n_fft=cfg.n_fft, hop=cfg.hop,
                          n_mels=cfg.n_mels, fmin=cfg.fmin, log=False)
    # A floor far below any peak-referenced range keeps the features gain-invariant: a fixed
    # floor near the signal (mel_spectrogram's 1e-5) would cut quiet clips' detail earlier.
    return torch.log(mel.clamp_min(1e-10))


def normalise(mel: Tensor) -> Tensor:
    """Peak-referenced, floored, scaled network input ``[B, 1, n_mels, frames]``."""
    peak = mel.amax(dim=(-2, -1), keepdim=True)
    return ((mel - peak).clamp_min(LOG_FLOOR) / 4.0).unsqueeze(1)


def log_mel(audio: Tensor, cfg: ClassifierConfig) -> Tensor:
    """Network input ``[B, 1, n_mels, frames]`` of audio windows ``[B, samples]``."""
    return normalise(raw_log_mel(audio, cfg))


class NoteClassifier(nn.Module):
    """Conv net on log-mel with a family head and a pitch head (see the module docstring)."""

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        blocks, c_in = [], 1
        for c_out in cfg.channels:
            # ceil_mode: a short window (few frames) keeps one frame instead of vanishing.
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                       nn.MaxPool2d(2, ceil_mode=True)]
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        freq = cfg.n_mels
        for _ in cfg.channels:
            freq = (freq + 1) // 2
        self.embed = nn.Sequential(nn.Linear(c_in * freq, cfg.embed_dim), nn.ReLU())
        self.dropout = nn.Dropout(cfg.dropout)
        self.family_head = nn.Linear(cfg.embed_dim, max(1, len(cfg.families)))
        self.pitch_head = nn.Linear(cfg.embed_dim, max(1, len(cfg.pitches)))

    def embedding(self, features: Tensor) -> Tensor:
        """Penultimate activations ``[B, embed_dim]`` of log-mel ``[B, 1, n_mels, frames]``."""
        h = self.features(features).mean(dim=-1)  # [B, C, F]: average over time only
        return self.embed(h.flatten(1))

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(family logits [B, F], pitch logits [B, P], embedding [B, E])``."""
        emb = self.embedding(features)
        h = self.dropout(emb)
        return self.family_head(h), self.pitch_head(h), emb


# ----------------------------------------------------------------------------- file format


def save_classifier(path: str | Path, model: NoteClassifier, metrics: dict | None = None) -> Path:
    """Write weights + config (+ training metrics) as safetensors; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": model.cfg.to_json(),
            "metrics": json.dumps(metrics or {})}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def load_classifier(path: str | Path, device: str = "cpu") -> tuple[NoteClassifier, dict]:
    """``(model in eval mode, training metrics)`` from a file written by :func:`save_classifier`."""
    path = Path(path)
    fix = "train one with `waveloom train-classifier CACHE --out FILE`"
    if not path.is_file():
        raise CheckpointError(f"{path}: classifier not found; {fix}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a safetensors classifier ({err}); {fix}") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a waveloom classifier (a model checkpoint?); {fix}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: classifier format {meta.get('format_version')}, this "
                              f"waveloom reads {FORMAT_VERSION}; retrain it")
    model = NoteClassifier(ClassifierConfig.from_json(meta["config"]))
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not match the stored config "
                              f"({str(err).splitlines()[0]}); {fix}") from None
    return model.eval().to(device), json.loads(meta.get("metrics", "{}"))


# ----------------------------------------------------------------------------- inference


def clip_window(audio: np.ndarray, sample_rate: int, cfg: ClassifierConfig) -> np.ndarray:
    """The first ``cfg.seconds`` of a clip at ``cfg.sample_rate``, zero-padded ``[samples]``."""
    x = resample(np.asarray(audio, np.float32), int(sample_rate), cfg.sample_rate)
    out = np.zeros(cfg.samples, np.float32)
    out[: min(len(x), cfg.samples)] = x[: cfg.samples]
    return out


@dataclass
class Predictions:
    """Softmax outputs ``family [N, F]``, ``pitch [N, P]`` and penultimate ``embedding [N, E]``."""

    family: np.ndarray
    pitch: np.ndarray
    embedding: np.ndarray


@torch.no_grad()
def predict(model: NoteClassifier, audio_set, *, batch_size: int = 32,
            progress: bool = True) -> Predictions:
    """Run the classifier over every clip of ``audio_set``."""
    from tqdm.auto import tqdm

    cfg = model.cfg
    device = next(model.parameters()).device
    fam, pit, emb, batch = [], [], [], []

    def flush() -> None:
        x = log_mel(torch.from_numpy(np.stack(batch)).to(device), cfg)
        f, p, e = model(x)
        fam.append(f.softmax(-1).cpu())
        pit.append(p.softmax(-1).cpu())
        emb.append(e.cpu())
        batch.clear()

    for clip in tqdm(audio_set.clips(), total=len(audio_set), desc="classify", unit="clip",
                     disable=not progress):
        batch.append(clip_window(clip, audio_set.sample_rate, cfg))
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return Predictions(torch.cat(fam).double().numpy(), torch.cat(pit).double().numpy(),
                       torch.cat(emb).double().numpy())


def inception_score(probs: np.ndarray, eps: float = 1e-12) -> float:
    """``exp(mean_x KL(p(y|x) || p(y)))`` of class probabilities ``[N, C]`` (rows sum to 1)."""
    p = np.asarray(probs, np.float64)
    marginal = p.mean(axis=0, keepdims=True)
    kl = np.sum(p * (np.log(p + eps) - np.log(marginal + eps)), axis=1)
    return float(math.exp(float(kl.mean())))


def correct_flags(probs: np.ndarray, classes: list, labels: list) -> tuple[np.ndarray, int]:
    """Per-clip 0/1 correctness of the argmax vs ``labels``; also how many labels are unknown.

    A label the classifier has no class for counts as wrong: the classifier cannot confirm it.
    """
    index = {c: i for i, c in enumerate(classes)}
    pred = probs.argmax(axis=1)
    flags = np.array([float(index.get(lab, -1) == p) for lab, p in zip(labels, pred)])
    unknown = sum(lab not in index for lab in labels)
    return flags, unknown


class ClassifierEmbedding(Embedding):
    """The classifier's penultimate layer as a FAD embedding (one vector per clip)."""

    def __init__(self, path: str | Path, *, device: str = "cpu"):
        self.model, _ = load_classifier(path, device)
        self.name = "waveloom-classifier"
        self.sample_rate = self.model.cfg.sample_rate
        self.layer = (f"penultimate layer ({self.model.cfg.embed_dim}-d, after ReLU) on the "
                      f"first {self.model.cfg.seconds:g} s")
        self._digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]

    def key(self) -> str:
        return f"{self.name}:{self._digest}"

    @torch.no_grad()
    def frames(self, audio: np.ndarray) -> np.ndarray:
        cfg = self.model.cfg
        x = clip_window(audio, self.sample_rate, cfg)
        device = next(self.model.parameters()).device
        feats = log_mel(torch.from_numpy(x)[None].to(device), cfg)
        return self.model.embedding(feats).cpu().numpy()
