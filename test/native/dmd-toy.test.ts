// The DMD core over a score model that is not an EDM network: a 2-D MLP denoiser made of plain tensor
// ops (test/helpers/toy-score-model.ts), trained as a teacher on a mixture of 8 Gaussians, then
// distilled by the same DMDTrainer (distribution matching only, no regression, no GAN). The one-step
// generator's samples must move to the teacher's distribution: their energy distance to the teacher's
// (Heun) samples falls well below the undistilled generator's.
import test from 'ava';
import { noGrad, randn, Generator, DMDTrainer, edmSample, karrasSteps, dispose } from '../../src/index.js';
import { ToyScoreModel, mixtureSamples, trainToyTeacher, energyDistance } from '../helpers/toy-score-model.js';
import { tempDir } from '../helpers/tmp.js';

test('DMD distils a non-EDM score model (2-D MLP on a Gaussian mixture): one-step samples move to the teacher distribution', (t) => {
  const teacher = ToyScoreModel.create(64, 0);
  const t0 = performance.now();
  trainToyTeacher(teacher, 800);
  const teacherSeconds = (performance.now() - t0) / 1000;
  const g = Generator.create('cpu', 5);
  const z = randn([600, 2, 1, 1], { generator: g }).keep();
  const teacherSamples = noGrad(() => edmSample(teacher.score(), z, null, karrasSteps(18)).x).keep();
  const data = mixtureSamples(600, g).keep();
  const tr = new DMDTrainer({ out: tempDir(), batchSize: 128, steps: 100000, fakeUpdatesPerGen: 5, genLr: 3e-3, fakeLr: 3e-3, warmupSteps: 0, gradClip: 0, finalEval: 0, device: 'cpu', seed: 0 }, () => {}, { teacher });
  const before = noGrad(() => tr.generator.sample(z, null));
  const edBefore = energyDistance(before, teacherSamples);
  const t1 = performance.now();
  const iterations = 1000;
  for (let i = 0; i < iterations; i++) tr.iteration();
  const distilSeconds = (performance.now() - t1) / 1000;
  const after = noGrad(() => tr.generator.sample(z, null));
  const edAfter = energyDistance(after, teacherSamples);
  const floor = energyDistance(data, teacherSamples);
  t.log(`teacher ${teacherSeconds.toFixed(1)} s; DMD ${iterations} iterations ${distilSeconds.toFixed(1)} s; energy distance to teacher samples: undistilled ${edBefore.toFixed(4)}, distilled ${edAfter.toFixed(4)}, true mixture ${floor.toFixed(4)}`);
  t.true(floor < 0.03, `the teacher should have learned the mixture (${floor})`);
  t.true(edBefore > 0.1, `the undistilled generator should be far from the teacher's samples (${edBefore})`);
  t.true(edAfter < edBefore / 10, `distilled ${edAfter} vs undistilled ${edBefore}`);
  dispose([z, teacherSamples, data, before, after]);
  tr.dispose();
  teacher.dispose();
});
