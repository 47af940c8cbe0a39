// Post-build check of the addon (run by build-native.mjs; after a node-gyp build run it by hand):
//   node scripts/check-addon.mjs [build/Release/dmd_torch.node]
// Loads it, prints the libtorch version and backend, and for a CUDA build checks that libtorch_cuda is a
// NEEDED library of the .node: if the linker dropped it (no symbol of it is referenced directly), the
// CUDA backend never registers and CUDA silently reports unavailable.
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const file = path.resolve(process.argv[2] ?? path.join(root, 'build/Release/dmd_torch.node'));
let addon;
try {
  addon = createRequire(import.meta.url)(file);
} catch (e) {
  console.error(`dmd-torch: the built addon ${file} does not load: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
const info = addon.buildInfo();
let needed = [];
try {
  needed = execFileSync('readelf', ['-d', file], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /\(NEEDED\)\s+Shared library: \[(.+)\]/.exec(l)?.[1])
    .filter(Boolean);
} catch {
  console.error('dmd-torch: readelf (binutils) is not available; skipping the linked-library check');
}
const torchLibs = needed.filter((n) => /^lib(torch|c10)/.test(n));
if (info.cuda && needed.length && !needed.some((n) => n.startsWith('libtorch_cuda'))) {
  console.error(
    `dmd-torch: ${file} was compiled against a CUDA libtorch but does not link libtorch_cuda (linked: ${torchLibs.join(', ')}); ` +
      'CUDA would report unavailable. Rebuild with --no-as-needed around the torch libraries (CMakeLists.txt and binding.gyp do this).',
  );
  process.exit(1);
}
// the libraries this process has mapped, by soname prefix (NCCL arrives through libtorch_cuda)
let mapped = [];
try {
  mapped = [...new Set(readFileSync('/proc/self/maps', 'utf8').split('\n').map((l) => l.split(/\s+/)[5]).filter((f) => f && f.startsWith('/')))];
} catch {
  /* not Linux */
}
const nccl = info.distributed.includes('nccl') ? mapped.find((f) => /\/libnccl\.so/.test(f)) ?? null : null;
if (info.distributed.includes('nccl') && mapped.length && !nccl) {
  console.error(`dmd-torch: ${file} has the NCCL backend compiled in but no libnccl was loaded with it; check the CUDA libtorch installation`);
  process.exit(1);
}
const backends = info.distributed.length ? info.distributed.join('+') : 'none';
console.log(
  `dmd-torch: addon built against libtorch ${info.torchVersion} (${info.cuda ? 'CUDA' : 'CPU only'}); links ${torchLibs.join(', ') || '(unknown)'}; ` +
    `process groups: ${backends}${nccl ? ` (NCCL from ${nccl})` : ''}`,
);
