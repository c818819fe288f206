#!/usr/bin/env bash
# GPU check (under 5 minutes on an H100): correctness against CPU fp32 and the
# authors' maps, ms per megapixel at fp32 (TF32 convs), bf16 and fp16, peak GPU memory.
#
# Here, once:   mkdir -p .gpucheck && cp -r ../shared/resjnd-official .gpucheck/
#               (.gpucheck/ is git-ignored; carry it to the GPU machine)
# There:        bash benchmarks/gpu_check.sh [OFFICIAL_DIR] [OUT_JSON]
# Needs only torch, numpy, pillow, safetensors, psutil (no pooch/platformdirs: no download).
set -euo pipefail
cd "$(dirname "$0")/.."
OFFICIAL=${1:-.gpucheck/resjnd-official}
OUT_JSON=${2:-${OUT:-.}/gpu_check.json}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
timeout 290 python3 benchmarks/gpu_check.py --official "$OFFICIAL" --device cuda --json "$OUT_JSON"
