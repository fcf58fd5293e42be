#!/usr/bin/env bash
# The GPU check: the GPU suite (tests/test_cuda.py), the search benchmark on the GPU, then a short quality run on Fashion-MNIST; under 10 minutes on one GPU.
# Usage: tools/gpu_check.sh [OUT_DIR]   (logs and the quality table go there; default bench/out/gpu)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/out/gpu}; mkdir -p "$out"
export MPLBACKEND=Agg PYTHONUNBUFFERED=1
python - <<'PY' 2>&1 | tee "$out/machine.txt" || exit 1
import torch, fastai, platform
assert torch.cuda.is_available(), 'no CUDA: tools/gpu_check.sh needs a GPU'
print('torch', torch.__version__, 'fastai', fastai.__version__, '|', torch.cuda.device_count(), 'x', torch.cuda.get_device_name(0),
      '| host CPU', platform.processor() or platform.machine(), torch.backends.cpu.get_cpu_capability())
PY
python -m pytest -q -rs -s tests/test_cuda.py -p no:cacheprovider --durations=15 2>&1 | tee "$out/test_cuda.log"
rc=${PIPESTATUS[0]}
# the search on the GPU against the host CPU's default and pml + faiss (issue 17: target at least 10x the CPU's speed)
(cd bench && timeout 240 python retrieval.py --methods pml,torch,cuda --rounds 1) 2>&1 | tee "$out/retrieval.log"
if python -c "from fastai_metric.data import fashion_mnist; fashion_mnist()" >/dev/null 2>&1; then
  timeout 300 python bench/quality.py --epochs 2 --per-class 1000 --methods softmax arcface center_loss triplet_memory \
    --no-mnist --section gpu_quick --out "$out" 2>&1 | tee "$out/quality.log"
else
  echo "Fashion-MNIST not found: quality run skipped (apt-get install dataset-fashion-mnist)" | tee "$out/quality.log"
fi
exit "$rc"
