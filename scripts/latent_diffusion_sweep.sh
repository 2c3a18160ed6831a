#!/usr/bin/env bash
# Quality and speed against steps of a latent diffusion model of ensemble pieces
# (docs/latent_diffusion.md): for each sampler:steps[:cfg], 4 clips of SECONDS (default 20) per
# ensemble of the model (seed 0), each ensemble one whole `waveloom generate` command (timed,
# start-up included), then the ensemble judged by the nearest real centroid
# (benchmarks/ensemble_timbre.py on REAL's test renders) and KID[crepe-tiny] against REAL's
# test split. One line per setting; each setting's wavs stay in OUT/<setting>/<ensemble>/.
#   bash scripts/latent_diffusion_sweep.sh CKPT OUT [sampler:steps[:cfg] ...]
# Env: REAL (render-midi folder, default data/chorales-timgm-4ens), CACHE (its cache), SECONDS_,
# THREADS (default 2).
# Run from the repository root with the venv active.
set -u
CKPT=$1; OUT=$2; shift 2
REAL=${REAL:-data/chorales-timgm-4ens}; CACHE=${CACHE:-cache/chorales-timgm-4ens}
SECONDS_=${SECONDS_:-20}
SETTINGS=${*:-ddim:6 ddim:12 ddim:25 ddim:50 ddim:100 dpm-solver:25}
ENSEMBLES=$(python -c "
from waveloom.checkpoint import read_extra
print(' '.join(read_extra('$CKPT').get('instruments', [])))")
mkdir -p "$OUT"
for setting in $SETTINGS; do
  IFS=: read -r sampler steps cfg <<< "$setting"; cfg=${cfg:-1}
  dir=$OUT/$sampler-$steps-cfg$cfg; rm -rf "$dir"; t0=$(date +%s.%N)
  for e in $ENSEMBLES; do
    waveloom generate "$CKPT" --n 4 --instrument "$e" --seconds "$SECONDS_" --steps "$steps" \
        --sampler "$sampler" --cfg "$cfg" --seed 0 --plots 0 --out "$dir/$e" -q --threads "${THREADS:-2}" > /dev/null
  done
  t1=$(date +%s.%N)
  rate=$(python -c "n=len('$ENSEMBLES'.split()); print(f'{4*n*$SECONDS_/($t1-$t0):.1f}x real time')")
  timbre=$(python benchmarks/ensemble_timbre.py "$dir" --real "$REAL" --seconds "$SECONDS_" \
      2>&1 | grep '^generated')
  kid=$(waveloom evaluate "$dir" --metrics kid --reference "$CACHE" --reference-split test \
      --clip-seconds "$SECONDS_" -q --threads "${THREADS:-2}" 2>&1 | grep -i -m1 'kid')
  echo "$sampler $steps cfg $cfg | $rate | $timbre | $kid"
done
