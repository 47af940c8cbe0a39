// Distribution matching alone on the 2-D toy (a mixture of 8 Gaussians, test/helpers/toy-score-model.ts):
// does DM move a one-step generator to the teacher's distribution, how fast, and how does that depend on
// the fake score keeping up (fake:gen, the fake score's learning rate) and on the levels DM draws? Energy distance of 600 one-step
// samples to 600 teacher (Heun 18) samples every 100 iterations; the true mixture's distance is the floor.
//
//   npx tsx scripts/experiments/toy-dm.ts [--iterations 1500] [--out experiments/fmnist-budget/toy-dm.md]
import { writeFileSync } from 'node:fs';
import { tidy, noGrad, randn, Generator, DMDTrainer, edmSample, karrasSteps, dispose } from '../../src/index.js';
import { ToyScoreModel, mixtureSamples, trainToyTeacher, energyDistance } from '../../test/helpers/toy-score-model.js';
import { tempDir } from '../../test/helpers/tmp.js';

const argv = process.argv.slice(2);
const opt = (n: string, d: string) => { const i = argv.indexOf(`--${n}`); return i >= 0 ? argv[i + 1]! : d; };
const iterations = Number(opt('iterations', '1500'));
const out = opt('out', 'experiments/fmnist-budget/toy-dm.md');

// the teacher: EDM's denoising objective on the mixture, as in test/native/dmd-toy.test.ts
const teacher = ToyScoreModel.create(64, 0);
trainToyTeacher(teacher, 800);
const g = Generator.create('cpu', 5);
const z = randn([600, 2, 1, 1], { generator: g }).keep();
const teacherSamples = noGrad(() => edmSample(teacher.score(), z, null, karrasSteps(18)).x).keep();
const data = mixtureSamples(600, g).keep();
const floor = energyDistance(data, teacherSamples);

const configs = [
  { name: 'fake:gen 1, fake lr = gen lr', fakeUpdatesPerGen: 1, fakeLr: 3e-3 },
  { name: 'fake:gen 1, fake lr = 3 x gen lr', fakeUpdatesPerGen: 1, fakeLr: 9e-3 },
  { name: 'fake:gen 5, fake lr = gen lr', fakeUpdatesPerGen: 5, fakeLr: 3e-3 },
  { name: 'fake:gen 5, fake lr = 3 x gen lr', fakeUpdatesPerGen: 5, fakeLr: 9e-3 },
  // the DM timestep range (fake:gen 5, equal rates): the low half of the levels only, the high half only
  { name: 'fake:gen 5, DM levels 2-50% only (sigma 0.003-2.5)', fakeUpdatesPerGen: 5, fakeLr: 3e-3, minStepPercent: 0.02, maxStepPercent: 0.5 },
  { name: 'fake:gen 5, DM levels 50-98% only (sigma 2.5-72)', fakeUpdatesPerGen: 5, fakeLr: 3e-3, minStepPercent: 0.5, maxStepPercent: 0.98 },
];
const every = 100;
const rows: { name: string; ed: number[]; seconds: number }[] = [];
for (const c of configs) {
  const tr = new DMDTrainer({ out: tempDir(), batchSize: 128, steps: 1e9, fakeUpdatesPerGen: c.fakeUpdatesPerGen, genLr: 3e-3, fakeLr: c.fakeLr, minStepPercent: c.minStepPercent ?? 0.02, maxStepPercent: c.maxStepPercent ?? 0.98, warmupSteps: 0, gradClip: 0, finalEval: 0, device: 'cpu', seed: 0 }, () => {}, { teacher });
  const ed = [energyDistance(noGrad(() => tr.generator.sample(z, null)), teacherSamples)];
  const t0 = performance.now();
  for (let i = 1; i <= iterations; i++) {
    tr.iteration();
    if (i % every === 0) ed.push(tidy(() => energyDistance(tr.generator.sample(z, null), teacherSamples)));
  }
  rows.push({ name: c.name, ed, seconds: (performance.now() - t0) / 1000 });
  console.log(`${c.name}: ${ed.map((v) => v.toFixed(3)).join(' ')}`);
  tr.dispose();
}
const cols = Array.from({ length: iterations / every + 1 }, (_, i) => i * every);
const md = [
  `# Distribution matching alone on the 2-D toy`,
  '',
  `Made by \`npx tsx scripts/experiments/toy-dm.ts\`: energy distance of 600 one-step samples (fixed noises) to 600 teacher samples (Heun 18) after each 100 iterations of batch 128, generator lr 3e-3, AdamW, no warm-up, no regression, DM levels drawn from 2-98% of the 1000 Karras levels (sigma 0.003-72) unless the row says otherwise. The mixture: 8 Gaussians of std 0.05 on the unit circle (neighbouring modes 0.77 apart). The true mixture's distance to the teacher samples is ${floor.toFixed(4)} (the floor). Every generator update moves G as far whatever fake:gen is; with fake:gen 5 an iteration updates G only every fifth time, so compare columns at equal G updates (iterations / fake:gen) too.`,
  '',
  `| recipe | ${cols.join(' | ')} | seconds |`,
  `| --- | ${cols.map(() => '---').join(' | ')} | --- |`,
  ...rows.map((r) => `| ${r.name} | ${r.ed.map((v) => v.toFixed(3)).join(' | ')} | ${r.seconds.toFixed(1)} |`),
  '',
];
writeFileSync(out, md.join('\n'));
console.log(`floor ${floor.toFixed(4)}; wrote ${out}`);
dispose([z, teacherSamples, data]);
teacher.dispose();
