#!/usr/bin/env bash
# The MelGAN vocoder run of 2026-12-05 (session 12): configs/melgan/cpu.yaml (HiFi-GAN's mel
# loss, a pitch excitation of 8 harmonics at the YIN-tracked f0, 12,000 warm-up steps of the
# generator alone, then the discriminators) on the chorales rendered by three SoundFonts
# (TimGM6mb, the OPL-3 FM bank and csound's GM bank; 4,452 renders, 51.6 h: the cache
# recipes/transcriber-chorales.sh builds), one shared CPU thread, stopped by hand after 27
# minutes (8,416 warm-up steps; docs/melgan.md). It ships as
# waveloom/assets/melgan-chorales.safetensors only if it beats Griffin-Lim (docs/melgan.md).
# Then scored on held-out FluidR3 notes (a SoundFont it never heard) beside Griffin-Lim from
# the same mels, and recorded on its card.
# Run from the repository root with the venv active (make venv).
set -euo pipefail
test -f cache/chorales-3font-every/cache.json || {
  echo "build cache/chorales-3font-every first (recipes/transcriber-chorales.sh)"; exit 1; }
waveloom train configs/melgan/cpu.yaml --data cache/chorales-3font-every --out runs/melgan-cpu \
    --threads 1 --minutes 55
# FluidR3 notes (recipes in docs/ddsp.md build cache/heldout-notes-fluid):
test -f cache/heldout-notes-fluid/cache.json || {
  waveloom data render-notes data/heldout-notes-fluid --programs 0,24,40,56,73 \
      --pitches 48-72 --velocities 100 --soundfont /usr/share/sounds/sf2/FluidR3_GM.sf2
  waveloom prepare data/heldout-notes-fluid cache/heldout-notes-fluid; }
python scripts/ship_checkpoint.py runs/melgan-cpu/model.safetensors \
    waveloom/assets/melgan-chorales.safetensors --no-instruments \
    --training "configs/melgan/cpu.yaml on cache/chorales-3font-every (recipes/melgan-cpu-chorales.sh)"
python benchmarks/nsynth_ae_eval.py --data cache/heldout-notes-fluid --split test --seconds 2 \
    --pitch-estimator crepe-full --threads 1 --out out/melgan-eval \
    --model "MelGAN=waveloom/assets/melgan-chorales.safetensors" \
    --model "Griffin-Lim=griffin-lim:waveloom/assets/melgan-chorales.safetensors" -q --record
