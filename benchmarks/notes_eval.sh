#!/usr/bin/env bash
# Generated notes against real rendered notes, with the evaluation suite (issue 10, item 5):
# fad[crepe-tiny], pitch accuracy (crepe-tiny, 50 cents) and NDB (log-mel, k bins), each with
# bootstrap intervals, for the real test notes (the floor: what "as good as real" scores) and
# for every checkpoint given (GANs, the WaveNet demo model, ...).
#
# Every clip, generated or real, is judged on its first $CLIP seconds (GANs make ~1 s notes,
# the rendered notes last 4 s). Conditioned checkpoints draw their pitch/instrument labels from
# the reference (the train split), so the generated set has the reference's label mix.
#
# Usage: bash benchmarks/notes_eval.sh OUT_DIR CKPT [CKPT ...]
#   CACHE (default cache/demo-notes-v3), N (notes per checkpoint, default 128),
#   CLIP (seconds, default 1.0), K (NDB bins, default 10)
# Prints each row's report; every number lands in OUT_DIR/<row>.json, the notes in OUT_DIR/<row>/.
set -eu
OUT=$1
shift
CACHE=${CACHE:-cache/demo-notes-v3}
N=${N:-128}
CLIP=${CLIP:-1.0}
K=${K:-10}
W=${W:-.venv/bin/waveloom}
mkdir -p "$OUT"
COMMON=(--reference "$CACHE" --reference-split train --clip-seconds "$CLIP"
        --metrics fad,pitch,ndb --ndb-k "$K" --bootstrap 1000 -q)
echo "== real test notes"
$W evaluate "$CACHE" --split test "${COMMON[@]}" --json "$OUT/real-test.json"
for ckpt in "$@"; do
  name=$(basename "$(dirname "$ckpt")")-$(basename "$ckpt" .safetensors)
  echo "== $ckpt"
  $W evaluate "$ckpt" "${COMMON[@]}" --n-generate "$N" --seconds "$CLIP" \
      --generated-out "$OUT/$name" --json "$OUT/$name.json"
done
