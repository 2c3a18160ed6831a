#!/usr/bin/env bash
# The first codec run (docs/codec.md), as run on 2026-12-05: configs/codec/cpu.yaml on the
# chorales rendered by TimGM6mb and the OPL-3 FM SoundFont in four ensembles (34.4 h; the cache
# recipes/transcriber-chorales.sh builds), one shared CPU thread, ~1.1 steps/s.
# Then scored on held-out FluidR3 renders beside Opus and mu-law (benchmarks/codec_eval.py).
# Run from the repository root with the venv active (make venv).
set -euo pipefail
test -f cache/chorales-2font-every/cache.json || {
  echo "build cache/chorales-2font-every first (recipes/transcriber-chorales.sh)"; exit 1; }
waveloom train configs/codec/cpu.yaml --data cache/chorales-2font-every --out runs/codec-cpu \
    --threads 1 train.max_steps=6000
# FluidR3 renders of the chorales (a SoundFont the codec never heard):
test -f cache/chorales-fluid/cache.json || {
  waveloom data render-midi data/chorales-fluid --chorales 371 \
      --soundfont /usr/share/sounds/sf2/FluidR3_GM.sf2
  waveloom prepare data/chorales-fluid cache/chorales-fluid --format maestro; }
python benchmarks/codec_eval.py runs/codec-cpu/model.safetensors cache/chorales-fluid \
    --split test --clips 24 --seconds 5
