// The DMD core over a score model that is not an EDM network: a 2-D MLP denoiser made of plain tensor
// ops (test/helpers/toy-score-model.ts), trained as a teacher on a mixture of 8 Gaussians, then
// distilled by the same DMDTrainer (distribution matching only, no regression, no GAN). The one-step
// generator's samples must move to the teacher's distribution: their energy distance to the teacher's
// (Heun) samples falls well below the undistilled generator's.
import test from 'ava';
import { tidy, noGrad, randn, Generator, AdamW, DMDTrainer, edmSample, karrasSteps, dispose, type Tensor } from '../../src/index.js';
import { ToyScoreModel, mixtureSamples } from '../helpers/toy-score-model.js';
import { tempDir } from '../helpers/tmp.js';

/** Energy distance 2E|X-Y| - E|X-X'| - E|Y-Y'| between two [N, 2, 1, 1] sample sets. */
function energyDistance(a: Tensor, b: Tensor): number {
  return tidy(() => {
    const x = a.reshape([a.shape[0]!, 2]);
    const y = b.reshape([b.shape[0]!, 2]);
    const d = (p: Tensor, q: Tensor) => p.unsqueeze(1).sub(q.unsqueeze(0)).square().sum([2]).add(1e-12).sqrt().mean().item();
    return 2 * d(x, y) - d(x, x) - d(y, y);
  });
}

/** EDM's denoising objective on mixture samples (ln sigma ~ N(-1.2, 1.2^2)). */
function trainTeacher(model: ToyScoreModel, steps: number): void {
  const gen = Generator.create('cpu', 1);
  model.requiresGrad_(true);
  const opt = new AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0 });
  const D = model.score();
  for (let i = 0; i < steps; i++) {
    tidy(() => {
      const x = mixtureSamples(256, gen);
      const sigma = randn([256], { generator: gen }).mul(1.2).sub(1.2).exp();
      const noisy = x.add(randn([256, 2, 1, 1], { generator: gen }).mul(sigma.reshape([-1, 1, 1, 1])));
      const w = sigma.square().add(0.25).div(sigma.mul(0.5).square()).reshape([-1, 1, 1, 1]);
      const loss = w.mul(D(noisy, sigma, null).sub(x).square()).mean();
      opt.zeroGrad();
      loss.backward();
      opt.step();
    });
  }
  opt.dispose();
  model.requiresGrad_(false).eval();
}

test('DMD distils a non-EDM score model (2-D MLP on a Gaussian mixture): one-step samples move to the teacher distribution', (t) => {
  const teacher = ToyScoreModel.create(64, 0);
  const t0 = performance.now();
  trainTeacher(teacher, 800);
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
