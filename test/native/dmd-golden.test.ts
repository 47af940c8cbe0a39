// A seeded DMD run must give bit-identical losses and generator bytes to those recorded before the
// DMD core was reshaped (test/helpers/dmd-golden.ts). Exact on the libtorch version, CPU model and BLAS
// the golden was recorded with: the run must equal one of the recordings made there (the golden, or a
// variant recorded on a machine of the same model name with another vector ISA) bit for bit. Elsewhere
// kernels may round differently, so the losses are compared to 1e-4 relative and the generator bytes
// are not compared (the test says so).
import test from 'ava';
import path from 'node:path';
import { goldenRecordings, runGolden, cpuModel, cpuIsa, blasLibrary, type Golden } from '../helpers/dmd-golden.js';
import { buildInfo } from '../../src/index.js';

test('seeded DMD runs (pairs + diffusion GAN + EMA + fake:gen 5; fake:gen 1 + CFG + l2) reproduce the recorded golden', async (t) => {
  const recordings = goldenRecordings();
  const here = { torchVersion: buildInfo().torchVersion, cpu: cpuModel(), blas: blasLibrary() };
  const candidates = recordings.filter(({ golden: w }) => w.torchVersion === here.torchVersion && w.cpu === here.cpu && w.blas === here.blas);
  const exact = candidates.length > 0;
  const got = await runGolden();
  const same = (w: Golden) => Object.entries(w.runs).every(([name, r]) => JSON.stringify(got.runs[name]) === JSON.stringify(r));
  const chosen = candidates.find((c) => same(c.golden)) ?? candidates[0] ?? recordings[0]!;
  const want = chosen.golden;
  if (!exact) t.log(`golden recorded with libtorch ${want.torchVersion} on ${want.cpu}, BLAS ${want.blas}; here ${here.torchVersion} on ${here.cpu}, BLAS ${here.blas}: comparing to 1e-4 relative`);
  else t.log(`exact: compared with ${path.basename(chosen.file)}${want.isa ? ` (recorded on ${want.cpuId}, ${want.isa})` : ''}; this machine's kernels: ${cpuIsa()}`);
  t.deepEqual(Object.keys(got.runs), Object.keys(want.runs));
  for (const [name, w] of Object.entries(want.runs)) {
    const g = got.runs[name]!;
    t.is(g.metrics.length, w.metrics.length, name);
    w.metrics.forEach((wm, i) => {
      t.deepEqual(Object.keys(g.metrics[i]!), Object.keys(wm), `${name} step ${i + 1}: metric names`);
      for (const [k, v] of Object.entries(wm)) {
        const x = g.metrics[i]![k]!;
        if (exact) t.is(x, v, `${name} step ${i + 1} ${k}`);
        else t.true(Math.abs(x - v) <= 1e-4 * Math.max(1, Math.abs(v)), `${name} step ${i + 1} ${k}: ${x} vs ${v}`);
      }
    });
    if (exact) t.is(g.generatorSha256, w.generatorSha256, `${name}: generator.safetensors bytes`);
  }
});
