"""``waveloom train-classifier CACHE --out FILE``: fit the evaluation classifier on real notes.

Trains :class:`~waveloom.evaluate.classifier.NoteClassifier` on the ``train`` split of a cache
(every example with a pitch and a family label; a seeded subset of ``max_examples`` for very
large caches) and keeps the weights that score best on the ``valid`` split (a seeded 10 % of
train when the cache has no valid split; ties go to the lower validation loss). The classes are
those present in the training data.
Training is meant to take a few minutes on a CPU: a wall-clock budget (``max_seconds``) ends it
early, keeping the best epoch so far.

Speed: the log-mel of every training note is computed once, over a window that starts
``EARLY_FRAMES`` hops before the note and ends ``LATE_FRAMES`` hops after the analysis window;
each batch crops a random ``frames``-long stretch from it. That shift (-64 ms .. +160 ms at
16 kHz) is the augmentation: generators put onsets late (leading silence) or cut them, and the
judge should not care. Crops are re-referenced to their own peak, as at inference.

Short notes (``truncate``): a melody's notes reach the judge as their own spans, zero-padded to
the window (``benchmarks/transfer_table.py``), so a 0.3-s violin note is 0.3 s of bowing and
then digital silence, which a classifier that only ever saw 1-s stretches of 4-s notes hears as
a plucked string (the chorale renders themselves: 97 of 172 notes heard as strings, session
26). With ``truncate`` = p, that share of the training crops is cut at a uniform length of
:data:`MIN_KEEP_FRAMES` to the whole window, the rest set to silence's log-mel. Off (0) by
default: the recorded evaluations keep their classifier.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F
from tqdm.auto import tqdm

from waveloom.errors import DataError
from waveloom.evaluate.classifier import (
    ClassifierConfig,
    NoteClassifier,
    normalise,
    raw_log_mel,
    save_classifier,
)

EARLY_FRAMES, LATE_FRAMES = 2, 5
#: Shortest crop the truncation keeps, in frames (4 hops of 32 ms: a 128-ms note).
MIN_KEEP_FRAMES = 4
#: raw_log_mel of digital silence (its 1e-10 clamp).
SILENT_LOG = math.log(1e-10)


@dataclass
class TrainSummary:
    path: Path
    epochs: int
    seconds: float
    train_examples: int
    val_examples: int
    val_family_accuracy: float
    val_pitch_accuracy: float
    families: list[str] = field(default_factory=list)
    pitches: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"classifier -> {self.path}: {self.epochs} epochs in {self.seconds:.0f} s on "
                f"{self.train_examples} notes; validation ({self.val_examples} notes): family "
                f"{self.val_family_accuracy:.3f} ({len(self.families)} classes), pitch "
                f"{self.val_pitch_accuracy:.3f} ({len(self.pitches)} classes)")


def _labelled(cache, indices) -> list[int]:
    """The indices whose manifest entry has both a pitch and a family label."""
    entries = cache.entries
    keep = []
    for i in indices:
        e = entries[int(i)]
        pitch, family = e.get("pitch"), e.get("family_str")
        if pitch is not None and int(pitch) >= 0 and family:
            keep.append(int(i))
    return keep


@torch.no_grad()
def _features(cache, indices: list[int], cfg: ClassifierConfig, progress: bool) -> Tensor:
    """Raw log-mel ``[N, n_mels, frames + EARLY + LATE]`` (float16) of each note's window."""
    length = cfg.samples + (EARLY_FRAMES + LATE_FRAMES) * cfg.hop
    total = cfg.frames + EARLY_FRAMES + LATE_FRAMES
    out = torch.empty(len(indices), cfg.n_mels, total, dtype=torch.float16)
    batch = 64
    for start in tqdm(range(0, len(indices), batch), desc="classifier features", unit="batch",
                      disable=not progress, leave=False):
        chunk = indices[start : start + batch]
        audio = np.stack([cache.read(i, -EARLY_FRAMES * cfg.hop, length) for i in chunk])
        out[start : start + len(chunk)] = raw_log_mel(torch.from_numpy(audio), cfg)[..., :total]
    return out



def _crop(feats: Tensor, rows: np.ndarray, offsets: np.ndarray, frames: int,
          keep: np.ndarray | None = None) -> Tensor:
    """Network input ``[B, 1, n_mels, frames]`` cropped at per-row frame offsets; with
    ``keep`` ``[B]``, each row's frames from ``keep`` on are silence (a note cut short)."""
    crops = torch.stack([feats[r, :, o : o + frames] for r, o in zip(rows, offsets)]).float()
    if keep is not None:
        cut = torch.arange(frames)[None, :] >= torch.from_numpy(keep)[:, None]
        crops = crops.masked_fill(cut[:, None, :], SILENT_LOG)
    return normalise(crops)


def _keep_frames(rng: np.random.Generator, n: int, frames: int, truncate: float
                 ) -> np.ndarray | None:
    """Frames each of ``n`` crops keeps: a ``truncate`` share is cut at a uniform length in
    ``MIN_KEEP_FRAMES..frames``, the rest kept whole. None (and no draw from ``rng``, so
    runs without it are unchanged) when ``truncate`` is 0."""
    if truncate <= 0:
        return None
    lengths = rng.integers(MIN_KEEP_FRAMES, frames + 1, size=n)
    return np.where(rng.random(n) < truncate, lengths, frames)


@torch.no_grad()
def _validate(model, feats, fam, pit, cfg, device, batch_size=128
              ) -> tuple[float, float, float]:
    """(family accuracy, pitch accuracy, summed cross-entropy per note) on validation notes."""
    model.eval()
    fam_ok = pit_ok = 0
    loss = 0.0
    for start in range(0, feats.shape[0], batch_size):
        rows = np.arange(start, min(start + batch_size, feats.shape[0]))
        x = _crop(feats, rows, np.full(len(rows), EARLY_FRAMES), cfg.frames).to(device)
        f, p, _ = model(x)
        f, p = f.cpu(), p.cpu()
        fam_ok += int((f.argmax(-1) == fam[rows]).sum())
        pit_ok += int((p.argmax(-1) == pit[rows]).sum())
        loss += float(F.cross_entropy(f, fam[rows], reduction="sum")
                      + F.cross_entropy(p, pit[rows], reduction="sum"))
    n = max(1, feats.shape[0])
    return fam_ok / n, pit_ok / n, loss / n


def train_classifier(
    cache_dir: str | Path,
    out: str | Path,
    *,
    epochs: int = 12,
    max_seconds: float = 300.0,
    batch_size: int = 32,
    seconds: float = 1.0,
    lr: float = 3e-3,
    max_examples: int = 20000,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    truncate: float = 0.0,
    **config_overrides,
) -> TrainSummary:
    """Train on ``cache_dir``'s train split, validate on valid, save the best to ``out``.

    ``truncate``: the share of training crops cut short (the module docstring), in [0, 1].

    ``config_overrides`` go to :class:`ClassifierConfig` (e.g. ``channels=(8, 16, 32, 64)``).
    """
    from waveloom.data.cache import AudioCache

    if not 0.0 <= truncate <= 1.0:
        raise DataError(f"--truncate {truncate}: a share of the training crops, in [0, 1]")
    cache = AudioCache(cache_dir)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    train_idx, val_idx = _split(cache, rng, max_examples, cache_dir)
    entries = cache.entries
    families = sorted({entries[i]["family_str"] for i in train_idx})
    pitches = sorted({int(entries[i]["pitch"]) for i in train_idx})
    # Validation notes of classes never seen in training cannot be scored; drop them.
    val_idx = [i for i in val_idx
               if entries[i]["family_str"] in families and int(entries[i]["pitch"]) in pitches]
    cfg = ClassifierConfig(sample_rate=cache.sample_rate, seconds=seconds, families=families,
                           pitches=pitches, **config_overrides)

    t0 = time.monotonic()
    train = _notes(cache, train_idx, cfg, progress)
    val = _notes(cache, val_idx, cfg, progress)
    model = NoteClassifier(cfg).to(device)
    epoch, best_acc = _fit(model, train, val, cfg, rng, t0, epochs=epochs,
                           max_seconds=max_seconds, batch_size=batch_size, lr=lr, device=device,
                           progress=progress, truncate=truncate)
    elapsed = time.monotonic() - t0
    metrics = {"val_family_accuracy": best_acc[0], "val_pitch_accuracy": best_acc[1],
               "epochs": epoch, "seconds": elapsed, "train_examples": len(train_idx),
               "val_examples": len(val_idx), "cache": str(cache_dir), "truncate": truncate}
    path = save_classifier(out, model.cpu(), metrics)
    return TrainSummary(path, epoch, elapsed, len(train_idx), len(val_idx), best_acc[0],
                        best_acc[1], families, pitches)


def _split(cache, rng: np.random.Generator, max_examples: int,
           cache_dir: str | Path) -> tuple[list[int], list[int]]:
    """(train, valid) indices of the labelled notes: the cache's splits, or a seeded 10 % of
    train as valid when it has none; train is cut to a seeded ``max_examples``. DataError when
    fewer than 2 labelled training notes remain."""
    train_idx = _labelled(cache, cache.split_indices("train"))
    val_idx = _labelled(cache, cache.split_indices("valid"))
    if not val_idx and len(train_idx) >= 10:
        perm = rng.permutation(len(train_idx))
        cut = max(1, len(train_idx) // 10)
        val_idx = sorted(train_idx[i] for i in perm[:cut])
        train_idx = sorted(train_idx[i] for i in perm[cut:])
    if len(train_idx) > max_examples:
        train_idx = sorted(rng.choice(train_idx, size=max_examples, replace=False).tolist())
    if len(train_idx) < 2:
        raise DataError(f"{cache_dir}: the train split has {len(train_idx)} notes with pitch "
                        "and family labels; the classifier needs labelled notes (NSynth layout "
                        "or `waveloom data render-notes`)")
    return train_idx, val_idx


@dataclass
class _Notes:
    """Notes ready to train on: raw log-mel windows ``x`` [N, n_mels, frames + EARLY + LATE]
    (float16) and their class indices ``family`` and ``pitch`` [N] (long)."""

    x: Tensor
    family: Tensor
    pitch: Tensor

    def __len__(self) -> int:
        return self.x.shape[0]


def _notes(cache, idx: list[int], cfg: ClassifierConfig, progress: bool) -> _Notes:
    """Features and targets of the notes ``idx``, classes numbered as in ``cfg``."""
    entries = cache.entries
    fam_index = {f: k for k, f in enumerate(cfg.families)}
    pitch_index = {p: k for k, p in enumerate(cfg.pitches)}
    x = _features(cache, idx, cfg, progress)
    return _Notes(x, torch.tensor([fam_index[entries[i]["family_str"]] for i in idx]),
                  torch.tensor([pitch_index[int(entries[i]["pitch"])] for i in idx]))


def _fit(model: NoteClassifier, train: _Notes, val: _Notes, cfg: ClassifierConfig,
         rng: np.random.Generator, t0: float, *, epochs: int, max_seconds: float,
         batch_size: int, lr: float, device: str, progress: bool, truncate: float,
         ) -> tuple[int, tuple[float, float]]:
    """One-cycle AdamW for ``epochs`` (or until ``max_seconds`` after ``t0``), validating
    after each epoch; loads the best epoch's weights into ``model``. Returns (epochs run,
    (family accuracy, pitch accuracy) of the best epoch; NaN without validation notes)."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, pct_start=0.2,
                                                total_steps=epochs * steps_per_epoch)
    best, best_state, best_acc = (-1.0, 0.0), None, (math.nan, math.nan)
    epoch = 0
    for epoch in range(1, epochs + 1):
        bar = tqdm(range(steps_per_epoch), desc=f"classifier epoch {epoch}/{epochs}",
                   unit="batch", disable=not progress, leave=False)
        out_of_time = _train_epoch(model, opt, sched, train, cfg, rng, bar, batch_size, device,
                                   deadline=t0 + max_seconds, truncate=truncate)
        fam_acc, pit_acc, val_loss = (_validate(model, val.x, val.family, val.pitch, cfg, device)
                                      if len(val) else (math.nan, math.nan, math.nan))
        # Best mean accuracy; among equals the lower loss (more confident, better calibrated).
        score = (float(np.nan_to_num((fam_acc + pit_acc) / 2, nan=0.0)),
                 -float(np.nan_to_num(val_loss, nan=0.0)))
        if best_state is None or score > best:
            best, best_acc = score, (fam_acc, pit_acc)
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if out_of_time:
            break
    model.load_state_dict(best_state)
    return epoch, best_acc


def _train_epoch(model: NoteClassifier, opt: torch.optim.Optimizer, sched, train: _Notes,
                 cfg: ClassifierConfig, rng: np.random.Generator, bar, batch_size: int,
                 device: str, deadline: float, truncate: float) -> bool:
    """One pass over ``train`` in a seeded order, each note cropped at a random shift of up
    to EARLY + LATE frames (the augmentation); returns True when ``time.monotonic()`` passed
    ``deadline`` (the epoch then stops early)."""
    model.train()
    order = rng.permutation(len(train))
    out_of_time = False
    for b in bar:
        rows = order[b * batch_size : (b + 1) * batch_size]
        offsets = rng.integers(0, EARLY_FRAMES + LATE_FRAMES + 1, size=len(rows))
        keep = _keep_frames(rng, len(rows), cfg.frames, truncate)
        x = _crop(train.x, rows, offsets, cfg.frames, keep).to(device)
        f, p, _ = model(x)
        loss = (F.cross_entropy(f, train.family[rows].to(device))
                + F.cross_entropy(p, train.pitch[rows].to(device)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if time.monotonic() > deadline:
            out_of_time = True
            break
    bar.close()
    return out_of_time
