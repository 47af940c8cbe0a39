// npm run test:parity [-- --device cuda] [-- --dtype bfloat16 --rtol 0.02] [-- --tf32]
// Runs every case of the reference manifests ($DMD_REFERENCE_FIXTURES, one directory or several joined
// by ':'; default test/fixtures/reference and test/fixtures/sd)
// whose kind is implemented; prints one line per case and exits non-zero on any failure. TF32 is off
// on CUDA (float32 tolerances as on the CPU) unless --tf32 is given.
import { CHECKERS, judge } from '../test/parity/kinds.js';
import { fixtureDirs, readCase, readManifest } from '../test/parity/fixtures.js';
import { tidy, dispose, checkDevice, cuda } from '../src/tensor/index.js';
import type { ExecutionDType } from '../src/edm/network.js';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const device = checkDevice(flag('device') ?? process.env.DMD_PARITY_DEVICE ?? 'cpu');
const dtype = (flag('dtype') ?? 'float32') as ExecutionDType;
const rtolOverride = flag('rtol') !== undefined ? Number(flag('rtol')) : undefined;
const only = flag('case');
const tf32 = process.argv.includes('--tf32');
cuda.setAllowTF32({ matmul: tf32, cudnn: tf32 });
let failed = 0;
let passed = 0;
const dirs = fixtureDirs();
for (const dir of dirs) for (const c of readManifest(dir).cases) {
  if (only && c.name !== only) continue;
  const check = CHECKERS[c.kind];
  if (!check) {
    console.log(`parity ${c.name} skip ${c.kind} not implemented`);
    continue;
  }
  const t0 = performance.now();
  try {
    const data = readCase(c, dir);
    const v = tidy(() => judge(check(c, data, { device, dtype, dir }), rtolOverride ?? c.rtol));
    dispose(data.all);
    const ms = (performance.now() - t0).toFixed(0);
    console.log(`parity ${c.name} ${v.pass ? 'pass' : 'fail'} max_abs_err=${v.maxAbsErr.toExponential(3)} tol=${v.tol.toExponential(3)} (${v.worst}, ${device}, ${dtype}${device !== 'cpu' ? `, tf32 ${tf32 ? 'on' : 'off'}` : ''}, ${ms} ms)`);
    if (v.pass) passed++;
    else failed++;
  } catch (e) {
    failed++;
    console.log(`parity ${c.name} fail error: ${e instanceof Error ? e.message : String(e)}`);
  }
}
console.log(`parity summary: ${passed} passed, ${failed} failed (fixtures: ${dirs.join(', ')})`);
process.exit(failed ? 1 : 0);
