#!/usr/bin/env bash
# The kernels on a GPU compiler without a GPU: NVRTC (the run-time compiler the engine uses)
# compiles every kernel for sm_90, and `ptxas -v` shows no spills and no stack frame in any kernel.
# NVRTC and ptxas come from PyPI's CUDA 13.0 wheels, in a venv under the ignored target/.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=target/gpu-tools
venv=$tools/venv
if ! test -x "$venv/bin/ptxas-ok"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
        "nvidia-cuda-nvrtc==13.0.*" "nvidia-cuda-nvcc==13.0.*"
    touch "$venv/bin/ptxas-ok"
fi
cu=$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13"))')
export LD_LIBRARY_PATH="$cu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
ptxas=$(find "$cu" -name ptxas -type f | head -n1)
test -x "$ptxas" || { echo "gpu-compile-check: no ptxas in the nvidia-cuda-nvcc wheel ($cu)"; exit 1; }

ptx=$tools/ptx
rm -rf "$ptx"
METALAB_PTX_DIR=$PWD/$ptx cargo test --release --test gpu_nvrtc -- --ignored --nocapture

status=0
for f in "$ptx"/*.ptx; do
    report=$("$ptxas" -arch=sm_90 -v -o /dev/null "$f" 2>&1)
    echo "$report" | grep -E "Compiling entry|Used|spill|stack frame"
    # Every kernel: 0 bytes of stack frame and no spill stores or loads.
    if echo "$report" | grep -E "[1-9][0-9]* bytes stack frame|[1-9][0-9]* bytes spill" >/dev/null; then
        echo "gpu-compile-check: $(basename "$f"): a kernel spills or has a stack frame (above)"
        status=1
    fi
done
test "$status" = 0 && echo "gpu-compile-check: every kernel compiles for sm_90 with no spills and no stack frame"
exit "$status"
