#!/usr/bin/env bash
# Run COMMAND as if on the issue's machine kind (AVX2 + FMA, no AVX-512): builds the CPUID
# shim benches/peers/avx2_only.c into target/avx2_only.so once and preloads it. Every library
# in the process (ONNX Runtime, oneDNN, MKL, ATen, modelc's own detection) then picks its AVX2
# kernels. Needs a CPU with the cpuid_fault flag (see /proc/cpuinfo).
#
# Usage (from the project root): benches/peers/avx2_only.sh COMMAND [ARGS...]
#   e.g. benches/peers/avx2_only.sh ~/.cache/modelc-peers/bin/python \
#            ../shared/peers/side_by_side.py target/release/modelc 5 infer train
set -euo pipefail
if [ $# -lt 1 ]; then
    sed -n '2,9p' "$0" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
shim=$here/../../target/avx2_only.so
if [ ! -e "$shim" ] || [ "$here/avx2_only.c" -nt "$shim" ]; then
    mkdir -p "$(dirname "$shim")"
    cc -O2 -shared -fPIC -o "$shim" "$here/avx2_only.c"
fi
export LD_PRELOAD=$shim${LD_PRELOAD:+:$LD_PRELOAD}
exec "$@"
