// The DMD / DMD2 ablation on Fashion-MNIST, as one reproducible experiment (npm run experiment:ablation):
// from the bundled teacher and Debian's Fashion-MNIST, with one seed and the same training and
// evaluation budget for every distilled method, it trains and evaluates
//   the teacher with Heun (NFE 35) and evaluated once (no distillation), regression only,
//   distribution matching only (fake:gen 1 and 5), DMD (DM + regression, l2 and pseudo-huber),
//   DMD2 (fake:gen 5 + GAN on real data) with and without regression, and DMD2's EMA generator,
// then writes results.md (FD-fmnist with its noise floor, accuracy on intended classes, class balance,
// precision/recall in the classifier's features, wall time, img/s) and samples.png (one row of the
// same noises per method). Results are cached per method in --out: a rerun continues where it stopped.
//
//   npm run experiment:ablation                       # the full run (2-core CPU: about 2.5 hours)
//   npm run experiment:ablation -- --quick            # a few iterations of every method (a smoke test; npm test runs it)
//   npm run experiment:ablation -- --only dmd2,dmd2-reg --steps 500
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import {
  DMDTrainer, DMDConfigSchema, evaluate, EvalConfigSchema, makePairs, PairsConfigSchema, loadEDM, defaultTeacherPath, sampleEDM, generate, saveGenerator,
  randn, Generator, F, tensor, tidy, noGrad, cat, saveGrid, getNumThreads, buildInfo, type DMDConfig, type Tensor,
} from '../../src/index.js';
import { FASHION_MNIST_DIR } from '../../src/data/sources.js';
import { ensureDir, atomicWrite } from '../../src/util/fs.js';

const argv = process.argv.slice(2);
const flag = (n: string) => argv.includes(`--${n}`);
const opt = (n: string, d: string) => { const i = argv.indexOf(`--${n}`); return i >= 0 ? argv[i + 1]! : d; };
const quick = flag('quick');
const out = path.resolve(opt('out', quick ? 'runs/ablation-quick' : 'runs/ablation'));
const steps = Number(opt('steps', quick ? '4' : '1000'));
const num = Number(opt('num', quick ? '40' : '1000'));
const pairsCount = Number(opt('pairs', quick ? '20' : '1024'));
const refNum = Number(opt('ref-num', quick ? '1000' : '10000'));
const seed = Number(opt('seed', '0'));
const only = opt('only', '').split(',').filter(Boolean);
const heunSteps = quick ? 2 : 18;

if (!existsSync(FASHION_MNIST_DIR)) {
  console.error(`Fashion-MNIST is not installed (${FASHION_MNIST_DIR}): apt-get install dataset-fashion-mnist`);
  process.exit(1);
}
ensureDir(out, '--out');
const teacher = defaultTeacherPath();
const pairsDir = path.join(out, 'pairs');

interface Method {
  id: string;
  label: string;
  /** the distillation settings (over the shared base); null for the undistilled teacher rows */
  dmd: Partial<DMDConfig> | null;
  /** for teacher rows: Heun with this many steps, or the teacher evaluated once at sigma 80 */
  heun?: number;
  once?: boolean;
  /** evaluate the EMA generator of another method's run */
  emaOf?: string;
  needsPairs?: boolean;
}

// Every distilled method shares dmd-train's default settings (learning rates, warm-up, batch, EMA) and
// differs only in what the ablation turns on and off.
const base: Partial<DMDConfig> = { ...DMDConfigSchema.parse({ gan: false }), lambdaReg: 0, steps, seed, device: 'cpu', sampleEvery: 1e9, checkpointEvery: Math.max(Math.min(steps, 250), 1), metricsEvery: 10, finalEval: 0 };
const gan = { gan: true, data: 'fashion-mnist' } as const;
const reg = (kind: 'l2' | 'pseudo-huber') => ({ pairs: pairsDir, regression: kind, lambdaReg: DMDConfigSchema.parse({}).lambdaReg });
const methods: Method[] = [
  { id: 'teacher-heun', label: `teacher, Heun ${heunSteps} steps`, dmd: null, heun: heunSteps },
  { id: 'teacher-once', label: 'teacher evaluated once at sigma 80 (no distillation)', dmd: null, once: true },
  { id: 'regression', label: 'regression only (pseudo-huber on teacher pairs)', dmd: { ...reg('pseudo-huber'), lambdaDm: 0 }, needsPairs: true },
  { id: 'dm-1', label: 'distribution matching only, fake:gen 1', dmd: { fakeUpdatesPerGen: 1 } },
  { id: 'dm-5', label: 'distribution matching only, fake:gen 5', dmd: { fakeUpdatesPerGen: 5 } },
  { id: 'dmd-l2', label: 'DMD: DM + regression (l2), fake:gen 1', dmd: { fakeUpdatesPerGen: 1, ...reg('l2') }, needsPairs: true },
  { id: 'dmd-ph', label: "DMD: DM + regression (pseudo-huber), fake:gen 1 (DMD's combination, the default recipe before the budget curves; here at 1000 iterations and without EMA)", dmd: { fakeUpdatesPerGen: 1, ...reg('pseudo-huber') }, needsPairs: true },
  { id: 'dmd2', label: 'DMD2: fake:gen 5 + GAN on real data', dmd: { fakeUpdatesPerGen: 5, ...gan, emaDecay: 0.95 } },
  { id: 'dmd2-ema', label: 'DMD2, its EMA generator (decay 0.95 per generator update)', dmd: null, emaOf: 'dmd2' },
  { id: 'dmd2-reg', label: 'DMD2 + regression (pseudo-huber)', dmd: { fakeUpdatesPerGen: 5, ...gan, ...reg('pseudo-huber'), emaDecay: 0.95 }, needsPairs: true },
  { id: 'dmd2-reg-ema', label: 'DMD2 + regression, its EMA generator', dmd: null, emaOf: 'dmd2-reg' },
];
const selected = methods.filter((m) => !only.length || only.includes(m.id) || (m.emaOf && only.includes(m.emaOf)));

interface Result {
  id: string;
  label: string;
  nfe: number;
  fd: number;
  fdFloor: number | null;
  accuracy: number;
  classMin: number;
  classMax: number;
  precision: number;
  recall: number;
  trainSeconds: number | null;
  imagesPerSecond: number;
  config: Partial<DMDConfig> | null;
  /** a remark on how this row was measured (written by hand into result.json), printed under the table */
  note?: string;
}

const log = (s: string) => console.log(`[ablation] ${s}`);
const quiet = () => {};
log(`${selected.length} methods, ${steps} iterations each, ${num} evaluation samples, seed ${seed}, ${getNumThreads()} threads, libtorch ${buildInfo().torchVersion}; results in ${out}`);

if (selected.some((m) => m.needsPairs)) {
  log(`teacher pairs: ${pairsCount} (cached in ${pairsDir})`);
  await makePairs(PairsConfigSchema.parse({ teacher, out: pairsDir, count: pairsCount, shardSize: 256, batchSize: 128, steps: heunSteps, seed, device: 'cpu' }), log);
}

const resultFile = (id: string) => path.join(out, id, 'result.json');
const results = new Map<string, Result>();
for (const m of methods) if (existsSync(resultFile(m.id))) results.set(m.id, JSON.parse(readFileSync(resultFile(m.id), 'utf8')) as Result);

async function evalModel(m: Method, model: { generator?: string; teacher?: string; steps?: number }, trainSeconds: number | null): Promise<Result> {
  const r = await evaluate(EvalConfigSchema.parse({ ...model, num, refNum, seed, device: 'cpu', batchSize: 250, out: path.join(out, m.id, 'metrics.json') }), quiet);
  const res: Result = {
    id: m.id, label: m.label, nfe: r.nfe as number, fd: r['FD-fmnist'] as number, fdFloor: (r['FD-fmnist_noise_floor'] as number | undefined) ?? null,
    accuracy: r.classifier_accuracy_on_samples as number, classMin: r.class_fraction_min as number, classMax: r.class_fraction_max as number,
    precision: r.precision as number, recall: r.recall as number, trainSeconds, imagesPerSecond: r.images_per_second as number, config: m.dmd,
  };
  atomicWrite(resultFile(m.id), `${JSON.stringify(res, null, 1)}\n`);
  log(`${m.id}: FD-fmnist ${res.fd.toFixed(3)} (floor ${res.fdFloor?.toFixed(3)}), accuracy ${res.accuracy.toFixed(3)}, precision ${res.precision.toFixed(3)}, recall ${res.recall.toFixed(3)}`);
  return res;
}

for (const m of selected) {
  if (results.has(m.id)) {
    log(`${m.id}: cached (${resultFile(m.id)})`);
    continue;
  }
  ensureDir(path.join(out, m.id), '--out');
  if (m.heun) results.set(m.id, await evalModel(m, { teacher, steps: m.heun }, null));
  else if (m.once) {
    const g = path.join(out, m.id, 'generator.safetensors');
    const net = loadEDM(teacher);
    saveGenerator(net, g, 80, { note: 'the teacher itself, evaluated once' });
    net.dispose();
    results.set(m.id, await evalModel(m, { generator: g }, null));
  } else if (m.emaOf) {
    const g = path.join(out, m.emaOf, 'run', 'generator-ema.safetensors');
    if (!existsSync(g)) { log(`${m.id}: needs the ${m.emaOf} run first`); continue; }
    results.set(m.id, await evalModel(m, { generator: g }, results.get(m.emaOf)?.trainSeconds ?? null));
  } else {
    const cfg = DMDConfigSchema.parse({ ...base, ...m.dmd, out: path.join(out, m.id, 'run'), resume: true });
    log(`${m.id}: training (${m.label})`);
    const tr = new DMDTrainer(cfg, log);
    const t0 = performance.now();
    const r = await tr.train(log, { progress: !process.env.CI });
    const secs = (performance.now() - t0) / 1000 + (r.resumedFrom ? Number.NaN : 0);
    tr.exportGenerator(path.join(out, m.id, 'run', 'generator-G.safetensors'), 'G');
    if (tr.ema) tr.exportGenerator(path.join(out, m.id, 'run', 'generator-ema.safetensors'), 'ema');
    tr.dispose();
    results.set(m.id, await evalModel(m, { generator: path.join(out, m.id, 'run', 'generator-G.safetensors') }, Number.isFinite(secs) ? secs : null));
  }
}

// ---- one row of the same noises (one image per class) per method ----------------------------------
const rows: Tensor[] = [];
const z = randn([10, 1, 32, 32], { generator: Generator.create('cpu', seed + 1) }).keep();
const labels = F.oneHot(tensor(Array.from({ length: 10 }, (_, i) => i), { dtype: 'int64' }), 10).keep();
for (const m of methods) {
  if (!results.has(m.id)) continue;
  const file = m.heun || m.once ? teacher : m.emaOf ? path.join(out, m.emaOf, 'run', 'generator-ema.safetensors') : path.join(out, m.id, 'run', 'generator-G.safetensors');
  const net = loadEDM(file);
  rows.push(noGrad(() => tidy(() => (m.heun ? sampleEDM(net, z, labels, { numSteps: m.heun }).x.to('float32') : generate(net, z, labels, 80)).clamp(-1, 1))).keep());
  net.dispose();
}
if (rows.length) saveGrid(cat(rows), path.join(out, 'samples.png'), 10);

// ---- results.md -----------------------------------------------------------------------------------------
// labels as the methods name them now (a cached result keeps the label of its run)
const ordered = methods.flatMap((m) => { const r = results.get(m.id); return r ? [{ ...r, label: m.label }] : []; });
const fmt = (v: number | null | undefined, d = 3) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(d));
const min = (s: number | null) => (s === null ? '–' : `${(s / 60).toFixed(1)} min`);
const teacherFd = results.get('teacher-heun')?.fd;
/** generator updates in the run: every iteration without a fake score, else every fakeUpdatesPerGen-th */
const genUpdates = (id: string): string => {
  const m = methods.find((x) => x.id === id)!;
  const d = m.dmd ?? (m.emaOf ? methods.find((x) => x.id === m.emaOf)!.dmd : null);
  if (!d) return '–';
  return String(d.lambdaDm === 0 ? steps : Math.ceil(steps / (d.fakeUpdatesPerGen ?? base.fakeUpdatesPerGen ?? 1)));
};
const lines = [
  '# DMD / DMD2 ablation on Fashion-MNIST',
  '',
  `Made by \`npm run experiment:ablation${quick ? ' -- --quick' : ''}\` (scripts/experiments/fmnist-ablation.ts) on ${new Date().toISOString().slice(0, 10)}: ` +
    `${os.cpus().length} CPU cores (${os.cpus()[0]?.model ?? 'unknown'}), ${getNumThreads()} libtorch threads, libtorch ${buildInfo().torchVersion}, no GPU.`,
  '',
  `Teacher: the bundled \`assets/fmnist-teacher.safetensors\`. Every distilled method: ${steps} iterations of batch ${base.batchSize}, seed ${seed}, the shared settings of the default recipe ` +
    `(gen/fake lr ${base.genLr}/${base.fakeLr}, warm-up ${base.warmupSteps}, regression weight ${DMDConfigSchema.parse({}).lambdaReg}), regression on ${pairsCount} teacher Heun pairs where used. ` +
    `An iteration updates the fake score and, every fake:gen-th iteration, the generator (regression only: the generator every iteration); "G updates" counts the generator's. ` +
    `Evaluation: ${num} class-balanced samples (seed ${seed}) against ${refNum} Fashion-MNIST training images, in the features of the bundled classifier; ` +
    `the noise floor is the FD of ${num} held-out real training images. Precision/recall: Kynkäänniemi et al. (2019), k = 3.`,
  '',
  '| method | NFE | G updates | FD-fmnist | × teacher | noise floor | accuracy | class min / max | precision | recall | training | img/s |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...ordered.map((r) => `| ${r.label} | ${r.nfe} | ${genUpdates(r.id)} | ${fmt(r.fd)} | ${teacherFd ? fmt(r.fd / teacherFd, 2) : '–'} | ${fmt(r.fdFloor)} | ${fmt(r.accuracy)} | ${fmt(r.classMin)} / ${fmt(r.classMax)} | ${fmt(r.precision)} | ${fmt(r.recall)} | ${min(r.trainSeconds)} | ${fmt(r.imagesPerSecond, 1)} |`),
  '',
  ...ordered.filter((r) => r.note).map((r) => `Note on "${r.label}": ${r.note}\n`),
  '`samples.png`: one row per method in this order, the same noise and class (0–9) in each column.',
  '',
];
atomicWrite(path.join(out, 'results.md'), `${lines.join('\n')}`);
writeFileSync(path.join(out, 'results.json'), `${JSON.stringify(ordered, null, 1)}\n`);
log(`wrote ${path.join(out, 'results.md')} and ${path.join(out, 'samples.png')}`);
