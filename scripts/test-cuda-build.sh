#!/usr/bin/env bash
# The CUDA build of the addon, compiled, linked and loaded for real on a machine without a GPU: a Debian
# trixie chroot with Debian's CUDA PyTorch (libtorch-cuda-dev 2.6, CUDA 12.4 from nvidia-cuda-dev and
# nvidia-cuda-toolkit, NCCL from libnccl-dev, the driver's libcuda1), where the README's install command
# (`npm install`) builds the addon in CUDA mode with the NCCL backend; the node-gyp build of binding.gyp
# is made too. scripts/check-addon.mjs confirms that libtorch_cuda and NCCL are linked, then the tests of
# what a CUDA build changes (CUDA_CHROOT_TESTS) run through the CUDA-built addon (without a device it
# must behave exactly like a CPU build), with the GPU tests, which must skip saying "CUDA build, no
# device visible".
#
#   sudo bash scripts/test-cuda-build.sh            # CUDA_CHROOT_TESTS of scripts/lib/chroot.sh (includes test/gpu)
#   sudo bash scripts/test-cuda-build.sh all        # CHROOT_TESTS + test/gpu, the libtorch 2.x selection
#   sudo bash scripts/test-cuda-build.sh test/unit  # these ava files or folders
#   DMD_CUDA_GYP=0 ...                              # leave out the node-gyp build (about 10 min on 2 cores)
#
# cuDNN: libtorch-cuda-2.6 depends on nvidia-cudnn, which in Debian is an installer that downloads cuDNN
# from NVIDIA (not reachable here). A local package named nvidia-cudnn satisfies the dependency, and
# scripts/lib/cudnn-standin.sh generates a TEST STAND-IN libcudnn.so.9 (every function fails) so that
# libtorch_cuda.so, linked with BIND_NOW, can be loaded. Both exist only inside this chroot.
#
# Needs root, debootstrap, rsync, dpkg-deb, and network access to deb.debian.org (about 2.7 GB of .debs
# the first time) and to the npm registry (or a warm npm cache). The downloaded .debs and the chroot are
# kept under /var/cache/dmd-torch/ ($DMD_CUDA_CACHE) for later runs; the working tree is copied in each
# time. Last line: "cuda-build: linked torch_cuda+nccl, loaded, N passed, N failed". Exit status 0 when
# everything passed, 3 when the chroot could not be made (network), otherwise 1 (2: missing tools).
set -uo pipefail
cd "$(dirname "$0")/.."
src=$PWD
cache=${DMD_CUDA_CACHE:-/var/cache/dmd-torch}
root=$cache/cuda-trixie
debs=$cache/debs
mirror=${DMD_LT2_MIRROR:-http://deb.debian.org/debian}
jobs=${DMD_BUILD_JOBS:-$(nproc)}
log=${TMPDIR:-/tmp}/dmd-cuda-build
mkdir -p "$log"
# shellcheck source=lib/chroot.sh
. "$src/scripts/lib/chroot.sh"
tests=${*:-$CUDA_CHROOT_TESTS}
[ "$tests" = all ] && tests="$CHROOT_TESTS test/gpu"
CUDA_PACKAGES="libtorch-cuda-dev libgloo-cuda-dev nvidia-cuda-dev nvidia-cuda-toolkit libcu++-dev libcub-dev libnccl-dev libcuda1"
t_start=$(date +%s)
say() { echo "== $* ($(($(date +%s) - t_start)) s) =="; }
finish() { # status linked loaded passed failed
  echo "cuda-build: $2, $3, $4 passed, $5 failed"
  exit "$1"
}

[ "$(id -u)" -eq 0 ] || { echo "test-cuda-build: needs root (debootstrap and chroot)"; exit 2; }
for tool in debootstrap rsync dpkg-deb; do command -v $tool >/dev/null || { echo "test-cuda-build: needs $tool (apt-get install debootstrap rsync dpkg-dev)"; exit 2; }; done
npm_cli=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
[ -f "$npm_cli/bin/npm-cli.js" ] || { echo "test-cuda-build: npm not found (needs npm on PATH)"; exit 2; }
npm_cache=$(npm config get cache 2>/dev/null || echo "$HOME/.npm")
mkdir -p "$npm_cache"

make_chroot() {
  say "making the trixie chroot with Debian's CUDA PyTorch in $root (cold: several minutes, about 2.7 GB of .debs)"
  chroot_make "$root" trixie "$mirror" main,contrib,non-free g++,cmake,make,nodejs,libnode-dev,python3,ca-certificates,binutils \
    "$log/debootstrap.log" "$debs" || { tail -5 "$log/debootstrap.log"; return 3; }
  # the local stand-in for Debian's cuDNN installer package (see the header)
  local pkg
  pkg=$(mktemp -d)
  mkdir -p "$pkg/DEBIAN"
  cat >"$pkg/DEBIAN/control" <<'EOF'
Package: nvidia-cudnn
Version: 9.0.0.312~cuda12+dmdtorch.standin
Architecture: all
Maintainer: dmd-torch CI <ci@localhost>
Priority: optional
Section: contrib/libs
Description: test stand-in for Debian's cuDNN installer (dmd-torch CUDA build check, never shipped)
 Satisfies libtorch-cuda's dependency without downloading cuDNN; see scripts/test-cuda-build.sh.
EOF
  dpkg-deb --build "$pkg" "$root/tmp/nvidia-cudnn-standin.deb" >/dev/null && rm -rf "$pkg" || return 1
  chroot "$root" dpkg -i /tmp/nvidia-cudnn-standin.deb >"$log/standin.log" 2>&1 || { tail -5 "$log/standin.log"; return 1; }
  chroot_system_mounts "$root" && chroot_bind "$root" "$debs" /var/cache/apt/archives || return 1
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q --no-install-recommends)
  chroot "$root" apt-get update -q >"$log/apt.log" 2>&1 &&
    chroot "$root" "${apt[@]}" --download-only install $CUDA_PACKAGES >>"$log/apt.log" 2>&1 || { tail -5 "$log/apt.log"; return 3; }
  chroot "$root" "${apt[@]}" install $CUDA_PACKAGES >>"$log/apt.log" 2>&1 || { tail -20 "$log/apt.log"; return 1; }
  cp "$src/scripts/lib/cudnn-standin.sh" "$root/tmp/" &&
    chroot "$root" bash /tmp/cudnn-standin.sh /opt/dmd-cudnn-test-standin /usr/lib/x86_64-linux-gnu/libtorch_cuda.so /usr/lib/x86_64-linux-gnu/libtorch_python.so &&
    echo /opt/dmd-cudnn-test-standin >"$root/etc/ld.so.conf.d/zz-dmd-cudnn-test-standin.conf" && chroot "$root" ldconfig || return 1
  touch "$root/.dmd-ready"
}

if [ ! -f "$root/.dmd-ready" ]; then
  make_chroot
  rc=$?
  chroot_cleanup
  if [ $rc -ne 0 ]; then
    echo "test-cuda-build: could not make the CUDA chroot (logs in $log)"
    finish "$rc" "not built" "not loaded" 0 1
  fi
else
  say "reusing the chroot in $root"
fi
chroot_system_mounts "$root" && chroot_bind "$root" "$npm_cli" /opt/npm ro && chroot_bind "$root" "$npm_cache" /npm-cache || finish 1 "not built" "not loaded" 0 1
printf '#!/bin/sh\nexec node /opt/npm/bin/npm-cli.js "$@"\n' >"$root/usr/local/bin/npm" && chmod +x "$root/usr/local/bin/npm"
lt=$(chroot "$root" dpkg-query -W -f '${Version}' libtorch-cuda-dev 2>/dev/null)
cu=$(chroot "$root" dpkg-query -W -f '${Version}' nvidia-cuda-dev 2>/dev/null)
nc=$(chroot "$root" dpkg-query -W -f '${Version}' libnccl-dev 2>/dev/null)
echo "libtorch-cuda-dev $lt, nvidia-cuda-dev $cu, libnccl-dev $nc, node $(chroot "$root" node --version), npm $(chroot "$root" npm --version)"

say "copying the working tree (as a fresh checkout: no node_modules, no build)"
rm -rf "$root/work" && chroot_copy_tree "$src" "$root" --exclude /node_modules || finish 1 "not built" "not loaded" 0 1
# the README's install command; no GPU on this machine, so the architecture is given (README, GPU builds)
say "npm install (cmake-js, CUDA mode)"
chroot "$root" env -C /work HOME=/tmp npm_config_cache=/npm-cache npm_config_update_notifier=false DMD_BUILD_JOBS="$jobs" TORCH_CUDA_ARCH_LIST=9.0 \
  npm install >"$log/npm-install.log" 2>&1
rc=$?
grep -E "^-- dmd-torch:|^dmd-torch:" "$log/npm-install.log"
[ $rc -eq 0 ] || { tail -30 "$log/npm-install.log"; finish 1 "not built" "not loaded" 0 1; }
check=$(grep -E "^dmd-torch: addon built against" "$log/npm-install.log")
linked="linked"
for want in "(CUDA)" "libtorch_cuda" "gloo+nccl (NCCL from"; do
  [[ $check == *"$want"* ]] || { echo "test-cuda-build: the addon's check does not show '$want'"; linked="not linked"; }
done
[ "$linked" = linked ] || finish 1 "$linked torch_cuda+nccl" "not loaded" 0 1

gyp_failed=0
if [ "${DMD_CUDA_GYP:-1}" != 0 ]; then
  say "node-gyp build of binding.gyp (CUDA mode)"
  rm -rf "$root/gyp" && mkdir -p "$root/gyp" && cp -r native scripts binding.gyp package.json "$root/gyp/" && ln -s /work/node_modules "$root/gyp/node_modules"
  if chroot "$root" env -C /gyp HOME=/tmp node /opt/npm/node_modules/node-gyp/bin/node-gyp.js rebuild --nodedir=/usr -j "$jobs" >"$log/gyp.log" 2>&1 &&
     chroot "$root" node /gyp/scripts/check-addon.mjs /gyp/build/Release/dmd_torch.node >"$log/gyp-check.log" 2>&1 &&
     grep -q "(CUDA); links .*libtorch_cuda.*gloo+nccl (NCCL from" "$log/gyp-check.log"; then
    cat "$log/gyp-check.log"
  else
    tail -20 "$log/gyp.log"; cat "$log/gyp-check.log" 2>/dev/null
    echo "test-cuda-build: the node-gyp build in CUDA mode failed"
    gyp_failed=1
  fi
fi

say "ava $tests (through the CUDA-built addon, no device)"
# shellcheck disable=SC2086
chroot "$root" env -C /work HOME=/tmp CI=1 $(chroot_isa_env) node node_modules/ava/entrypoints/cli.mjs $tests 2>&1 | tee "$log/ava.log"
read -r passed failed <<<"$(ava_counts "$log/ava.log")"
failed=$((failed + gyp_failed))
# the GPU tests must skip for the right reason: this is a CUDA build that sees no device
if grep -q "skipped: this addon was built against a CPU-only libtorch" "$log/ava.log"; then echo "test-cuda-build: a test skipped as if this were a CPU-only build"; failed=$((failed + 1)); fi
if [[ $tests == *test/gpu* ]] && ! grep -q "skipped: CUDA build, no device visible" "$log/ava.log"; then echo "test-cuda-build: the GPU tests did not skip with 'CUDA build, no device visible'"; failed=$((failed + 1)); fi
[ "$passed" -gt 0 ] || failed=$((failed + 1))
say "done"
finish "$([ "$failed" -eq 0 ] && echo 0 || echo 1)" "linked torch_cuda+nccl" "loaded" "$passed" "$failed"
