#!/usr/bin/env bash
# Everything measured on a GPU, in one run, as done on the `device` machine (python3 there holds
# torch with CUDA; the few packages it lacks are installed from wheels in .gpu/wheels if present):
#   1. trains the demo WaveNet (small preset, GPU batch) for $MINUTES in the background,
#   2. meanwhile the CUDA tests (trainer in bf16, CUDA-graph sampling) and the nsynth memory table,
#   3. after training, the sampling benchmark (cuda eager vs CUDA graphs, batch 1/16/256).
# Usage: OUT=out/gpu MINUTES=4 [CACHE=cache/demo-notes] bash benchmarks/gpu_check.sh
# The device tool carries at most 64 MiB: the 210-note cache (26 MB) fits, the 630-note
# cache/demo-notes-v3 (78 MB) does not (render it there instead: carry the tinysoundfont wheel).
set -u
OUT=${OUT:-out/gpu}
MINUTES=${MINUTES:-4}
CACHE=${CACHE:-cache/demo-notes}
PY=${PY:-python3}
mkdir -p "$OUT"
if [ -d .gpu/wheels ]; then $PY -m pip install -q --no-deps --no-index .gpu/wheels/*.whl; fi
export PYTHONPATH=$PWD PYTHONWARNINGS=ignore
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" >> "$OUT/gpu.txt" 2>&1
TRAIN=
if [ -d "$CACHE" ]; then
  ( time $PY -m waveloom.cli train configs/wavenet/small.yaml --data "$CACHE" \
      --out runs/demo-gpu --minutes "$MINUTES" -q data.batch_size=32 data.window=4096 ) \
      > "$OUT/train.txt" 2>&1 &
  TRAIN=$!
fi
timeout 300 $PY -m pytest -q -p no:cacheprovider -rs -s tests/test_train_cuda.py \
    tests/test_sampling_cuda.py > "$OUT/tests.txt" 2>&1
timeout 150 $PY benchmarks/memory.py --preset configs/wavenet/nsynth.yaml --device cuda \
    > "$OUT/memory.txt" 2>&1
if [ -n "$TRAIN" ]; then
  wait "$TRAIN"
  cp runs/demo-gpu/model.safetensors "$OUT/demo.safetensors" 2>/dev/null
  cp runs/demo-gpu/tb/events* "$OUT/" 2>/dev/null
fi
timeout 240 $PY benchmarks/sampling.py --presets small nsynth --batches 1 16 256 \
    --engines cuda-graph --repeats 2 --budget 1 --no-accuracy > "$OUT/sampling.txt" 2>&1
tail -n 5 "$OUT"/*.txt
