// The diagnostics of the distribution-matching term (src/dmd/diagnostics.ts) on a small random teacher:
// exact values where the answer is known (a fake score equal to the teacher gives no DM gradient and a
// loss ratio of 1), the weights' linearity, and the tracking ratio falling once the fake score has
// trained on the generator's samples.
import test from 'ava';
import path from 'node:path';
import { makePairs, PairsConfigSchema, PairsDataset } from '../../src/dmd/regression/pairs.js';
import { DMDTrainer } from '../../src/dmd/trainer.js';
import { dmDiagnostics } from '../../src/dmd/diagnostics.js';
import { tempDir } from '../helpers/tmp.js';
import { tinyTeacher } from '../helpers/teacher.js';

const dir = tempDir();
const teacher = tinyTeacher(dir);
const quiet = () => {};
const pairsDir = path.join(dir, 'pairs');
const pairsReady = makePairs(PairsConfigSchema.parse({ teacher, out: pairsDir, count: 16, steps: 3, shardSize: 16, batchSize: 8, device: 'cpu' }), quiet);
const settings = { lambdaDm: 1, lambdaReg: 0.25, regression: 'pseudo-huber' as const, minStepPercent: 0.02, maxStepPercent: 0.98 };

test('DM diagnostics: exact where known, linear in the weights, and the fake score tracking the generator after training', async (t) => {
  await pairsReady;
  const pairs = new PairsDataset(pairsDir);
  const tr = new DMDTrainer({ teacher, pairs: pairsDir, out: path.join(dir, 'run'), batchSize: 8, steps: 100, fakeUpdatesPerGen: 1000, fakeLr: 3e-4, warmupSteps: 0, device: 'cpu', finalEval: 0 }, quiet);
  const parts = { generator: tr.generator, critic: tr.critic!, pairs, schedule: tr.schedule };
  const o = { n: 8, levels: 4 };

  // the fake score starts as a copy of the teacher: no DM gradient, the same denoising loss
  const d0 = dmDiagnostics(parts, settings, o);
  t.is(d0.levels.length, 4);
  t.deepEqual(d0.levels.map((l) => l.index), [20, 340, 660, 980]);
  t.true(d0.levels.every((l, k) => k === 0 || l.level > d0.levels[k - 1]!.level), 'levels ascend in sigma');
  for (const l of d0.levels) {
    t.is(l.fakeOverReal, 1);
    t.is(l.normRatio, 0);
  }
  t.is(d0.weightsNormRatio, 0);

  // 40 fake-score updates on the generator's samples (the generator updated once): the fake score
  // denoises them better than the teacher does at the lower levels (at the top ones the teacher is
  // nearly the generator itself, evaluated at sigma 80, and hard to beat on its samples)
  for (let i = 0; i < 40; i++) tr.iteration();
  const d1 = dmDiagnostics(parts, settings, o);
  t.log(`fake/teacher denoising loss per level after 40 updates: ${d1.levels.map((l) => l.fakeOverReal.toFixed(3)).join(' ')}`);
  t.true(d1.levels.slice(0, 2).every((l) => l.fakeOverReal < 0.9), d1.levels.map((l) => l.fakeOverReal).join(' '));

  // now the fake score differs: gradients scale with the weights, cosines do not, and the probe is fixed
  const d2 = dmDiagnostics(parts, { ...settings, lambdaDm: 2 }, o);
  const d3 = dmDiagnostics(parts, { ...settings, lambdaReg: 0.5 }, o);
  for (let k = 0; k < 4; k++) {
    const [a, b, c] = [d1.levels[k]!, d2.levels[k]!, d3.levels[k]!];
    t.true(a.normRatio > 0);
    t.true(Math.abs(b.normRatio / a.normRatio - 2) < 1e-4, `level ${k}: ${b.normRatio} vs ${a.normRatio}`);
    t.true(Math.abs(c.normRatio / a.normRatio - 0.5) < 1e-4);
    t.true(Math.abs(b.cosine - a.cosine) < 1e-5 && Math.abs(a.cosine) <= 1);
    t.is(a.fakeOverReal, b.fakeOverReal);
  }
  t.true(Math.abs(d2.weightsNormRatio / d1.weightsNormRatio - 2) < 1e-3);
  t.true(Math.abs(d2.weightsCosine - d1.weightsCosine) < 1e-4);
  pairs.dispose();
  tr.dispose();
});
