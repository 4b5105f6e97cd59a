#!/usr/bin/env bash
# bash scripts/gpu_check.sh      (on a machine with an NVIDIA GPU, after `make setup`; about 5 minutes on one H200)
# The real-shape smoke on CUDA: Qwen2.5-1.5B's architecture with random weights, LoRA and QLoRA (bitsandbytes 4-bit
# on CUDA) with 1 GPU worker and bf16 (the presets' precision: auto), then predict / score (bf16 and fp32) / evaluate /
# serve on each folder, and the scoring benchmark's --device cuda path. Writes results/bench/gpu_check.{json,md} and
# results/bench/scoring_gpu_check.{json,md}. Fails at once, saying so, where there is no CUDA device.
set -euo pipefail
cd "$(dirname "$0")/.."
export RAY_AUTH_MODE=token HF_HUB_OFFLINE=1
PY=${PY:-.venv/bin/python}
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: no CUDA device (torch.cuda.is_available() is False on $(hostname)); nothing was run" >&2
    exit 2
fi
"$PY" -c 'import torch; print("gpu_check:", torch.cuda.get_device_name(0), "torch", torch.__version__)'
"$PY" -m benchmarks.real_shape --device cuda --workers 1 --strategies label_scoring,classifier --rows 400 \
    --no-tune --work-dir runs/gpu-check --name gpu_check
"$PY" -m benchmarks.scoring --device cuda --quick --name scoring_gpu_check
