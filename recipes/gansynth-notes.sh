#!/usr/bin/env bash
# waveloom/assets/gansynth-notes.safetensors, as shipped on 2026-12-06, session 23
# (docs/gansynth.md, "The source-filter GANSynth"): configs/gansynth/source.yaml (GANSynth's
# progressive-GAN layers and IF-Mel critic, with the source-filter output: the generator paints
# a 64-band envelope, a pulse train at the labelled pitch carries the pitch; envelope loss at
# 2000, critic lr 2e-4) trained from scratch for 3000 steps (batch 8 x 32768 samples, WGAN-GP, lr 8e-4) on the
# demo notes v5 (six TimGM6mb programs, MIDI 45-79, five velocities; 837 training notes).
# 2268 s of one shared CPU thread (a second training run shared the CPU).
# Run from the repository root with the venv active (make venv).
set -euo pipefail
test -f cache/demo-notes-v5/cache.json || {
  waveloom data render-notes data/demo-notes-v5 --programs 0,20,24,40,56,73 --pitches 45-79 \
      --velocities 60,75,90,105,127
  waveloom prepare data/demo-notes-v5 cache/demo-notes-v5; }
waveloom train configs/gansynth/source.yaml --data cache/demo-notes-v5 --out runs/gansynth-source \
    --threads 1 --max-steps 3000
python scripts/ship_checkpoint.py runs/gansynth-source/model.safetensors \
    waveloom/assets/gansynth-notes.safetensors \
    --training "configs/gansynth/source.yaml, 3000 steps from scratch on cache/demo-notes-v5 (2268 s of one shared CPU thread). recipes/gansynth-notes.sh"
# The card's figures:
python benchmarks/pitch_grid.py waveloom/assets/gansynth-notes.safetensors --out out/gansynth-grid \
    --low 48 --high 76 --seconds 2 --seed 0 --wavs --record --real data/demo-notes-v5
python benchmarks/note_timbre.py out/gansynth-grid --real data/demo-notes-v5 --seconds 2 \
    --figure docs/img/gansynth-source-s23.png --figure-pitch 62 \
    --record waveloom/assets/gansynth-notes.safetensors
waveloom evaluate waveloom/assets/gansynth-notes.safetensors --metrics kid,kad --reference cache/demo-notes-v5 \
    --reference-split test --n-generate 64 --seconds 2 -q --threads 1 --record
python benchmarks/command_speed.py --seconds 128 --rounds 3 \
    --record waveloom/assets/gansynth-notes.safetensors \
    -- generate waveloom/assets/gansynth-notes.safetensors --n 64 --seconds 2 --pitch 60 --plots 0 \
    --out {out} -q
