#!/usr/bin/env bash
# The DiffWave note model (issue 25; docs/diffwave.md, "The note model"): configs/diffwave/notes.yaml
# (20 layers of 32 channels, pitch and instrument labels, the pitch excitation and note clock)
# trained from scratch on the demo notes (six TimGM6mb programs, MIDI 45-79, three velocities;
# 493 training notes) on one CPU thread beside another run, then judged by the strict CREPE
# pitch grid at several step counts, KID against the held-out test notes, and its speed.
# Run from the repository root with the venv active (make venv).
set -euo pipefail
RUN=${RUN:-runs/diffwave-notes}
STEPS=${STEPS:-3400}
test -f cache/demo-notes-v4/cache.json || {
  waveloom data render-notes data/demo-notes-v4 --programs 0,20,24,40,56,73 --pitches 45-79 \
      --velocities 75,100,127
  waveloom prepare data/demo-notes-v4 cache/demo-notes-v4; }
waveloom train configs/diffwave/notes.yaml --data cache/demo-notes-v4 --out "$RUN" --threads 1 \
    --max-steps "$STEPS"
CKPT=$RUN/model.safetensors
# quality against steps: a coarse grid (every 4th pitch, 1-s notes) per step count
for steps in 6 12 25 50; do
  python benchmarks/pitch_grid.py "$CKPT" --out "out/diffwave-grid-$steps" --low 48 --high 76 \
      --every 4 --seconds 1 --steps "$steps" --sampler ddpm --seed 0
done
# the full grid (6 instruments x MIDI 48-76, 2-s notes) at the fast schedule
python benchmarks/pitch_grid.py "$CKPT" --out out/diffwave-grid --low 48 --high 76 --seconds 2 \
    --steps 6 --sampler ddpm --seed 0
waveloom evaluate "$CKPT" --metrics kid,kad --reference cache/demo-notes-v4 \
    --reference-split test --n-generate 64 --seconds 2 --steps 6 --sampler ddpm -q
python benchmarks/diffusion_speed.py "$CKPT" --steps 6 12 25 50 --n 4 --seconds 2
