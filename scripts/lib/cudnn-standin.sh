#!/usr/bin/env bash
# TEST STAND-IN, NOT cuDNN. Used only inside the throw-away chroot of scripts/test-cuda-build.sh, never
# shipped or installed anywhere else.
#
# Debian's libtorch-cuda links libcudnn.so.9, whose Debian package is an installer that downloads cuDNN
# from NVIDIA at install time (not reachable from CI). libtorch_cuda.so is linked with BIND_NOW, so the
# loader must resolve every cuDNN symbol it imports before the library can load at all. This makes a
# library named libcudnn.so.9 that exports exactly those symbols, with their symbol version
# (libcudnn.so.9), and in which every function fails with CUDNN_STATUS_NOT_SUPPORTED (3000); the
# version queries answer 0 and cudnnGetErrorString a text naming the stand-in. Without a GPU nothing
# calls cuDNN, so loading the CUDA build and running its CPU paths is what this makes checkable.
#
#   bash scripts/lib/cudnn-standin.sh OUTDIR LIB...   # run in the chroot; LIBs import from libcudnn.so.9
set -euo pipefail
out=$1; shift
mkdir -p "$out"
syms=$(for lib in "$@"; do objdump -T "$lib" | awk '$NF != "" && /\(libcudnn\.so\.9\)/ && /\*UND\*/ {print $NF}'; done | sort -u)
[ -n "$syms" ] || { echo "cudnn-standin: $* import nothing from libcudnn.so.9" >&2; exit 1; }
{
  echo '/* dmd-torch CI test stand-in for libcudnn.so.9: every function returns CUDNN_STATUS_NOT_SUPPORTED. */'
  echo '#include <stddef.h>'
  for s in $syms; do
    case $s in
      cudnnGetErrorString) echo "const char* $s(int status) { (void)status; return \"cuDNN test stand-in (dmd-torch CI): not supported\"; }" ;;
      cudnnGetVersion|cudnnGetCudartVersion|cudnnGetMaxDeviceVersion) echo "size_t $s(void) { return 0; }" ;;
      *) echo "int $s(void) { return 3000; }" ;;
    esac
  done
} >"$out/cudnn-standin.c"
{ echo 'libcudnn.so.9 {'; echo '  global:'; for s in $syms; do echo "    $s;"; done; echo '  local: *;'; echo '};'; } >"$out/cudnn-standin.map"
gcc -shared -fPIC -O1 -Wl,-soname,libcudnn.so.9 -Wl,--version-script="$out/cudnn-standin.map" -o "$out/libcudnn.so.9" "$out/cudnn-standin.c"
echo "cudnn-standin: $out/libcudnn.so.9 exports $(wc -w <<<"$syms") functions (test stand-in, not cuDNN)"
