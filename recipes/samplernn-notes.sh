#!/usr/bin/env bash
# waveloom/assets/samplernn-notes.safetensors, as shipped on 2026-12-06, session 21 (docs/samplernn.md):
# stage 1 below, then stage 2 (the last two commands).
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
# Stage 2 (session 21): 1500 more steps from stage 1's weights at lr 3e-4 (warm-up 50, cosine);
# run as --minutes 100, which calibrated 1500 steps (5534 s of one shared thread); the step
# count is given here so the schedule is the same on any machine. The string notes,
# 18 of 29 silent after stage 1, all sound after it (docs/samplernn.md).
waveloom train configs/samplernn/notes.yaml --data cache/demo-notes-v5 --out runs/samplernn-clock-more \
    --threads 1 --max-steps 1500 train.init_from=runs/samplernn-clock/model.safetensors \
    train.lr=0.0003 train.warmup_steps=50
python scripts/ship_checkpoint.py runs/samplernn-clock-more/model.safetensors \
    waveloom/assets/samplernn-notes.safetensors \
    --training "Stage 1: configs/samplernn/notes.yaml trained from scratch for 1600 steps on cache/demo-notes-v5 (5471 s of one shared CPU thread). Stage 2 (session 21): 1500 more steps from stage 1's weights at train.lr=3e-4, train.warmup_steps=50, cosine (--minutes 100 calibrated 1500; 5534 s of one shared thread). recipes/samplernn-notes.sh"
