"""The demo page's vocoder section: reference notes -> their log mel -> audio, two ways.

Each reference note the demo rendered (one per instrument at MIDI 60) is turned into the
vocoder's log mel and back into audio by the shipped MelGAN and, beside it, by the network-free
baseline on the same mel (NNLS magnitude + fast Griffin-Lim, :mod:`waveloom.audio.mel_inversion`).
The page states each resynthesis's multi-scale spectral distance to the original, so a listener
can tell how close each one came and not only hear it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

#: Seconds of each reference note resynthesised.
SECONDS = 2.0


def vocoder_section(ckpt: Path, data_dir: Path, examples: dict, out: Path,
                    section: Callable[..., str]) -> str:
    """Resynthesise the demo's MIDI-60 notes with ``ckpt`` and with Griffin-Lim; the HTML."""
    import numpy as np
    import torch

    from waveloom.audio.io import load_audio, save_audio
    from waveloom.audio.spectral import multiscale_spectral_distance
    from waveloom.config import SamplingOptions
    from waveloom.models.load import load_checkpoint
    from waveloom.sampling.sample import sample

    model, run = load_checkpoint(ckpt, "cpu")
    sr, features = run.data.sample_rate, model.mel_features
    folder = out / "vocoder"
    items, scores = [], {}
    for name in sorted(n for n in examples if examples[n]["pitch"] == 60):
        audio, _ = load_audio(data_dir / "audio" / f"{name}.wav", sr)
        clip = torch.from_numpy(audio[: int(SECONDS * sr)])[None]
        mel = features(clip)
        with torch.no_grad():  # resynthesis: an excited MelGAN also tracks the note's f0
            resynth = sample(model, 1, clip.shape[-1], {"audio": clip},
                             SamplingOptions(progress=False))
            ways = {"MelGAN": resynth[0],
                    "Griffin-Lim": features.griffin_lim(mel)[0]}
        scores[name] = {}
        for way, wav in ways.items():
            wav = wav[: clip.shape[-1]]
            path = save_audio(folder / f"{name}-{way.lower()}.wav", wav.numpy(), sr)
            distance = float(multiscale_spectral_distance(wav[None], clip[:, : len(wav)])[0])
            scores[name][way] = round(distance, 2)
            items.append((f"{name}: {way} (spectral distance {distance:.2f})", path, None))
        items.append((f"{name}: original", save_audio(folder / f"{name}.wav",
                                                      clip[0].numpy(), sr), None))
    (folder / "distances.json").write_text(json.dumps(scores, indent=1) + "\n")
    mean = {way: float(np.mean([s[way] for s in scores.values()])) for way in ("MelGAN",
                                                                              "Griffin-Lim")}
    note = (f"Each MIDI-60 reference note -> its log mel -> audio, by {ckpt.stem} and by "
            "Griffin-Lim from the same mel. Mean multi-scale spectral distance to the original "
            f"(lower is closer): MelGAN {mean['MelGAN']:.2f}, Griffin-Lim "
            f"{mean['Griffin-Lim']:.2f}.")
    return section(f"Vocoder ({ckpt.name})", items, out, note)
