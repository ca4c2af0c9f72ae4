#!/usr/bin/env bash
# Build the real CUDA binary (`--features cuda`) on a machine with no GPU, no driver and no
# CUDA toolkit, so that link errors in the CUDA build are caught on every landing.
#
# The toolkit comes from PyPI's CUDA 13 wheels (nvcc, NVRTC, cuBLAS, cuRAND); cudarc's build
# script asks `nvidia-smi` for the compute capability, so a two-line stand-in answers 9.0
# (Hopper); the link needs a libcuda, so a stub exporting the driver symbols cudarc declares
# stands in for it (the real one is loaded from the driver at run time). Recipe and the
# failure modes it avoids: shared/notes/cuda-build.md.
#
# Output: target/metalab-cuda (stripped). Exit 0 when built; when the wheels cannot be
# downloaded (no registry) it says "skipped" and only type-checks the CUDA build (which needs no
# toolkit); any build, link or type error fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD/target/cuda-toolkit
mkdir -p "$root"

if [ ! -x "$root/venv/bin/python" ]; then
    python3 -m venv "$root/venv"
fi
if ! "$root/venv/bin/pip" install -q --disable-pip-version-check \
    "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-crt==13.0.*" "nvidia-nvvm==13.0.*" \
    "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-nvrtc==13.0.*" "nvidia-cublas==13.0.*" \
    "nvidia-curand==10.4.0.*" "nvidia-cuda-cccl==13.0.*"; then
    echo "cuda build: skipped: the CUDA 13 wheels could not be installed from PyPI; type-checking instead"
    cargo check --features cuda,dfdx/ci-check
    exit 0
fi
cu=$("$root/venv/bin/python" -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13"))')

tk=$root/cuda
rm -rf "$tk" && mkdir -p "$tk/lib" "$tk/bin"
ln -s "$cu/include" "$tk/include"
for f in "$cu"/lib/*.so.*; do ln -s "$f" "$tk/lib/"; done
(cd "$tk/lib" && ln -s libcublas.so.13 libcublas.so && ln -s libcublasLt.so.13 libcublasLt.so \
    && ln -s libnvrtc.so.13 libnvrtc.so && ln -s libcurand.so.10 libcurand.so)
printf '#!/bin/sh\necho compute_cap\necho 9.0\n' > "$tk/bin/nvidia-smi"
chmod +x "$tk/bin/nvidia-smi"

# The stub: every driver function cudarc's bindings declare, exported from a libcuda.so.1.
sys=$(cargo metadata --format-version 1 2>/dev/null \
    | python3 -c 'import json,sys; m=json.load(sys.stdin); print(next(p["manifest_path"] for p in m["packages"] if p["name"]=="cudarc"))' \
    | xargs dirname)/src/driver/sys.rs
grep -oE "pub fn cu[A-Za-z0-9_]+" "$sys" | awk '{print "void "$3"(void){}"}' | sort -u > "$root/cuda_stub.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$tk/lib/libcuda.so" "$root/cuda_stub.c"

export CUDA_ROOT=$tk PATH=$tk/bin:$cu/bin:$PATH
cargo build --release --features cuda
strip -o target/metalab-cuda target/release/metalab
# Put the CPU build back where `cargo test --release` and the README expect it.
cargo build --release

needed=$(readelf -d target/metalab-cuda | grep NEEDED)
for lib in libcuda.so.1 libnvrtc.so.13 libcublas.so.13; do
    grep -q "$lib" <<<"$needed" || { echo "cuda build: target/metalab-cuda does not link $lib"; exit 1; }
done
echo "cuda build: target/metalab-cuda ($(du -h target/metalab-cuda | cut -f1), links libcuda.so.1, libnvrtc.so.13, libcublas.so.13; PTX for sm_90)"
