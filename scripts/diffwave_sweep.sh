#!/usr/bin/env bash
# Quality against steps and sampler of a diffusion note model (docs/diffwave.md): for each
# sampler:steps, 30 notes (the model's instruments x MIDI 48..76 every 7, 2 s, seed 0) judged
# for pitch by strict crepe-full (benchmarks/pitch_grid.py) and for instrument by the nearest
# real render (benchmarks/note_timbre.py). One line per setting.
#   bash scripts/diffwave_sweep.sh CKPT OUT [sampler:steps ...]
# Run from the repository root with the venv active.
set -u
CKPT=$1; OUT=$2; shift 2
SETTINGS=${*:-ddim:6 ddim:12 ddim:25 ddim:50 ddim:100 dpm-solver:6 dpm-solver:12 dpm-solver:25 dpm-solver:50 dpm-solver:100 ddpm:100}
mkdir -p "$OUT"
for setting in $SETTINGS; do
  sampler=${setting%%:*}; steps=${setting##*:}; dir=$OUT/$sampler-$steps
  python benchmarks/pitch_grid.py "$CKPT" --out "$dir" --low 48 --high 76 --every 7 --seconds 2 \
      --seed 0 --steps "$steps" --sampler "$sampler" --wavs > "$dir.pitch.log" 2>&1
  python benchmarks/note_timbre.py "$dir" --real data/demo-notes-v5 --seconds 2 \
      > "$dir.timbre.log" 2>&1
  echo "$sampler $steps | $(grep -m1 'errors' "$dir.pitch.log") | $(grep '^generated' "$dir.timbre.log")"
done
