#!/usr/bin/env bash
# The GPU check, on a machine with an NVIDIA GPU and the CUDA 13 libraries (no Rust needed there
# when the test binary is built beforehand):
#   here:  cargo test --release --test gpu_device --no-run   (prints the binary's path)
#          copy it to target-gpu/gpu_device (an ignored folder carried to the GPU machine)
#   there: bash scripts/gpu-check.sh [binary]
# Writes gpu-check.json (device, every op on the GPU against its emulation, repeatability, cuBLAS
# TFLOP/s at the conv GEMM shapes, peak GPU memory), gpu-engine.json (the GPU engine against the
# CPU path: one meta-iteration of every MLP algorithm at meta-batch 32, a 50-iteration run through
# the engine on Cuda(0) against the CPU run, two GPU runs bit for bit), gpu-conv.json (the conv net
# on the engine against the CPU path at Omniglot's shapes: conv4-64, 28×28, 5-way 1-shot, 15
# queries, meta-batch 8, FOMAML and second-order MAML) and gpu-bench.json (`metalab bench --device
# cuda`'s rows: seconds per meta-iteration of conv4 FOMAML/MAML 1 and 5 steps at meta-batch 32 and
# of sinusoid MAML, each with the memory estimate, the engine's measured peak and the bytes that
# crossed the bus per meta-iteration each way; and FOMAML 1 step in calls within the default 1 GiB
# budget against whole meta-batches, alternating). It also checks that an inner step on the GPU
# brings back its losses only and steps as the host would (printed, not in a file). Stops after 6
# minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target-gpu/gpu_device}
if ! test -x "$bin"; then
    bin=$(cargo test --release --test gpu_device --no-run 2>&1 | sed -n 's/.*Executable.*(\(.*\))/\1/p' | tail -n1)
fi
export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export METALAB_GPU_CHECK_OUT=${METALAB_GPU_CHECK_OUT:-$PWD/gpu-check.json}
export METALAB_GPU_ENGINE_OUT=${METALAB_GPU_ENGINE_OUT:-$PWD/gpu-engine.json}
export METALAB_GPU_CONV_OUT=${METALAB_GPU_CONV_OUT:-$PWD/gpu-conv.json}
export METALAB_GPU_BENCH_OUT=${METALAB_GPU_BENCH_OUT:-$PWD/gpu-bench.json}
timeout 360 "$bin" --ignored --nocapture --test-threads=1
echo "gpu-check: wrote $METALAB_GPU_CHECK_OUT, $METALAB_GPU_ENGINE_OUT, $METALAB_GPU_CONV_OUT and $METALAB_GPU_BENCH_OUT"
