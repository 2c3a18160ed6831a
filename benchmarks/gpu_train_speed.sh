#!/usr/bin/env bash
# Training speed on a GPU, in one go (issue #29): train_speed.py on cuda for wavenet/small and
# wavenet/paper-size at fp32 and bf16-mixed, then train.compile on vs off (paired, one process)
# at both precisions. JSON files go to $OUT when it is set (else ./gpu_train_speed/). Each part
# runs under its own time limit, so the whole script ends within ~8 minutes.
#
#   bash benchmarks/gpu_train_speed.sh
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export PYTHONPATH=${PYTHONPATH:-$PWD}
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_train_speed.sh: no CUDA device visible to torch; run it on a GPU machine" >&2
    exit 2
fi
DEST=${OUT:-gpu_train_speed}
mkdir -p "$DEST"
nvidia-smi --query-gpu=name,memory.total --format=csv > "$DEST/gpu.txt" 2>&1 || true
status=0
run() {  # run LIMIT_S NAME ARGS...: one train_speed.py call, its log and JSON under $DEST
    local limit=$1 name=$2
    shift 2
    echo "== $name"
    timeout "$limit" "$PY" benchmarks/train_speed.py --devices cuda --json "$DEST/$name.json" \
        "$@" 2>&1 | tee "$DEST/$name.log" || status=1
}
for prec in 32 bf16-mixed; do
    run 90 "speed-$prec" --presets wavenet/small wavenet/paper-size --precision "$prec" \
        --rounds 5 --steps 3
done
for prec in 32 bf16-mixed; do
    run 150 "compile-$prec" --compare-compile --presets wavenet/small wavenet/paper-size \
        --precision "$prec" --rounds 5 --steps 3
done
exit $status
