#!/usr/bin/env bash
# The small hierarchy (docs/hierarchy.md) on 100 Bach chorales played by TimGM6mb's organ, each
# stage on a wall-clock budget on one thread, then six 30-s pieces for the structure table of
# docs/compose.md (issue 23): level 1 (audio -> 2000 codes/s), its codes, level 2 (-> 250
# codes/s), its codes, the prior over those, the manifest, and the samples.
# Run from the repository root with the venv active. Budgets: L1, L2, PRIOR (minutes).
set -euo pipefail
L1=${L1:-15}
L2=${L2:-12}
PRIOR=${PRIOR:-25}
RUN=${RUN:-runs/hier100}
DATA=${DATA:-cache/chorales100-organ}
test -f "$DATA/cache.json" || {
  waveloom data render-midi data/chorales100-organ --chorales 100 --program organ -q
  waveloom prepare data/chorales100-organ "$DATA" --format maestro -q; }
W="waveloom train --threads 1 -q"
test -f "$RUN/level1/model.safetensors" || \
  $W configs/ada/small.yaml --data "$DATA" --out "$RUN/level1" --minutes "$L1"
test -f "$DATA-codes1/cache.json" || \
  waveloom encode-codes "$RUN/level1/model.safetensors" --data "$DATA" --out "$DATA-codes1"
test -f "$RUN/level2/model.safetensors" || \
  $W configs/ada/small-level2.yaml --data "$DATA-codes1" --out "$RUN/level2" --minutes "$L2"
test -f "$DATA-codes2/cache.json" || \
  waveloom encode-codes "$RUN/level2/model.safetensors" --data "$DATA-codes1" --out "$DATA-codes2"
test -f "$RUN/prior/model.safetensors" || \
  $W configs/code_prior/small.yaml --data "$DATA-codes2" --out "$RUN/prior" --minutes "$PRIOR"
waveloom hierarchy --prior "$RUN/prior/model.safetensors" \
    --levels "$RUN/level2/model.safetensors" "$RUN/level1/model.safetensors" \
    --out "$RUN/hierarchy.json"
waveloom generate "$RUN/hierarchy.json" --out out/structure/hier-wav --n 6 --seconds 30 \
    --instrument organ --threads 1 --seed 0 -q
