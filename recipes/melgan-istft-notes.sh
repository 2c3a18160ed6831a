#!/usr/bin/env bash
# waveloom/assets/melgan-istft-notes.safetensors, as shipped on 2026-12-06, session 22
# (docs/melgan.md, "The iSTFT source-filter generator"): configs/melgan/istft.yaml (the iSTFT
# source-filter generator with the mel prior) trained from scratch for 6000 steps (batch 8 x
# 8192 samples, lr 1e-3) on the demo notes v4 (six TimGM6mb programs, MIDI 45-79, three
# velocities; 493 training notes) with the multi-scale spectral loss alone: the preset's
# discriminators join at step 6000, so this run never trains them. ~925 s of one shared CPU
# thread.
# Run from the repository root with the venv active (make venv).
set -euo pipefail
test -f cache/demo-notes-v4/cache.json || {
  waveloom data render-notes data/demo-notes-v4 --programs 0,20,24,40,56,73 --pitches 45-79 \
      --velocities 75,100,127
  waveloom prepare data/demo-notes-v4 cache/demo-notes-v4; }
waveloom train configs/melgan/istft.yaml --data cache/demo-notes-v4 --out runs/melgan-istft \
    --threads 1 --max-steps 6000
python scripts/ship_checkpoint.py runs/melgan-istft/model.safetensors \
    waveloom/assets/melgan-istft-notes.safetensors --no-instruments \
    --training "configs/melgan/istft.yaml, 6000 steps from scratch on cache/demo-notes-v4, spectral loss alone. recipes/melgan-istft-notes.sh"
# The held-out judge (FluidR3, a SoundFont it never trained on; 125 notes, crepe-full strict):
test -f cache/heldout-notes-fluid/cache.json || {
  waveloom data render-notes data/heldout-notes-fluid --programs 0,24,40,56,73 --pitches 48-72 \
      --velocities 100 --soundfont /usr/share/sounds/sf2/FluidR3_GM.sf2
  waveloom prepare data/heldout-notes-fluid cache/heldout-notes-fluid; }
python benchmarks/nsynth_ae_eval.py --data cache/heldout-notes-fluid --split train,valid,test \
    --seconds 2 --threads 1 --pitch-estimator crepe-full \
    --model "melgan-istft-notes=waveloom/assets/melgan-istft-notes.safetensors" \
    --model "Griffin-Lim=griffin-lim:waveloom/assets/melgan-istft-notes.safetensors" \
    --kid --out out/melgan-istft-eval --record
