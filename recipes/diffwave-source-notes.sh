#!/usr/bin/env bash
# waveloom/assets/diffwave-source-notes.safetensors, as shipped on 2026-12-07, session 24
# (docs/diffwave.md, "The source-filter DiffWave"): configs/diffwave/source.yaml (DiffWave's
# network, 12 layers x 128 channels along frames, denoising the note's envelope: 32 bands of
# partial level, 32 of noise floor and the f0's bend; x0 prediction, T = 1000) trained from
# scratch for 8000 steps (batch 16 x 32768 samples from the onset, lr 5e-4, EMA 0.999) on the
# demo notes v5 (six TimGM6mb programs, MIDI 45-79, five velocities; 837 training notes).
# 3344 s on the 2 shared CPU cores (stopped at step 2827 and resumed with --resume).
# Run from the repository root with the venv active (make venv).
set -euo pipefail
test -f cache/demo-notes-v5/cache.json || {
  waveloom data render-notes data/demo-notes-v5 --programs 0,20,24,40,56,73 --pitches 45-79 \
      --velocities 60,75,90,105,127
  waveloom prepare data/demo-notes-v5 cache/demo-notes-v5; }
waveloom train configs/diffwave/source.yaml --data cache/demo-notes-v5 --out runs/diffwave-vibrato
python scripts/ship_checkpoint.py runs/diffwave-vibrato/model.safetensors \
    waveloom/assets/diffwave-source-notes.safetensors --steps 12 --sampler ddim \
    --training "configs/diffwave/source.yaml, 8000 steps from scratch on cache/demo-notes-v5 (3344 s on 2 shared CPU cores). recipes/diffwave-source-notes.sh"
# Quality and speed against steps and sampler (30 notes each; docs/diffwave.md):
bash scripts/diffwave_sweep.sh runs/diffwave-vibrato/model.safetensors out/dw-sweep
# The card's figures:
A=waveloom/assets/diffwave-source-notes.safetensors
python benchmarks/pitch_grid.py $A --out out/diffwave-grid --low 48 --high 76 --seconds 2 --seed 0 \
    --wavs --record --real data/demo-notes-v5
python benchmarks/note_timbre.py out/diffwave-grid --real data/demo-notes-v5 --seconds 2 \
    --figure docs/img/diffwave-source-s24.png --figure-pitch 62 --record $A
waveloom evaluate $A --metrics kid,kad --reference cache/demo-notes-v5 --reference-split test \
    --n-generate 64 --seconds 2 -q --threads 1 --record
python benchmarks/command_speed.py --seconds 128 --rounds 3 --record $A \
    -- generate $A --n 64 --seconds 2 --pitch 60 --plots 0 --out {out} -q
python benchmarks/diffusion_speed.py $A --steps 6 12 25 50 100 --n 4 --seconds 2 \
    --sampler ddim --rounds 1 --threads 1
python benchmarks/note_variety.py $A --real data/demo-notes-v5
