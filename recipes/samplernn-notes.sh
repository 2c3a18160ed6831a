#!/usr/bin/env bash
# waveloom/assets/samplernn-notes.safetensors, as shipped on 2026-12-06 (docs/samplernn.md):
# configs/samplernn/notes.yaml (the small three-tier shape, 256 units, with the pitch clock:
# onset-phased pitch excitation, note clock, input noise 2.0), trained from scratch for 1600
# steps (8 consecutive 1024-sample TBPTT windows each: 12,800 updates) on the demo notes v5
# (six TimGM6mb programs, MIDI 45-79, five velocities; 837 training notes). One shared CPU
# thread, 5471 s (--minutes 80 calibrated 1600 steps; a second training run shared the CPU).
# Run from the repository root with the venv active (make venv).
set -euo pipefail
waveloom data render-notes data/demo-notes-v5 --programs 0,20,24,40,56,73 --pitches 45-79 \
    --velocities 60,75,90,105,127
waveloom prepare data/demo-notes-v5 cache/demo-notes-v5   # 1050 notes; train 837
waveloom train configs/samplernn/notes.yaml --data cache/demo-notes-v5 --out runs/samplernn-clock \
    --threads 1 --max-steps 1600
python scripts/ship_checkpoint.py runs/samplernn-clock/model.safetensors \
    waveloom/assets/samplernn-notes.safetensors \
    --training "configs/samplernn/notes.yaml trained from scratch for 1600 steps on cache/demo-notes-v5 (5471 s of one shared CPU thread); recipes/samplernn-notes.sh"
