#!/usr/bin/env bash
# waveloom/assets/nsynth-ae-small-notes.safetensors, as shipped on 2026-12-06 (docs/nsynth_ae.md,
# "A Gaussian head and a colder decoder"): the small NSynth autoencoder with a discretised
# Gaussian head over the 256 mu-law levels, the pitch clock and input-history noise, trained
# from scratch on the demo notes (six TimGM6mb programs), then fine-tuned at half the noise.
# Stage 1 took 13,100 steps in 5350 s and stage 2 3000 steps in 1287 s, each on one CPU thread
# beside another run. It is sampled at temperature 0.5 (recorded in the checkpoint).
# Run from the repository root with the venv active (make venv).
set -euo pipefail
test -f cache/demo-notes-v4/cache.json || {
  waveloom data render-notes data/demo-notes-v4 --programs 0,20,24,40,56,73 --pitches 45-79 \
      --velocities 75,100,127
  waveloom prepare data/demo-notes-v4 cache/demo-notes-v4; }
GAUSS="model.head=gaussian model.mixture_levels=256 model.pitch_excitation=true"
# shellcheck disable=SC2086
waveloom train configs/nsynth_ae/small.yaml --data cache/demo-notes-v4 --out runs/nsae-gauss-256 \
    --threads 1 --max-steps 13100 $GAUSS model.input_noise=1.0
# shellcheck disable=SC2086
waveloom train configs/nsynth_ae/small.yaml --data cache/demo-notes-v4 --out runs/nsae-gauss-256-ft \
    --threads 1 --max-steps 3000 $GAUSS model.input_noise=0.5 \
    train.init_from=runs/nsae-gauss-256/model.safetensors train.lr=5e-4 train.warmup_steps=100
python scripts/ship_checkpoint.py runs/nsae-gauss-256-ft/model.safetensors \
    waveloom/assets/nsynth-ae-small-notes.safetensors --temperature 0.5 \
    --training "see recipes/nsynth-ae-gaussian.sh"
# held-out FluidR3 notes (render them with the command in docs/nsynth_ae.md if absent):
python benchmarks/nsynth_ae_eval.py --data cache/heldout-notes-fluid --split test --seconds 2 \
    --pitch-estimator crepe-full --threads 2 --out out/nsae-eval-asset --temperature 0.5 \
    --model "NSynth AE=waveloom/assets/nsynth-ae-small-notes.safetensors" -q
