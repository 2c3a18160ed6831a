#!/usr/bin/env bash
# waveloom/assets/wavenet-gaussian-notes.safetensors, as shipped on 2026-12-05 (docs/wavenet.md):
# configs/wavenet/teacher.yaml (the small demo shape, 32/128 channels, 2 x 9 layers, with
# ClariNet's single discretised Gaussian head, the previous sample as its value, pitch
# excitation, note clock, input noise 2.0) trained from scratch for 10,000 steps on the
# demo notes (six TimGM6mb programs, MIDI 45-79, three velocities; 493 training notes).
# It was run in three pieces on one shared CPU thread, stopped with SIGTERM and resumed
# (resume is exact: docs/reliability.md): 837 steps (461 s, session 13), 1212 (311 s, session
# 14), 7951 (3050 s, session 15): 3822 s of one thread in all. It is also the distillation
# teacher of issue 26 (docs/distillation.md).
# Run from the repository root with the venv active (make venv).
set -euo pipefail
waveloom data render-notes data/demo-notes-v4 --programs 0,20,24,40,56,73 --pitches 45-79 \
    --velocities 75,100,127
waveloom prepare data/demo-notes-v4 cache/demo-notes-v4   # 630 notes; train 493 / valid 69 / test 68
waveloom train configs/wavenet/teacher.yaml --data cache/demo-notes-v4 --out runs/teacher-notes \
    --threads 1
python scripts/ship_checkpoint.py runs/teacher-notes/model.safetensors \
    waveloom/assets/wavenet-gaussian-notes.safetensors \
    --training "configs/wavenet/teacher.yaml on cache/demo-notes-v4, 10000 steps (3822 s of one CPU thread); recipes/wavenet-gaussian-notes.sh"
