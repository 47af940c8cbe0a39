#!/usr/bin/env bash
# One GPU-machine run (see ../shared/device/README.md): build against the machine's CUDA libtorch,
# the CUDA tests, parity on CUDA (fp32 and bf16) and the benchmarks, all teed to $OUT/gpu.log.
#   bash ../shared/device/stage.sh   # here, after npm install
#   run: bash .device/run.sh 'bash scripts/gpu-check.sh'   (carry: [".device"])
set -uo pipefail
OUT=${OUT:-/tmp}
exec > >(tee "$OUT/gpu.log") 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
rm -rf build && npm run build:native && npm run build:ts || exit 1
npm run test:gpu
npm run test:parity -- --device cuda
npm run test:parity -- --device cuda --dtype bfloat16 --rtol 0.03
npm run bench:ops
npm run bench:unet
npm run bench:sample
npm run bench:train
