"""Playing a trained DDSP model: audio -> controls (timbre transfer), MIDI -> controls
(performance), and controls -> audio in blocks.

The verbs (:mod:`waveloom.app.ddsp`) are thin over these. What a user can get wrong is turned
into notes (strings the verb prints as warnings) rather than errors where the output still
makes sense:

* silent or unvoiced input (no frame above :data:`SILENCE_DB`, or no frame CREPE calls voiced)
  -> a note, and silence of the input's length out;
* f0 outside the model's range (:meth:`DDSP.f0_range`: what it was trained on) -> clipped to
  it, with a note naming the seconds where that happened (voiced frames only).

Rendering is offline (one pass of the decoder and the synthesiser, the reverb by one FFT) for
inputs up to :data:`OFFLINE_FRAMES`; longer ones run :class:`~waveloom.models.ddsp.stream.
DDSPStream` over blocks of :data:`BLOCK_FRAMES` frames, so memory stays flat. Both draw the noise
in the same blocks from the seed, so they give the same audio (to float rounding, 1e-5): the
stream's per-block overhead (a partitioned reverb of ``hop``-sample partitions) is for live use.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from waveloom.data.features import example_features
from waveloom.data.midi_controls import line_f0, line_loudness, midi_lines

SILENCE_DB = -70.0  # an input whose loudest frame is below this is silence
VOICED = 0.5  # f0 confidence above which a frame is voiced
BLOCK_FRAMES = 2500  # 10 s at 250 frames/s per rendering block (and per noise draw)
OFFLINE_FRAMES = 150_000  # 10 min at 250 frames/s: rendered in one pass (~1 GB at most)
TAIL_SECONDS = 0.5  # rendered after a MIDI file's last note off (release and reverb)


@dataclass
class Controls:
    """Curves for one render: ``f0_hz`` / ``loudness_db`` float32 ``[lines, F]`` (lines are
    summed), ``z`` ``[lines, F, D]`` or None, ``notes`` to print, ``silent`` to skip rendering."""

    f0_hz: np.ndarray
    loudness_db: np.ndarray
    z: torch.Tensor | None = None
    notes: list[str] = field(default_factory=list)
    silent: bool = False


def _spans(mask: np.ndarray, frame_rate: float, limit: int = 4) -> str:
    """'1.20-1.56 s, 3.00-3.08 s' for the runs of True frames (at most ``limit``, then 'and
    N more')."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    runs = list(zip(edges[::2], edges[1::2]))
    text = ", ".join(f"{a / frame_rate:.2f}-{b / frame_rate:.2f} s" for a, b in runs[:limit])
    return text + (f" and {len(runs) - limit} more" if len(runs) > limit else "")


def clip_f0(model, f0_hz: np.ndarray, voiced: np.ndarray, what: str
            ) -> tuple[np.ndarray, list[str]]:
    """``f0_hz`` ``[..., F]`` clipped to the model's range; a note naming the seconds where a
    voiced frame was outside it."""
    lo, hi = model.f0_range()
    outside = voiced & ((f0_hz < lo) | (f0_hz > hi))
    notes = []
    if outside.any():
        rate = model.config.frame_rate
        mask = outside.reshape(-1, outside.shape[-1]).any(0)
        notes.append(f"{what}: f0 outside the model's range {lo:.0f}-{hi:.0f} Hz at "
                     f"{_spans(mask, rate)}; clipped to it")
    return np.clip(f0_hz, lo, hi).astype(np.float32), notes


def audio_controls(model, audio: np.ndarray, what: str, pitch_shift: float = 0.0,
                   loudness_shift: float = 0.0, f0_method: str | None = None) -> Controls:
    """Controls of mono ``audio`` at the model's rate (f0 by ``f0_method``, default the model's
    tracker; A-weighted loudness; z from the encoder for ae models), shifted by
    ``pitch_shift`` semitones and ``loudness_shift`` dB. ``what`` names the input in notes."""
    spec = model.frame_features()
    if f0_method is not None:
        spec = dataclasses.replace(spec, f0_method=f0_method)
    f0, conf, loud = example_features(audio, model.config.sample_rate, spec)
    voiced = (conf > VOICED) & (loud > SILENCE_DB)
    if len(loud) == 0 or loud.max() < SILENCE_DB or not voiced.any():
        return Controls(f0[None], loud[None], silent=True,
                        notes=[f"{what}: silent or unvoiced (no pitched frame found); "
                               "writing silence"])
    z = None
    if model.encoder is not None:
        padded = np.zeros(len(f0) * spec.hop, np.float32)
        padded[: len(audio)] = audio
        with torch.no_grad():
            z = model.encode(torch.from_numpy(padded)[None].to(_device(model)))
    f0 = f0 * 2.0 ** (pitch_shift / 12.0)
    f0, notes = clip_f0(model, f0, voiced, what)
    return Controls(f0[None], (loud + loudness_shift)[None].astype(np.float32), z, notes)


def midi_controls(model, path, vibrato: tuple[float, float] = (0.0, 0.0),
                  portamento: float = 0.0) -> Controls:
    """Controls of every monophonic line of the MIDI file ``path`` (see
    :mod:`waveloom.data.midi_controls`); velocity 127 plays at the loudest level the model saw."""
    lines, end = midi_lines(path)
    rate = model.config.frame_rate
    frames = math.ceil((end + TAIL_SECONDS) * rate)
    f0 = np.stack([line_f0(line, frames, rate, vibrato, portamento) for line in lines])
    loud = np.stack([line_loudness(line, frames, rate, model.top_db()) for line in lines])
    f0, notes = clip_f0(model, f0, loud > SILENCE_DB, str(path))
    return Controls(f0, loud, None, notes)


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _noise(batch: int, frames: int, hop: int, generator: torch.Generator,
           device: torch.device) -> torch.Tensor:
    """White noise ``[batch, frames * hop]`` drawn per block of :data:`BLOCK_FRAMES` frames,
    as the stream draws it (so offline and streamed renders hear the same noise)."""
    from waveloom.nn.ddsp.noise import white_noise

    blocks = [white_noise((batch, (min(start + BLOCK_FRAMES, frames) - start) * hop), generator,
                          device) for start in range(0, frames, BLOCK_FRAMES)]
    return torch.cat(blocks, dim=1)


def _render_streamed(model, f0: torch.Tensor, loud: torch.Tensor, z: torch.Tensor | None,
                     generator: torch.Generator) -> torch.Tensor:
    from waveloom.models.ddsp.stream import DDSPStream

    stream = DDSPStream(model, f0.shape[0], generator)
    outs = []
    for start in range(0, f0.shape[1], BLOCK_FRAMES):
        end = min(start + BLOCK_FRAMES, f0.shape[1])
        outs.append(stream.push(f0[:, start:end], loud[:, start:end],
                                None if z is None else z[:, start:end]))
    outs.append(stream.flush())
    return torch.cat(outs, dim=1)


@torch.no_grad()
def render(model, controls: Controls, seed: int = 0, length: int | None = None) -> np.ndarray:
    """Audio float32 ``[length or F * hop]``: the lines rendered (offline up to
    :data:`OFFLINE_FRAMES`, else streamed in blocks) and summed, then scaled down if the sum
    would clip. Silence for a silent input."""
    lines, frames = controls.f0_hz.shape
    total = frames * model.hop if length is None else int(length)
    if controls.silent:
        return np.zeros(total, np.float32)
    dev = _device(model)
    f0 = torch.from_numpy(controls.f0_hz).to(dev)
    loud = torch.from_numpy(controls.loudness_db).to(dev)
    generator = torch.Generator(device=dev).manual_seed(int(seed))
    if frames <= OFFLINE_FRAMES:
        noise = _noise(lines, frames, model.hop, generator, dev)
        out = model.render(f0, loud, controls.z, noise=noise)
    else:
        out = _render_streamed(model, f0, loud, controls.z, generator)
    audio = out.sum(0).float().cpu().numpy()[:total]
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    return audio / peak if peak > 1.0 else audio
