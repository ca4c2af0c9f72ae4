#!/usr/bin/env bash
# The GPU check, on a machine with an NVIDIA GPU and the CUDA 13 libraries (no Rust needed there
# when the test binary is built beforehand):
#   here:  cargo test --release --test gpu_device --no-run   (prints the binary's path)
#          copy it to target-gpu/gpu_device (an ignored folder carried to the GPU machine)
#   there: bash scripts/gpu-check.sh [binary]
# Writes gpu-check.json (device, every op on the GPU against its emulation, repeatability, cuBLAS
# TFLOP/s at the conv GEMM shapes, peak GPU memory) and gpu-engine.json (the GPU engine against the
# CPU path: one meta-iteration of every MLP algorithm at meta-batch 32, a 50-iteration run through
# the engine on Cuda(0) against the CPU run, two GPU runs bit for bit). Stops after 6 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target-gpu/gpu_device}
if ! test -x "$bin"; then
    bin=$(cargo test --release --test gpu_device --no-run 2>&1 | sed -n 's/.*Executable.*(\(.*\))/\1/p' | tail -n1)
fi
export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export METALAB_GPU_CHECK_OUT=${METALAB_GPU_CHECK_OUT:-$PWD/gpu-check.json}
export METALAB_GPU_ENGINE_OUT=${METALAB_GPU_ENGINE_OUT:-$PWD/gpu-engine.json}
timeout 360 "$bin" --ignored --nocapture --test-threads=1
echo "gpu-check: wrote $METALAB_GPU_CHECK_OUT and $METALAB_GPU_ENGINE_OUT"
