#!/usr/bin/env bash
# The DiffWave note model runs of session 17 (issue 25; docs/diffwave.md, "The note model on
# the CPU"): configs/diffwave/notes.yaml (20 layers of 32 channels, pitch and instrument labels,
# the pitch excitation and note clock) from scratch on the demo notes (six TimGM6mb programs,
# MIDI 45-79, three velocities; 493 training notes), one CPU thread each beside another run.
#   A: random-phase excitation, 1679 steps (3789 s), stopped when its curve had flattened;
#   B: onset-phased excitation (model.excitation_phase=onset), stopped at the session's end.
# Neither denoises beyond silence at high noise yet, so neither is shipped; the evaluation
# below the curve is what a model that does would be judged by.
# Run from the repository root with the venv active (make venv).
set -euo pipefail
STEPS=${STEPS:-1700}
test -f cache/demo-notes-v4/cache.json || {
  waveloom data render-notes data/demo-notes-v4 --programs 0,20,24,40,56,73 --pitches 45-79 \
      --velocities 75,100,127
  waveloom prepare data/demo-notes-v4 cache/demo-notes-v4; }
waveloom train configs/diffwave/notes.yaml --data cache/demo-notes-v4 --out runs/diffwave-notes \
    --threads 1 --max-steps "$STEPS"
waveloom train configs/diffwave/notes.yaml --data cache/demo-notes-v4 \
    --out runs/diffwave-notes-onset --threads 1 --max-steps "$STEPS" model.excitation_phase=onset
# the training curve that says whether sampling can work yet (x0 SNR > 0 dB at every t)
for run in runs/diffwave-notes runs/diffwave-notes-onset; do
  python benchmarks/diffusion_denoising.py "$run/model.safetensors" --data cache/demo-notes-v4 \
      --split valid --notes 16
done
CKPT=${CKPT:-runs/diffwave-notes/model.safetensors}
# speed against steps (does not depend on how well it is trained)
python benchmarks/diffusion_speed.py "$CKPT" --steps 6 12 25 50 --n 4 --seconds 2 --rounds 1 \
    --threads 1
# once the curve is above 0 dB: quality against steps, the strict pitch grid and KID
if [ "${JUDGE:-0}" = 1 ]; then
  for steps in 6 12 25 50; do
    python benchmarks/pitch_grid.py "$CKPT" --out "out/diffwave-grid-$steps" --low 48 \
        --high 76 --every 4 --seconds 1 --steps "$steps" --sampler ddpm --seed 0
  done
  waveloom evaluate "$CKPT" --metrics kid,kad --reference cache/demo-notes-v4 \
      --reference-split test --n-generate 64 --seconds 2 --steps 6 --sampler ddpm -q
fi
