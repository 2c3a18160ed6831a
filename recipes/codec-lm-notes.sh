#!/usr/bin/env bash
# The codec token LM on notes (issue 24), once a codec is trained (recipes/codec-cpu-chorales.sh):
# encode the 210 rendered notes of cache/notes-v100 (6 instruments, pitch labels) with the
# codec's first 4 codebooks, train configs/codec_lm/cpu.yaml on them, and draw guided notes.
# Not yet run to the end: the first codec runs are in docs/codec.md.
# Run from the repository root with the venv active (make venv).
set -euo pipefail
CODEC=${CODEC:-runs/codec-cpu/model.safetensors}
test -f cache/notes-v100/cache.json || {
  waveloom data render-notes data/ddsp-ae-src/notes --programs 0,20,24,40,56,73 --pitches 45-79 \
      --velocities 100
  waveloom prepare data/ddsp-ae-src/notes cache/notes-v100; }
waveloom encode-codes "$CODEC" --data cache/notes-v100 --out cache/notes-v100-codes --bandwidth 2
waveloom train configs/codec_lm/cpu.yaml --data cache/notes-v100-codes --out runs/codec-lm-notes \
    --threads 1 model.num_instruments=6
waveloom generate runs/codec-lm-notes/model.safetensors --out out/codec-lm-notes --n 4 \
    --seconds 2 --pitch 60 --instrument string_synthetic_000 --cfg 3 --top-k 250
