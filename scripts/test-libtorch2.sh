#!/usr/bin/env bash
# Runs the addon against libtorch 2.x on a Debian 12 machine: builds and links it against Debian
# trixie's libtorch-dev (2.6) inside a minimal trixie chroot (trixie's libraries need its glibc, so
# they cannot run on bookworm directly) and runs tests there. This checks the CPU code paths against
# libtorch 2.x at run time, beyond the header-only compile check (scripts/compile-check-libtorch2.sh).
#
#   sudo bash scripts/test-libtorch2.sh                          # CHROOT_TESTS of scripts/lib/chroot.sh
#   sudo bash scripts/test-libtorch2.sh test/unit test/native    # these ava files or folders
#
# Needs root (debootstrap, chroot, bind mounts), debootstrap, rsync and network access to
# deb.debian.org. The chroot is kept in $DMD_LT2_ROOT (default /var/tmp/dmd-lt2-trixie) for later runs;
# the working tree is copied into it each time. Exit status: 0 when the tests pass; 3 when the chroot
# could not be made (network), so that CI can report a skip; otherwise the failing step's status.
set -uo pipefail
cd "$(dirname "$0")/.."
src=$PWD
suite=${DMD_LT2_SUITE:-trixie}
root=${DMD_LT2_ROOT:-/var/tmp/dmd-lt2-$suite}
mirror=${DMD_LT2_MIRROR:-http://deb.debian.org/debian}
jobs=${DMD_BUILD_JOBS:-$(nproc)}
# shellcheck source=lib/chroot.sh
. "$src/scripts/lib/chroot.sh"
tests=${*:-$CHROOT_TESTS}

[ "$(id -u)" -eq 0 ] || { echo "test-libtorch2: needs root (debootstrap and chroot)"; exit 2; }
[ -d node_modules ] || { echo "test-libtorch2: run npm install first (node_modules is copied into the chroot)"; exit 2; }
command -v debootstrap >/dev/null && command -v rsync >/dev/null || { echo "test-libtorch2: needs debootstrap and rsync (apt-get install debootstrap rsync)"; exit 2; }

if [ ! -f "$root/.dmd-ready" ]; then
  echo "== making a $suite chroot in $root (a few minutes) =="
  if ! chroot_make "$root" "$suite" "$mirror" main libtorch-dev,libgloo-dev,g++,cmake,make,nodejs,python3,ca-certificates /tmp/dmd-lt2-debootstrap.log; then
    tail -5 /tmp/dmd-lt2-debootstrap.log
    echo "test-libtorch2: could not make the $suite chroot (see /tmp/dmd-lt2-debootstrap.log)"
    exit 3
  fi
  touch "$root/.dmd-ready"
fi
chroot_system_mounts "$root" || exit 1

echo "== copying the working tree =="
chroot_copy_tree "$src" "$root" || exit 1
lt=$(chroot "$root" dpkg-query -W -f '${Version}' libtorch-dev 2>/dev/null)
nv=$(chroot "$root" node --version)
echo "== building against Debian $suite libtorch-dev $lt (node $nv) =="
chroot "$root" env -C /work DMD_BUILD_JOBS="$jobs" HOME=/tmp bash -c 'node scripts/build-native.mjs && node node_modules/typescript/bin/tsc -p tsconfig.build.json' || exit 1

echo "== ava $tests =="
# shellcheck disable=SC2086
chroot "$root" env -C /work HOME=/tmp CI=1 $(chroot_isa_env) node node_modules/ava/entrypoints/cli.mjs $tests
