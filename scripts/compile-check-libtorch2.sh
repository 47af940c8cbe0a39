#!/usr/bin/env bash
# Compile check of the addon against libtorch 2.x on a machine that only has libtorch 1.13 (Debian 12):
# downloads Debian's libtorch-dev .deb of newer suites into a private apt directory (nothing is
# installed system-wide), unpacks it with dpkg -x and runs `g++ -fsyntax-only` over every native/*.cc,
# once as the CPU build and once with DMD_WITH_CUDA (the files that mention it), both with the c10d
# Gloo backend (the suite's libgloo-dev headers). The CUDA pass uses the stand-in headers under
# test/compile-check/cuda-standin (declarations only, not CUDA); the NCCL backend (DMD_WITH_NCCL)
# needs nccl.h and the CUDA toolkit and is not compiled here.
#
#   bash scripts/compile-check-libtorch2.sh            # trixie (libtorch 2.6) and sid (the newest)
#   DMD_LT2_SUITES=trixie bash scripts/compile-check-libtorch2.sh
#
# Exit status 0 when every file compiles; otherwise the failing files are named with their first errors.
# Needs: apt-get, dpkg, g++, node (for the node-addon-api and Node header paths); network access to
# deb.debian.org. A suite whose package cannot be downloaded is reported and skipped (exit 0 only if at
# least the first suite was checked).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
suites=${DMD_LT2_SUITES:-"trixie sid"}
work=${DMD_LT2_DIR:-${TMPDIR:-/tmp}/dmd-libtorch2}
jobs=${DMD_BUILD_JOBS:-$(nproc)}
mkdir -p "$work"

node_inc=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/include/node
napi_inc=$(node -p "require('node-addon-api').include_dir")
[ -f "$node_inc/node_api.h" ] || { echo "compile-check: Node's headers not found at $node_inc"; exit 2; }

fetch() { # suite -> unpacked root on stdout
  local suite=$1 d="$work/$1"
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/root"
  if [ ! -f "$d/root/.done" ]; then
    echo "deb http://deb.debian.org/debian $suite main" >"$d/sources.list"
    local A=(-o "Dir::Etc::SourceList=$d/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$d/lists"
      -o "Dir::Cache=$d/cache" -o Debug::NoLocking=1 -o APT::Sandbox::User=root -qq)
    apt-get "${A[@]}" update >"$d/apt.log" 2>&1 || return 1
    (cd "$d/cache" && apt-get "${A[@]}" download libtorch-dev libgloo-dev >>"$d/apt.log" 2>&1) || return 1
    for deb in "$d"/cache/libtorch-dev_*.deb "$d"/cache/libgloo-dev_*.deb; do dpkg -x "$deb" "$d/root" || return 1; done
    touch "$d/root/.done"
  fi
  echo "$d/root/usr/include"
}

torch_version() { # include dir -> "major minor" (torch/headeronly/version.h since 2.9)
  local v
  v=$(cat "$1/torch/csrc/api/include/torch/version.h" "$1/torch/headeronly/version.h" 2>/dev/null)
  echo "$(sed -n 's/^#define TORCH_VERSION_MAJOR \([0-9]*\).*/\1/p' <<<"$v" | head -1) $(sed -n 's/^#define TORCH_VERSION_MINOR \([0-9]*\).*/\1/p' <<<"$v" | head -1)"
}

failed=0
checked=0
first=1
for suite in $suites; do
  if ! inc=$(fetch "$suite"); then
    echo "compile-check: could not download libtorch-dev from Debian $suite (see $work/$suite/apt.log)"
    [ $first -eq 1 ] && failed=1
    first=0
    continue
  fi
  first=0
  read -r major minor <<<"$(torch_version "$inc")"
  std=c++17
  if [ "$major" -gt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -ge 12 ]; }; then std=c++20; fi
  for build in cpu cuda; do
    flags=(-std=$std -D_GLIBCXX_USE_CXX11_ABI=1 -DDMD_WITH_GLOO=1 -DUSE_C10D_GLOO=1 -DNAPI_VERSION=8 -DNODE_ADDON_API_CPP_EXCEPTIONS -DNODE_ADDON_API_CPP_EXCEPTIONS_ALL
      -DNODE_ADDON_API_DISABLE_DEPRECATED -I"$node_inc" -I"$napi_inc" -I"$inc" -I"$inc/torch/csrc/api/include")
    if [ $build = cuda ]; then
      flags=(-DDMD_WITH_CUDA=1 -I"$root/test/compile-check/cuda-standin" "${flags[@]}")
      files=$(grep -l 'DMD_WITH_CUDA' native/*.cc)
    else
      files=$(ls native/*.cc)
    fi
    # one precompiled header of the heavy includes per configuration
    pch="$work/$suite/pch-$build"
    mkdir -p "$pch"
    cp native/pch.h "$pch/pch.h"
    t0=$(date +%s)
    if ! g++ "${flags[@]}" -Wno-pragma-once-outside-header -x c++-header "$pch/pch.h" -o "$pch/pch.h.gch" 2>"$pch/pch.log"; then
      echo "compile-check: libtorch $major.$minor ($suite) $build: the common headers do not compile:"
      grep -m5 -E 'error' "$pch/pch.log"
      failed=1
      continue
    fi
    logdir="$work/$suite/logs-$build"
    rm -rf "$logdir" && mkdir -p "$logdir"
    # shellcheck disable=SC2086
    printf '%s\n' $files | xargs -P "$jobs" -I{} sh -c 'g++ "$@" -fsyntax-only -include "'"$pch"'/pch.h" "{}" >"'"$logdir"'/$(basename {}).log" 2>&1 || touch "'"$logdir"'/$(basename {}).failed"' _ "${flags[@]}"
    n=$(printf '%s\n' $files | wc -l)
    bad=$(ls "$logdir"/*.failed 2>/dev/null | wc -l)
    echo "compile-check: libtorch $major.$minor ($suite, -std=$std) $build build: $((n - bad))/$n files compile ($(($(date +%s) - t0)) s)"
    for f in "$logdir"/*.failed; do
      [ -e "$f" ] || continue
      src=$(basename "$f" .failed)
      echo "  FAILED native/$src:"
      grep -m5 -E 'error' "$logdir/$src.log" | sed 's/^/    /'
      failed=1
    done
    checked=$((checked + 1))
  done
done
[ $checked -gt 0 ] || failed=1
exit $failed
