#!/usr/bin/env bash
# One GPU-machine run, most important first, inside a time budget: build against the machine's CUDA
# libtorch; the CUDA tests (tensors, autograd, bf16, DMD iterations in fp32 and bf16, repeatability
# and bit-exact resume with --deterministic, dmd-train and dmd sample on CUDA); parity on CUDA (fp32
# with TF32 off at the CPU tolerances, bf16 at rtol 0.03, TF32 on for information); the benchmarks
# (bench:train prints DMD2's H100 figures beside ours; bench:unet with TF32 off and on; NCCL gradient
# sync; serving on CUDA); then the CPU test suite against this libtorch.
#
#   bash scripts/gpu-check.sh                  # everything, within DMD_GPU_CHECK_SECONDS (default 560)
#   bash scripts/gpu-check.sh test parity      # only these phases (build runs when the addon is missing)
#
# Phases: build test parity bench cputest. Each runs under its own time limit and the whole run stops
# starting phases when the budget is spent. Output goes to $OUT/gpu.log (OUT defaults to /tmp); a
# one-line-per-phase summary with each status and duration ends the log and $OUT/gpu-summary.txt.
# Run it from the package root after npm install, with the CUDA libtorch findable by the build
# (LIBTORCH or CMAKE_PREFIX_PATH, see README "GPU builds").
set -uo pipefail
OUT=${OUT:-/tmp}
budget=${DMD_GPU_CHECK_SECONDS:-560}
start=$(date +%s)
exec > >(tee "$OUT/gpu.log") 2>&1
phases=${*:-build test parity bench cputest}
summary=()
left() { echo $((budget - ($(date +%s) - start))); }

# step NAME LIMIT CMD...: runs CMD under min(LIMIT, budget left); records status and time
step() {
  local name=$1 limit=$2; shift 2
  local l; l=$(left)
  if [ "$l" -lt 20 ]; then summary+=("SKIP $name (time budget spent)"); return 0; fi
  [ "$limit" -gt "$l" ] && limit=$l
  echo; echo "== $name (limit ${limit} s) =="
  local t0=$(date +%s) rc=0
  timeout --kill-after=10 "$limit" "$@" || rc=$?
  local dt=$(( $(date +%s) - t0 ))
  if [ $rc -eq 0 ]; then summary+=("PASS $name (${dt} s)");
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then summary+=("TIMEOUT $name (${dt} s, limit ${limit} s)");
  else summary+=("FAIL $name (exit $rc, ${dt} s)"); fi
  return $rc
}
finish() {
  echo; echo "== summary ($(( $(date +%s) - start )) s of ${budget} s) =="
  printf '%s\n' "${summary[@]}" | tee "$OUT/gpu-summary.txt"
}
trap finish EXIT
has() { [[ " $phases " == *" $1 "* ]]; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
export DMD_BUILD_JOBS=${DMD_BUILD_JOBS:-$(nproc)}
if has build || [ ! -f build/Release/dmd_torch.node ]; then
  rm -rf build
  step build 300 bash -c 'npm run build:native && npm run build:ts' || exit 1
fi
node -e "import('./dist/index.js').then((m) => console.log('addon:', JSON.stringify(m.buildInfo())))"

if has test; then
  # ava's default concurrency would put several CUDA test files on the GPU at once: one at a time
  step test:gpu 240 npx ava test/gpu --serial --concurrency 1 --verbose
fi
if has parity; then
  step parity:fp32 90 npm run test:parity -- --device cuda
  step parity:bf16 90 npm run test:parity -- --device cuda --dtype bfloat16 --rtol 0.03
  step parity:tf32 60 npm run test:parity -- --device cuda --tf32 --rtol 0.01 || echo "(TF32 parity at rtol 0.01 is informational)"
fi
if has bench; then
  step bench:train 150 npm run bench:train
  step bench:train:cudnn-benchmark 120 npm run bench:train -- --preset imagenet64-adm --batch 40 --ratio 5 --dtype bfloat16 --cudnn-benchmark
  step bench:unet 90 npm run bench:unet
  step bench:sample 60 npm run bench:sample
  step bench:dist:nccl 60 env DMD_BENCH_DIST_CUDA=1 npm run bench:dist
  step bench:serve 60 npm run bench:serve -- --device cuda
  step bench:ops 45 npm run bench:ops
fi
if has cputest; then
  # the CPU suite against this libtorch; the CUDA files ran above
  step cputest 300 npx ava test/unit test/native test/parity.test.ts
fi
