#!/bin/bash
# The checks that need a CUDA device (issue 25), in one run of a few minutes, from the repository root:
#   1. the GPU tests (tests/test_gpu.py: TF32 and bfloat16 passes against float32 on the device, and
#      ADV2 on the GPU in each precision against the CPU's fp32);
#   2. the attack benchmark on the GPU, fp32 / tf32 / bf16 side by side, for both embedded victims;
#   3. one smoke experiment end to end on the GPU in tf32 (its own store, results-tf32/).
# PYTHON: the interpreter that has torch (default python3); FASHION_MNIST_DIR: the Fashion-MNIST test
# files where Debian's package is not installed; OUT: where the logs go (default gpu-checks/).
# Each step has its own time limit, so one slow step leaves the others' figures.
set -u
PY=${PYTHON:-python3}
OUT=${OUT:-gpu-checks}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 ADV2_RECORD_DIR=${ADV2_RECORD_DIR:-/tmp/adv2-gpu-record}
nvidia-smi -L
$PY -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name())"

echo "== 1. GPU tests"
timeout 180 $PY -m pytest -m gpu tests/test_gpu.py -v -rA -p no:cacheprovider 2>&1 | tee "$OUT/tests.log"

echo "== 2. attack benchmark on the GPU"
for victim in resnet densenet; do
    timeout 140 $PY scripts/bench_attacks.py --device cuda --victim "$victim" --n-images 50 \
        --precision fp32 tf32 bf16 2>&1 | tee "$OUT/bench-$victim.log"
done

echo "== 3. a smoke experiment end to end in tf32"
timeout 60 $PY -m adv2lib experiment main --device cuda --precision tf32 --smoke --n-images 4 --quiet \
    --results-dir /tmp/adv2-gpu-results 2>&1 | tee "$OUT/experiment.log"
ls /tmp/adv2-gpu-results-tf32 && cat /tmp/adv2-gpu-results-tf32/PRECISION
