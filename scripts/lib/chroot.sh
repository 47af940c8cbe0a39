# Shared by scripts/test-libtorch2.sh and scripts/test-cuda-build.sh (source it; needs root): a Debian
# chroot made once by debootstrap and kept for later runs, bind mounts that are always undone on exit,
# the working tree copied in, and ava's counts read back from its output.

# The test files that run inside a chroot: the unit tests and the native files that exercise libtorch
# (tensors, autograd, modules, optimisers, files, the trainers, multi-process runs, SD, parity).
CHROOT_TESTS="test/unit test/native/tensor.test.ts test/native/autograd.test.ts test/native/module.test.ts test/native/optim.test.ts
  test/native/random.test.ts test/native/serialize.test.ts test/native/memory.test.ts test/native/errors.test.ts test/native/distributed.test.ts
  test/native/dmd.test.ts test/native/cli.test.ts test/native/checkpoint.test.ts test/parity.test.ts
  test/native/sd.test.ts test/native/pytorch-files.test.ts test/native/dmd-golden.test.ts test/native/dmd-toy.test.ts test/native/dist-hardening.test.ts
  test/native/no-cuda-device.test.ts test/native/sd-dmd-train.test.ts test/native/sd-pairs.test.ts test/native/sd-eval.test.ts test/native/clip-score.test.ts test/native/sd-gan.test.ts test/native/sd-teacher.test.ts"

# The selection for the CUDA-built addon (scripts/test-cuda-build.sh), which runs after the CPU build of
# the same libtorch version has passed CHROOT_TESTS: what a CUDA build changes without a device, namely
# tensors and their devices, autograd, modules, optimisers, random generators, files, the error boundary,
# device resolution ('auto' falls back to the CPU), the c10d backend choice with NCCL linked, a seeded
# dmd-train run bit for bit (dmd-golden), the parity fixtures and the GPU tests (which must skip). The
# trainers' and SD's other tests exercise no device-specific code beyond what these reach.
CUDA_CHROOT_TESTS="test/unit test/native/tensor.test.ts test/native/autograd.test.ts test/native/module.test.ts test/native/optim.test.ts
  test/native/random.test.ts test/native/serialize.test.ts test/native/errors.test.ts test/native/distributed.test.ts test/native/no-cuda-device.test.ts
  test/native/dmd-golden.test.ts test/native/dmd-toy.test.ts test/native/sd-pairs.test.ts test/parity.test.ts test/gpu"

# chroot_isa_env: the oneDNN ISA limit (ONEDNN_MAX_CPU_ISA=..., empty on a CPU without AVX-512) to give
# node in a chroot: Debian 13's oneDNN 3.7 gives NaN on AVX-512 CPUs. src/native.ts sets the limit for
# the main thread, but ava runs its files in worker threads, where process.env is a copy: set it before node.
chroot_isa_env() {
  grep -qw avx512f /proc/cpuinfo && echo "ONEDNN_MAX_CPU_ISA=${ONEDNN_MAX_CPU_ISA:-SSE41}"
  return 0
}

chroot_mounts=()
chroot_cleanup() { for ((i = ${#chroot_mounts[@]} - 1; i >= 0; i--)); do umount -l "${chroot_mounts[$i]}" 2>/dev/null; done; chroot_mounts=(); }
trap chroot_cleanup EXIT

# chroot_release ROOT: undo mounts left under ROOT by an earlier run that was killed (so that a later
# rm -rf of the chroot can never reach through a bind mount into this machine's files)
chroot_release() {
  local root=$1 m
  for m in $(awk -v r="$root/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null; done
  ! awk -v r="$root/" 'index($2, r) == 1 {found = 1} END {exit !found}' /proc/mounts
}

# chroot_bind ROOT PATH [TARGET] [ro]: PATH of this machine at TARGET (default: the same path) in ROOT
chroot_bind() {
  local root=$1 from=$2 to=${3:-$2} mode=${4:-rw}
  mkdir -p "$root$to"
  mountpoint -q "$root$to" && return 0
  mount --bind "$from" "$root$to" || return 1
  chroot_mounts+=("$root$to")
  [ "$mode" = ro ] && mount -o remount,bind,ro "$root$to"
  return 0
}

# chroot_system_mounts ROOT: /proc, /sys, /dev, /dev/pts, the datasets, and name resolution
chroot_system_mounts() {
  local root=$1
  chroot_release "$root" || { echo "mounts under $root left by an earlier run could not be undone"; return 1; }
  chroot_bind "$root" /proc && chroot_bind "$root" /sys && chroot_bind "$root" /dev && chroot_bind "$root" /dev/pts || return 1
  [ -d /usr/share/datasets ] && { chroot_bind "$root" /usr/share/datasets /usr/share/datasets ro || return 1; }
  cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null
  return 0
}

# chroot_make ROOT SUITE MIRROR COMPONENTS PACKAGES LOG [DEB_CACHE]: debootstrap a minimal chroot
chroot_make() {
  local root=$1 suite=$2 mirror=$3 components=$4 packages=$5 log=$6 cache=${7:-}
  local extra=()
  if [ -n "$cache" ]; then mkdir -p "$cache" && extra=(--cache-dir="$cache"); fi
  chroot_release "$root" || { echo "mounts under $root could not be undone; not removing it" >"$log"; return 1; }
  rm -rf "$root"
  debootstrap --variant=minbase --components="$components" --include="$packages" "${extra[@]}" "$suite" "$root" "$mirror" >"$log" 2>&1
}

# chroot_copy_tree SRC ROOT [RSYNC OPTIONS...]: the working tree at ROOT/work (build outputs and git left out)
chroot_copy_tree() {
  local src=$1 root=$2
  shift 2
  rsync -a --delete --exclude /build --exclude /dist --exclude /.git --exclude /.device "$@" "$src/" "$root/work/"
}

# ava_counts LOG: "PASSED FAILED" from ava's summary (failures include uncaught exceptions and rejections)
ava_counts() {
  local log=$1 p f u
  p=$(grep -Eo '^ *[0-9]+ tests? passed' "$log" | grep -Eo '[0-9]+' | tail -1)
  # with failures ava prints no passed count: count the ticks
  [ -n "$p" ] || p=$(grep -c '^ *✔' "$log")
  f=$(grep -Eo '^ *[0-9]+ (tests?|known failures?) failed|^ *[0-9]+ tests? failed' "$log" | grep -Eo '^ *[0-9]+' | awk '{s+=$1} END {print s+0}')
  u=$(grep -Eo '^ *[0-9]+ (uncaught exceptions?|unhandled rejections?)' "$log" | grep -Eo '^ *[0-9]+' | awk '{s+=$1} END {print s+0}')
  echo "${p:-0} $((f + u))"
}
