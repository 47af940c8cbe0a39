#!/usr/bin/env bash
# One GPU-machine run: build against the machine's CUDA libtorch, the CUDA tests, parity on CUDA
# (fp32 with TF32 off at the CPU tolerances, fp32 with TF32 on for information, bf16 at rtol 0.03) and
# the benchmarks (bench:unet times float32 with TF32 off and on; bench:dist the NCCL gradient sync;
# bench:serve on CUDA), all teed to $OUT/gpu.log.
# Run it from the package root on a GPU machine whose CUDA libtorch is found by the build (LIBTORCH or
# CMAKE_PREFIX_PATH, see README "GPU builds"), after npm install: bash scripts/gpu-check.sh
set -uo pipefail
OUT=${OUT:-/tmp}
exec > >(tee "$OUT/gpu.log") 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
rm -rf build && npm run build:native && npm run build:ts || exit 1
npm run test:gpu
npm run test:parity -- --device cuda
npm run test:parity -- --device cuda --tf32 --rtol 0.01 || echo "(TF32 parity at rtol 0.01 is informational)"
npm run test:parity -- --device cuda --dtype bfloat16 --rtol 0.03
npm run bench:ops
npm run bench:unet
npm run bench:sample
npm run bench:train
DMD_BENCH_DIST_CUDA=1 npm run bench:dist
npm run bench:serve -- --device cuda
