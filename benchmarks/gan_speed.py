"""How fast the adversarial families sample on one CPU thread, each family's ``small`` preset.

For WaveGAN, SpecGAN and GANSynth: ``sample(model, n, clip)`` end to end (latents, generator,
and the inversion to audio: none for WaveGAN, fast Griffin-Lim for SpecGAN, the exact iSTFT of
GANSynth's IF). For MelGAN: ``model.vocode(mel)`` of the log mel of ``--seconds`` of audio,
the paper's "mel -> waveform" number (Kumar et al. 2019 claim more than 2x real time on a CPU
for their 512-channel generator at 22.05 kHz: the ``paper`` rows, timed with ``--paper``, are
that model). Random weights: speed does not depend on them.

Printed per row: samples/s (all clips together), the real-time factor (audio seconds per wall
second, at the preset's sample rate; "x RT (cpu)" is the same per CPU second, what the code
costs on a machine whose other jobs steal wall time) and CPU seconds beside wall seconds of the
best of ``--repeats`` runs. One thread, so the numbers do not depend on what else runs on the other
cores (``--threads`` to change).

    .venv/bin/python benchmarks/gan_speed.py [--n 1 8] [--seconds 1.0] [--repeats 3] [--paper]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from waveloom.config import SamplingOptions
from waveloom.device import set_threads
from waveloom.models.load import load_config
from waveloom.models.registry import build_model
from waveloom.sampling.sample import sample

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def timed(fn, repeats: int) -> tuple[float, float]:
    """(best wall seconds, CPU seconds of that run) over ``repeats`` calls, after a warm-up."""
    fn()
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        best = min(best, (time.perf_counter() - t0, time.process_time() - c0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1, 8], help="clips per call")
    ap.add_argument("--seconds", type=float, default=1.0, help="MelGAN: audio per mel")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--paper", action="store_true", help="also time the paper presets")
    args = ap.parse_args()
    set_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"{'family/preset':<18}{'n':>4}{'clip s':>8}{'params':>10}{'samples/s':>14}"
          f"{'x real time':>13}{'x RT (cpu)':>12}{'wall s':>9}{'cpu s':>9}")
    presets = ["small", "paper"] if args.paper else ["small"]
    for family in ("wavegan", "specgan", "gansynth", "melgan"):
        for preset in presets:
            run = load_config(CONFIGS / family / f"{preset}.yaml")
            model = build_model(run).eval()
            sr = model.config.sample_rate
            params = sum(p.numel() for p in model.generator.parameters())
            for n in args.n:
                with torch.inference_mode():
                    if family == "melgan":
                        audio = torch.randn(n, int(args.seconds * sr)) * 0.1
                        mel = model.mel(audio)
                        length = model.vocode(mel).shape[-1]

                        def fn(mel=mel, model=model):
                            return model.vocode(mel)
                    else:
                        length = model.config.length

                        def fn(n=n, length=length, model=model):
                            return sample(model, n, length, {"pitch": torch.tensor([60])},
                                          SamplingOptions(seed=0, progress=False))
                    wall, cpu = timed(fn, args.repeats)
                rate = n * length / wall
                print(f"{family + '/' + preset:<18}{n:>4}{length / sr:>8.2f}{params / 1e6:>9.2f}M"
                      f"{rate:>14,.0f}{rate / sr:>13.1f}{n * length / sr / cpu:>12.1f}"
                      f"{wall:>9.3f}{cpu:>9.3f}")


if __name__ == "__main__":
    main()
