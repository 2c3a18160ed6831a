#!/usr/bin/env bash
# Issue 21 item 2 on a GPU, in one script: the NSynth WaveNet autoencoder at the paper's decoder
# size (configs/nsynth_ae/paper.yaml: 30 layers of 512 channels, 16-dim code every 512 samples),
# with the CPU runs' findings switched on (docs/nsynth_ae.md): the pitch clock, input-history
# noise and a Gaussian head over 16-bit levels. Trains for $MINUTES on the demo notes, then scores
# the 17 held-out FluidR3 notes (a SoundFont never trained on) at several temperatures against
# the shipped CPU model, with the strict pitch judge (crepe-full, 50 cents, octaves count).
#
#   bash recipes/nsynth-ae-gpu.sh                       # here (venv active), or on a lent GPU:
#   run(command="PY=python3 MINUTES=8 bash recipes/nsynth-ae-gpu.sh",
#       carry=["cache/heldout-notes-fluid", ".gpu"])    # the device tool (see below)
#
# Environment: PY (python), MINUTES (training wall time, default 8), OUT (results, default
# out/nsynth-ae-gpu), CONFIG (default configs/nsynth_ae/paper.yaml), TRAIN_CACHE (default
# cache/demo-notes-v4; rendered here when absent: 630 TimGM6mb notes, ~1 min), HELDOUT (default
# cache/heldout-notes-fluid: 16 MB, carried; rendering it needs Debian's FluidR3 SoundFont),
# TEMPERATURES (default "1.0 0.5 0.25"), EXTRA (more key=value overrides).
# The device carries at most 64 MiB, so the 78 MB training cache is rendered there (it needs the
# package's dependencies: wheels in .gpu/wheels are installed first when present).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
MINUTES=${MINUTES:-8}
OUT=${OUT:-out/nsynth-ae-gpu}
CONFIG=${CONFIG:-configs/nsynth_ae/paper.yaml}
TRAIN_CACHE=${TRAIN_CACHE:-cache/demo-notes-v4}
HELDOUT=${HELDOUT:-cache/heldout-notes-fluid}
TEMPERATURES=${TEMPERATURES:-1.0 0.5 0.25}
EXTRA=${EXTRA:-}
RUN=${RUN:-runs/nsynth-ae-gpu}
export PYTHONPATH=$PWD PYTHONWARNINGS=ignore
mkdir -p "$OUT"
if [ -d .gpu/wheels ]; then "$PY" -m pip install -q --no-deps --no-index .gpu/wheels/*.whl; fi
WL() { "$PY" -m waveloom.cli "$@"; }
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
    | tee "$OUT/device.txt"
if [ ! -f "$TRAIN_CACHE/cache.json" ]; then
  WL data render-notes data/demo-notes-v4 --programs 0,20,24,40,56,73 --pitches 45-79 \
      --velocities 75,100,127 -q
  WL prepare data/demo-notes-v4 "$TRAIN_CACHE"
fi
if [ ! -f "$HELDOUT/cache.json" ]; then
  WL data render-notes data/heldout-notes-fluid --programs 0,24,40,56,73 --pitches 48-72 \
      --velocities 100 --soundfont /usr/share/sounds/sf2/FluidR3_GM.sf2 -q
  WL prepare data/heldout-notes-fluid "$HELDOUT"
fi
# shellcheck disable=SC2086  # EXTRA is a list of overrides
( time WL train "$CONFIG" --data "$TRAIN_CACHE" --out "$RUN" --minutes "$MINUTES" -q \
    model.pitch_conditioning=true model.pitch_excitation=true model.input_noise=1.0 \
    model.head=gaussian model.mixture_levels=65536 $EXTRA ) 2>&1 | tail -n 5 | tee "$OUT/train.txt"
cp "$RUN/model.safetensors" "$OUT/" 2>/dev/null || true
for T in $TEMPERATURES; do
  "$PY" benchmarks/nsynth_ae_eval.py --data "$HELDOUT" --split test --seconds 2 \
      --pitch-estimator crepe-full --out "$OUT/eval-T$T" --temperature "$T" -q \
      --model "NSynth AE (this run)=$RUN/model.safetensors" \
      --model "NSynth AE (shipped)=waveloom/assets/nsynth-ae-small-notes.safetensors" \
      > "$OUT/eval-T$T.txt" 2>&1 || echo "evaluation at T=$T failed: see $OUT/eval-T$T.txt"
done
tail -n 6 "$OUT"/eval-T*.txt
