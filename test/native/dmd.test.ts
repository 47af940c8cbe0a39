// The DMD trainer end to end on the CPU with a small random teacher: with and without regression
// pairs, with the GAN option, finite losses, sample grids, bit-exact resume, NaN stop, SIGINT.
import test from 'ava';
import { existsSync, readdirSync, writeFileSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { randn, tensor, tidy, noGrad, dispose, readSafetensors, writeSafetensors, loadEDM, cuda, type Tensor } from '../../src/index.js';
import { distributionMatchingLoss, ganGeneratorLoss } from '../../src/dmd/losses.js';
import { EDMNoiseSchedule, EDMScoreModel } from '../../src/dmd/models/edm.js';
import { denoiser } from '../../src/edm/guidance.js';
import { karrasTable } from '../../src/edm/sigmas.js';
import { makePairs, PairsConfigSchema, PairsDataset } from '../../src/dmd/regression/pairs.js';
import { DMDTrainer, DMDSetupError } from '../../src/dmd/trainer.js';
import { resolveAutoPairs } from '../../src/dmd/regression/auto-pairs.js';
import { fileSha256 } from '../../src/util/fs.js';
import { NonFiniteLossError } from '../../src/train/errors.js';
import { CheckpointStore } from '../../src/train/checkpoints.js';
import { generate } from '../../src/edm/one-step.js';
import { DEFAULT_FIXTURES, readManifest } from '../parity/fixtures.js';
import { formulaWeights } from '../parity/kinds.js';
import { tempDir } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { tinyTeacher } from '../helpers/teacher.js';
import { pngClassFolder } from '../helpers/data.js';
import { FASHION_MNIST_DIR } from '../../src/data/sources.js';

const dir = tempDir();
const teacher = tinyTeacher(dir);
const quiet = () => {};
const pairsDir = path.join(dir, 'pairs');
const pairsReady = makePairs(PairsConfigSchema.parse({ teacher, out: pairsDir, count: 24, steps: 3, shardSize: 10, batchSize: 8, device: 'cpu' }), quiet);

test('the distribution-matching loss backpropagates grad / numel into the generator output', (t) => {
  const net = loadEDM(teacher);
  const fake = net.clone();
  noGrad(() => fake.parameters().forEach((p) => p.mul_(1.01)));
  const table = karrasTable(1000);
  const x = randn([2, 1, 32, 32]).requiresGrad_();
  const labels = tensor([[1, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]]);
  const dm = distributionMatchingLoss(x, labels, denoiser(net), denoiser(fake), new EDMNoiseSchedule({ numTrainTimesteps: 1000, sigmaMin: 0.002, sigmaMax: 80, rho: 7 }, 'cpu', 0.5), { tIndex: tensor([100, 900], { dtype: 'int64' }), noise: randn([2, 1, 32, 32]) });
  dm.loss.backward();
  t.true(x.grad!.allclose(dm.grad.div(x.numel), 1e-5, 1e-10));
  t.true(dm.grad.abs().max().item() > 0);
  t.deepEqual(dm.level.toArray().map((s) => +s.toFixed(4)), table.indexSelect(0, tensor([100, 900], { dtype: 'int64' })).toArray().map((s) => +s.toFixed(4)));
  net.dispose();
  fake.dispose();
});

const base = { teacher, batchSize: 4, device: 'cpu', sampleEvery: 10, checkpointEvery: 10, metricsEvery: 1, fakeUpdatesPerGen: 2, finalEval: 0 };

test('a few dozen iterations without pairs (DMD2 style): finite losses, grids, generator file', async (t) => {
  const out = path.join(dir, 'nopairs');
  const tr = new DMDTrainer({ ...base, out, steps: 24 }, quiet);
  const r = await tr.train(quiet, { progress: false });
  t.is(r.status, 'done');
  const lines = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  t.is(lines.length, 24);
  for (const l of lines) for (const k of ['loss_fake', 'loss_dm']) if (k in l) t.true(Number.isFinite(l[k]), `${k} at ${l.step}`);
  t.is(lines.filter((l) => l.gen_update === 1).length, 12);
  t.true(lines.some((l) => l.loss_dm! > 0));
  t.true(existsSync(path.join(out, 'samples-00000020.png')) && existsSync(path.join(out, 'samples-final.png')));
  const G = loadEDM(r.generator!);
  t.deepEqual(G.config, (tr.real as EDMScoreModel).net.config);
  const x = noGrad(() => generate(G, randn([2, 1, 32, 32]), tensor([[1, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]])));
  t.deepEqual(x.shape, [2, 1, 32, 32]);
  G.dispose();
  tr.dispose();
});

test('with regression pairs (l2 and LPIPS) the regression loss is used', async (t) => {
  await pairsReady;
  const lp = path.join(dir, 'lpips.safetensors');
  const c = readManifest(DEFAULT_FIXTURES).cases.find((x) => x.kind === 'lpips-vgg')!;
  writeSafetensors(lp, formulaWeights(c.weights as never));
  for (const [name, extra] of [['l2', { regression: 'l2' }], ['lpips', { regression: 'lpips', lpips: lp, lpipsResize: 0 }]] as const) {
    const out = path.join(dir, `pairs-${name}`);
    const tr = new DMDTrainer({ ...base, out, steps: 6, pairs: pairsDir, ...extra }, quiet);
    await tr.train(quiet, { progress: false });
    const lines = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    const reg = lines.filter((l) => 'loss_reg' in l).map((l) => l.loss_reg!);
    t.is(reg.length, 3, name);
    t.true(reg.every((v) => Number.isFinite(v) && v > 0), name);
    tr.dispose();
  }
});

test.serial('resume is bit-exact on the CPU: 20 iterations = 10 + resume + 10 (pairs, diffusion GAN, EMA)', async (t) => {
  await pairsReady;
  const cfg = { ...base, pairs: pairsDir, regression: 'l2' as const, gan: true, diffusionGan: true, data: pngClassFolder(dir), emaDecay: 0.9, sampleEvery: 100, checkpointEvery: 100 };
  const a = new DMDTrainer({ ...cfg, out: path.join(dir, 'straight'), steps: 20 }, quiet);
  await a.train(quiet, { progress: false });
  const b1 = new DMDTrainer({ ...cfg, out: path.join(dir, 'split'), steps: 10 }, quiet);
  await b1.train(quiet, { progress: false });
  b1.dispose();
  const b2 = new DMDTrainer({ ...cfg, out: path.join(dir, 'split'), steps: 20, resume: true }, quiet);
  await b2.train(quiet, { progress: false });
  for (const [name, x, y] of [['G', a.G, b2.G], ['fake', a.critic!.fake!, b2.critic!.fake!], ['head', a.critic!.head!, b2.critic!.head!], ['ema', a.ema!, b2.ema!]] as const) {
    const sa = x.stateDict();
    const sb = y.stateDict();
    let same = true;
    for (const [k, v] of sa) if (!v.equal(sb.get(k)!)) same = false;
    t.true(same, `${name} differs after resume`);
  }
  const la = readFileSync(path.join(dir, 'straight', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  const lb = readFileSync(path.join(dir, 'split', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  t.is(la.at(-1)!.loss_fake, lb.at(-1)!.loss_fake);
  t.is(la.at(-1)!.loss_gan_head, lb.at(-1)!.loss_gan_head);
  a.dispose();
  b2.dispose();
});

test.serial('--gan-features teacher with --lambda-dm 0: no fake score; G and the head on the frozen teacher learn, the teacher stays as it was; resume is bit-exact', async (t) => {
  await pairsReady;
  const cfg = { ...base, pairs: pairsDir, regression: 'l2' as const, lambdaDm: 0, gan: true, ganFeatures: 'teacher' as const, fakeUpdatesPerGen: 1, data: pngClassFolder(dir), emaDecay: 0.9, sampleEvery: 100, checkpointEvery: 100 };
  const a = new DMDTrainer({ ...cfg, out: path.join(dir, 'tgan-straight'), steps: 8 }, quiet);
  t.is(a.critic!.fake, null, 'no fake score is made');
  t.is(a.critic!.parameters().length, a.critic!.head!.parameters().length, 'the head is all the critic trains');
  const copy = (m: { stateDict(): Map<string, Tensor> }) => new Map([...m.stateDict()].map(([k, v]) => [k, v.clone()]));
  const teacher0 = copy(a.real);
  const head0 = copy(a.critic!.head!);
  await a.train(quiet, { progress: false });
  const same = (x: { stateDict(): Map<string, Tensor> }, sb: Map<string, Tensor>) => [...x.stateDict()].every(([k, v]) => v.equal(sb.get(k)!));
  t.true(same(a.real, teacher0), 'the teacher is not trained');
  t.false(same(a.critic!.head!, head0), 'the head is trained');
  const rows = readFileSync(path.join(dir, 'tgan-straight', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  t.true(rows.every((r) => r.loss_fake === undefined && Number.isFinite(r.loss_gan_head) && Number.isFinite(r.loss_gan_gen) && Number.isFinite(r.loss_reg)));
  const b1 = new DMDTrainer({ ...cfg, out: path.join(dir, 'tgan-split'), steps: 4 }, quiet);
  await b1.train(quiet, { progress: false });
  b1.dispose();
  const b2 = new DMDTrainer({ ...cfg, out: path.join(dir, 'tgan-split'), steps: 8, resume: true }, quiet);
  await b2.train(quiet, { progress: false });
  for (const [name, x, y] of [['G', a.G, b2.G], ['head', a.critic!.head!, b2.critic!.head!], ['ema', a.ema!, b2.ema!]] as const) t.true(same(x, y.stateDict()), `${name} differs after resume`);
  const ck = readdirSync(path.join(dir, 'tgan-split', 'checkpoints')).filter((f) => f.endsWith('.safetensors'));
  t.true(ck.length > 0);
  t.false([...readSafetensors(path.join(dir, 'tgan-split', 'checkpoints', ck.at(-1)!)).tensors.keys()].some((k) => k.startsWith('fake/')), 'the checkpoint holds no fake score');
  const meta = CheckpointStore.load<{ identity: Record<string, unknown> }>(path.join(dir, 'tgan-split', 'checkpoints', ck.at(-1)!));
  t.is(meta.meta.identity.ganSamples, 'fresh', 'resume compares every setting, defaults included');
  dispose(meta.tensors);
  t.throws(() => new DMDTrainer({ ...base, out: path.join(dir, 'tgan-nogan'), ganFeatures: 'teacher' }, quiet), { message: /--gan-features teacher places the GAN head, which only --gan adds/ });
  a.dispose();
  b2.dispose();
  dispose([teacher0, head0]);
});

test.serial('--gan-samples pairs: a GAN iteration runs the generator once, on the regression batch, and the head judges those outputs; --gan-batch-size judges the first samples only', async (t) => {
  await pairsReady;
  const cfg = { ...base, pairs: pairsDir, regression: 'l2' as const, lambdaDm: 0, gan: true, ganFeatures: 'teacher' as const, fakeUpdatesPerGen: 1, data: pngClassFolder(dir), emaDecay: 0.9, sampleEvery: 100, checkpointEvery: 100, steps: 4, batchSize: 4 };
  const count = (samples: 'fresh' | 'pairs', ganBatchSize = 0) => {
    const tr = new DMDTrainer({ ...cfg, ganSamples: samples, ganBatchSize, out: path.join(dir, `tgan-${samples}-${ganBatchSize}`) }, quiet);
    const outputs: Tensor[] = [];
    const judged: Tensor[] = [];
    const realRows: number[] = [];
    const forward = tr.generator.forward.bind(tr.generator);
    tr.generator.forward = (z, c) => {
      const x = forward(z, c);
      outputs.push(x.detach().clone().keep());
      return x;
    };
    const headLoss = tr.critic!.ganHeadLoss.bind(tr.critic!);
    tr.critic!.ganHeadLoss = (real, generated) => {
      judged.push(generated.x.clone().keep());
      realRows.push(real.x.shape[0]!);
      return headLoss(real, generated);
    };
    const m = tr.iteration();
    const rows = judged[0]!.shape[0]!;
    const r = { forwards: outputs.map((o) => o.shape[0]), judged: judged.length === 1 ? outputs.findIndex((o) => o.narrow(0, 0, Math.min(rows, o.shape[0]!)).equal(judged[0]!)) : -2, rows, realRows, m };
    dispose([...outputs, ...judged]);
    tr.dispose();
    return r;
  };
  const fresh = count('fresh');
  const pairs = count('pairs');
  t.deepEqual(fresh.forwards, [4, 4], 'DMD2: fresh samples and the regression batch');
  t.deepEqual(pairs.forwards, [4], 'the regression batch alone');
  t.is(fresh.judged, 0, "the head's turn judges the fresh samples");
  t.is(pairs.judged, 0, "the head's turn judges the regression batch's outputs");
  t.true(Number.isFinite(pairs.m.loss_gan_gen!) && Number.isFinite(pairs.m.loss_reg!) && Number.isFinite(pairs.m.loss_gan_head!));
  t.not(pairs.m.loss_gan_gen, fresh.m.loss_gan_gen);
  // --gan-batch-size 1: one fresh sample (or the regression batch's first output) against one real image; the regression keeps the whole batch
  const freshOne = count('fresh', 1);
  const pairsOne = count('pairs', 1);
  t.deepEqual(freshOne.forwards, [1, 4]);
  t.deepEqual([freshOne.judged, freshOne.rows, freshOne.realRows], [0, 1, [1]]);
  t.deepEqual(pairsOne.forwards, [4]);
  t.deepEqual([pairsOne.judged, pairsOne.rows, pairsOne.realRows], [0, 1, [1]]);
  t.is(freshOne.m.loss_reg, fresh.m.loss_reg, 'the same regression batch and loss');
  t.true(Number.isFinite(freshOne.m.loss_gan_gen!) && Number.isFinite(freshOne.m.loss_gan_head!));
  t.deepEqual(count('fresh', 4).m, fresh.m, 'the whole batch is the default');
  t.throws(() => new DMDTrainer({ ...cfg, ganSamples: 'pairs', lambdaDm: 1, out: path.join(dir, 'tgan-pairs-dm') }, quiet), { message: /--gan-samples pairs .* needs --gan, --pairs .* and --lambda-dm 0/ });
  t.throws(() => new DMDTrainer({ ...base, ganSamples: 'pairs', lambdaDm: 0, gan: true, data: cfg.data, out: path.join(dir, 'tgan-pairs-nopairs') }, quiet), { message: /--gan-samples pairs/ });
  t.throws(() => new DMDTrainer({ ...cfg, ganBatchSize: 2, lambdaDm: 1, out: path.join(dir, 'gb-dm') }, quiet), { message: /--gan-batch-size 2 below --batch-size 4 needs --lambda-dm 0/ });
  t.throws(() => new DMDTrainer({ ...cfg, ganBatchSize: 5, out: path.join(dir, 'gb-big') }, quiet), { message: /--gan-batch-size 5 is larger than the batch \(--batch-size 4\)/ });
  t.throws(() => new DMDTrainer({ ...cfg, ganBatchSize: 2, gan: false, ganFeatures: 'fake', out: path.join(dir, 'gb-nogan') }, quiet), { message: /--gan-batch-size 2 sets how many samples the GAN judges, which only --gan adds/ });
});

test.serial('--deterministic on the CPU changes nothing: the same losses and weights as the default kernels', async (t) => {
  await pairsReady;
  const cfg = { ...base, pairs: pairsDir, regression: 'l2' as const, gan: true, diffusionGan: true, data: pngClassFolder(dir), steps: 6, sampleEvery: 100, checkpointEvery: 100 };
  const a = new DMDTrainer({ ...cfg, out: path.join(dir, 'det-off') }, quiet);
  await a.train(quiet, { progress: false });
  const b = new DMDTrainer({ ...cfg, out: path.join(dir, 'det-on'), deterministic: true }, quiet);
  t.deepEqual(cuda.determinism(), { algorithms: true, warnOnly: false, cudnnDeterministic: true, cudnnBenchmark: false });
  t.is(process.env.CUBLAS_WORKSPACE_CONFIG, ':4096:8');
  await b.train(quiet, { progress: false });
  const sb = b.G.stateDict();
  t.true([...a.G.stateDict()].every(([k, v]) => v.equal(sb.get(k)!)));
  const last = (d: string) => readFileSync(path.join(dir, d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).map((r) => [r.loss_fake, r.loss_dm ?? null]);
  t.deepEqual(last('det-on'), last('det-off'));
  a.dispose();
  b.dispose();
  cuda.setDeterminism({ algorithms: false, cudnnDeterministic: false });
});

test('NaN losses stop the run and keep the last good checkpoint', async (t) => {
  const out = path.join(dir, 'nan');
  const tr = new DMDTrainer({ ...base, out, steps: 40, checkpointEvery: 2, genLr: 1e12, fakeLr: 1e12, warmupSteps: 0, gradClip: 0 }, quiet);
  const e = await t.throwsAsync(() => tr.train(quiet, { progress: false }), { instanceOf: NonFiniteLossError });
  t.regex(e!.message, /became (NaN|Infinity|-Infinity)|NaN\/Inf weights/);
  const cks = readdirSync(path.join(out, 'checkpoints'));
  for (const f of cks) {
    const r = readSafetensors(path.join(out, 'checkpoints', f));
    t.true(tidy(() => [...r.tensors].filter(([k]) => k.startsWith('G/')).every(([, v]) => v.isfinite().all().item() === 1)), `${f} holds non-finite weights`);
  }
  tr.dispose();
});

test('bad settings fail at start-up with the field named', (t) => {
  t.throws(() => new DMDTrainer({ ...base, out: path.join(dir, 'x'), steps: -1 }, quiet), { instanceOf: DMDSetupError, message: /steps/ });
  t.throws(() => new DMDTrainer({ ...base, out: path.join(dir, 'x'), pairs: pairsDir, regression: 'lpips' }, quiet), { message: /needs LPIPS weights/ });
  t.throws(() => new DMDTrainer({ ...base, out: path.join(dir, 'x'), gan: true }, quiet), { message: /--gan needs real images/ });
  t.throws(() => new DMDTrainer({ ...base, out: path.join(dir, 'x'), teacher: path.join(dir, 'none.pt') }, quiet), { message: /file not found/ });
  t.throws(() => new DMDTrainer({ ...base, out: path.join(dir, 'x'), bogus: 1 } as never, quiet), { message: /bogus/ });
});

const runTrain = (args: string[], onLine?: (l: string, interrupt: () => void) => void) => runCli('dmd-train', ['--final-eval', '0', ...args], { onLine });

test('dmd-train: SIGINT writes a checkpoint and exits 0; --resume continues', async (t) => {
  const out = path.join(dir, 'sigint');
  let sent = false;
  const r = await runTrain(['--teacher', teacher, '--out', out, '--steps', '400', '--batch-size', '2', '--device', 'cpu', '--checkpoint-every', '1000'], (l, kill) => {
    if (!sent && /^dmd \d+\/400/.test(l)) {
      sent = true;
      kill();
    }
  });
  t.is(r.code, 0, r.out);
  t.regex(r.out, /interrupted: checkpoint written at step \d+/);
  t.is(readdirSync(path.join(out, 'checkpoints')).length, 1);
  const again = await runTrain(['--teacher', teacher, '--out', out, '--steps', '400', '--device', 'cpu']);
  t.not(again.code, 0);
  t.regex(again.out, /already holds checkpoints \(newest: checkpoint-\d+\.safetensors\); pass --resume/);
});

test('dmd-train: flags and config files are validated, naming the field', async (t) => {
  const bad = await runTrain(['--teacher', teacher, '--steps', '-3']);
  t.is(bad.code, 1);
  t.regex(bad.out, /--steps/);
  const cfgFile = path.join(dir, 'bad.yaml');
  writeFileSync(cfgFile, 'steps: 5\nlearning_rate: 0.1\n');
  const r = await runTrain(['--teacher', teacher, '--config', cfgFile]);
  t.is(r.code, 1);
  t.regex(r.out, /unknown field\(s\) 'learningRate'/);
  const typo = await runTrain(['--teacher', teacher, '--stepz', '3']);
  t.is(typo.code, 1);
  t.regex(typo.out, /Unknown argument/i);
});

test('--eval-every logs FD and accuracy while training; the final evaluation is printed beside the teacher\'s figures', async (t) => {
  if (!existsSync(FASHION_MNIST_DIR)) return t.pass();
  const out = path.join(dir, 'evals');
  // the teacher's own figures, as `dmd eval --teacher T --out T.eval.json` writes them
  writeFileSync(teacher.replace(/\.safetensors$/, '.eval.json'), JSON.stringify({ mode: 'heun-18', nfe: 35, num: 1000, 'FD-fmnist': 2.5, classifier_accuracy_on_samples: 0.5 }));
  const logs: string[] = [];
  const tr = new DMDTrainer({ ...base, out, steps: 4, evalEvery: 2, evalNum: 20, evalRef: 'fashion-mnist:test', evalRefNum: 200, finalEval: 20 }, quiet);
  await tr.train((s) => logs.push(s), { progress: false });
  tr.dispose();
  const lines = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  const evals = lines.filter((l) => 'FD-fmnist' in l);
  t.deepEqual(evals.map((l) => l.step), [2, 4]);
  for (const l of evals) t.true(l['FD-fmnist']! >= 0 && l.eval_accuracy! >= 0 && l.eval_accuracy! <= 1);
  const final = logs.find((l) => l.startsWith('final evaluation'));
  t.truthy(final, logs.join('\n'));
  t.regex(final!, /FD-fmnist \d+\.\d{3} \(teacher heun-18 with NFE 35: 2\.500 at 1000 samples; ratio \d+\.\d{2}\), accuracy on intended classes \d\.\d{3} \(teacher 0\.500\)/);
  t.true(existsSync(path.join(out, 'final-eval.json')));
});

test('--pairs auto makes the teacher\'s pairs once, in the cache, and later runs reuse them', async (t) => {
  process.env.XDG_CACHE_HOME = path.join(dir, 'cache');
  const logs: string[] = [];
  const settings = { ...base, out: path.join(dir, 'auto-pairs'), steps: 2, pairs: 'auto', autoPairs: 6, seed: 3 };
  const first = await resolveAutoPairs(settings, (s) => logs.push(s));
  t.true(first.pairs!.startsWith(path.join(dir, 'cache', 'dmd-torch', 'pairs') + path.sep), first.pairs);
  const ds = new PairsDataset(first.pairs!);
  t.is(ds.manifest.count, 6);
  t.is(ds.manifest.teacher.sha256, fileSha256(teacher));
  ds.dispose();
  const shards = readdirSync(first.pairs!).filter((f) => f.endsWith('.safetensors')).map((f) => path.join(first.pairs!, f));
  t.is(shards.length, 1);
  const stamps = shards.map((f) => statSync(f).mtimeMs);
  const manifest = readFileSync(path.join(first.pairs!, 'pairs.json'), 'utf8');
  // the second run finds them complete: same directory, nothing rewritten; the trainer regresses onto them
  const tr = await DMDTrainer.create(settings, quiet);
  t.is(tr.cfg.pairs, first.pairs);
  await tr.train(quiet, { progress: false });
  tr.dispose();
  t.deepEqual(shards.map((f) => statSync(f).mtimeMs), stamps);
  t.is(readFileSync(path.join(first.pairs!, 'pairs.json'), 'utf8'), manifest);
  const metrics = readFileSync(path.join(dir, 'auto-pairs', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  t.true(metrics.some((m) => Number.isFinite(m.loss_reg)), JSON.stringify(metrics[0]));
  // another count is another dataset
  const other = await resolveAutoPairs({ ...settings, autoPairs: 4 }, quiet);
  t.not(other.pairs, first.pairs);
});

test("the generator turn's GAN term reaches the samples but computes no gradient of the critic's weights", (t) => {
  const tr = new DMDTrainer({ ...base, out: path.join(dir, 'frozen'), steps: 2, gan: true, data: pngClassFolder(dir) }, quiet);
  const critic = tr.critic!;
  tidy(() => {
    const x = randn([4, 1, 32, 32]).requiresGrad_();
    const labels = tensor([[1, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]]);
    critic.frozen(() => ganGeneratorLoss(critic.ganLogits(x, labels)).backward());
    t.true(x.grad !== null && x.grad.abs().sum().item() > 0, 'the samples get a gradient');
    t.true(critic.parameters().every((p) => p.grad === null), 'no critic weight gets one');
    t.true(critic.parameters().every((p) => p.requiresGrad), 'the critic is trainable again afterwards');
    // and outside the frozen section the same term does reach the critic's weights (what the fake-score turn needs)
    ganGeneratorLoss(critic.ganLogits(x, labels)).backward();
    t.true(critic.head!.parameters().some((p) => p.grad !== null));
  });
  tr.dispose();
});
