// The phased DMD run (--dm-start, --fake-warmup): regression alone, then the fake score alone, then
// DMD proper. The regression phase is exactly a regression-only run (same draws, same weights), the
// phases follow the schedule in the metrics, resuming across the phase boundaries is bit-exact, and
// settings that leave a phase without its loss are refused.
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { makePairs, PairsConfigSchema } from '../../src/dmd/regression/pairs.js';
import { DMDTrainer, DMDSetupError } from '../../src/dmd/trainer.js';
import type { ScoreModel } from '../../src/dmd/score-model.js';
import { tempDir } from '../helpers/tmp.js';
import { tinyTeacher } from '../helpers/teacher.js';

const dir = tempDir();
const teacher = tinyTeacher(dir);
const quiet = () => {};
const pairsDir = path.join(dir, 'pairs');
const pairsReady = makePairs(PairsConfigSchema.parse({ teacher, out: pairsDir, count: 16, steps: 3, shardSize: 16, batchSize: 8, device: 'cpu' }), quiet);
const base = { teacher, batchSize: 4, device: 'cpu', sampleEvery: 100, checkpointEvery: 100, metricsEvery: 1, finalEval: 0, warmupSteps: 2, regression: 'l2' as const };

const same = (a: ScoreModel, b: ScoreModel) => {
  const sb = b.stateDict();
  return [...a.stateDict()].every(([k, v]) => v.equal(sb.get(k)!));
};
const records = (out: string) => readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);

test.serial('--dm-start 4 --fake-warmup 3, fake:gen 2: regression alone = a regression-only run, then the fake score alone, then DMD', async (t) => {
  await pairsReady;
  const phased = new DMDTrainer({ ...base, pairs: pairsDir, out: path.join(dir, 'phased'), steps: 13, dmStart: 4, fakeWarmup: 3, fakeUpdatesPerGen: 2, emaDecay: 0.9 }, quiet);
  const regOnly = new DMDTrainer({ ...base, pairs: pairsDir, out: path.join(dir, 'reg'), steps: 4, lambdaDm: 0, emaDecay: 0.9 }, quiet);
  t.deepEqual([0, 3, 4, 6, 7, 12].map((s) => phased.phase(s)), ['regression', 'regression', 'fake-warmup', 'fake-warmup', 'dmd', 'dmd']);
  t.regex(phased.describe(), /regression alone for the first 4 iterations, then 3 iterations of fake-score warm-up/);
  const fake0 = phased.critic!.fake!.clone();
  for (let i = 0; i < 4; i++) {
    phased.iteration();
    regOnly.iteration();
  }
  t.true(same(phased.G, regOnly.G), 'after the regression phase G equals the regression-only run');
  t.true(same(phased.ema!, regOnly.ema!));
  t.true(same(phased.critic!.fake!, fake0), 'the fake score is not trained in the regression phase');
  const G4 = phased.G.clone();
  for (let i = 0; i < 3; i++) phased.iteration();
  t.true(same(phased.G, G4), 'the generator is fixed during the fake-score warm-up');
  t.false(same(phased.critic!.fake!, fake0));
  const m = phased.iteration();
  t.is(m.gen_update, 1);
  t.true(m.loss_dm! > 0 && Number.isFinite(m.loss_reg));
  t.false(same(phased.G, G4));
  regOnly.dispose();
  phased.dispose();
  fake0.dispose();
  G4.dispose();
});

test.serial('a phased run resumed across both boundaries is bit-exact, and its metrics follow the phases', async (t) => {
  await pairsReady;
  const cfg = { ...base, pairs: pairsDir, dmStart: 4, fakeWarmup: 3, fakeUpdatesPerGen: 2, emaDecay: 0.9 };
  const a = new DMDTrainer({ ...cfg, out: path.join(dir, 'straight'), steps: 12 }, quiet);
  await a.train(quiet, { progress: false });
  for (const [out, steps] of [['split', 3], ['split', 6], ['split', 12]] as const) {
    const b = new DMDTrainer({ ...cfg, out: path.join(dir, out), steps, resume: true }, quiet);
    await b.train(quiet, { progress: false });
    if (steps === 12) {
      for (const [x, y] of [[a.G, b.G], [a.critic!.fake!, b.critic!.fake!], [a.ema!, b.ema!]] as const) t.true(same(x, y));
    }
    b.dispose();
  }
  const r = records(path.join(dir, 'straight'));
  t.deepEqual(r.map((x) => x.gen_update), [1, 1, 1, 1, 0, 0, 0, 1, 0, 1, 0, 1]);
  t.true(r.slice(0, 4).every((x) => x.loss_fake === undefined && x.loss_dm === undefined && x.loss_reg! > 0));
  t.true(r.slice(4, 7).every((x) => x.loss_fake! > 0 && x.loss_dm === undefined && x.loss_reg === undefined));
  t.true(r.slice(7).every((x) => x.loss_fake! > 0 && (x.gen_update === 0 || (x.loss_dm! > 0 && x.loss_reg! > 0))));
  t.deepEqual(records(path.join(dir, 'split')).map((x) => x.loss_fake ?? null), r.map((x) => x.loss_fake ?? null));
  a.dispose();
});

test.serial("--lr-decay: the generator's learning rate falls linearly to 0 over the run's last iterations, the fake score's does not", async (t) => {
  await pairsReady;
  const out = path.join(dir, 'decay');
  const tr = new DMDTrainer({ ...base, pairs: pairsDir, out, steps: 8, lrDecay: 4, fakeUpdatesPerGen: 1 }, quiet);
  t.regex(tr.describe(), /generator lr 0\.0001 falling linearly to 0 over the last 4 iterations/);
  const lrs = { G: [] as number[], F: [] as number[] };
  for (const [k, opt] of [['G', tr.optG], ['F', tr.optF!]] as const) {
    const step = opt.step.bind(opt);
    opt.step = (lr?: number) => { lrs[k].push(lr!); step(lr!); };
  }
  const seen: number[] = [];
  for (let i = 0; i < 8; i++) seen.push(tr.iteration().lr_scale!);
  t.deepEqual(seen, [0.5, 1, 1, 1, 1, 0.75, 0.5, 0.25]);
  t.deepEqual(lrs.G, seen.map((s) => tr.cfg.genLr * s));
  t.deepEqual(lrs.F, [0.5, 1, 1, 1, 1, 1, 1, 1].map((s) => tr.cfg.fakeLr * s), 'the fake score keeps its rate');
  tr.dispose();
  t.throws(() => new DMDTrainer({ ...base, pairs: pairsDir, out: path.join(dir, 'decay-bad'), steps: 8, lrDecay: 9 }, quiet), { instanceOf: DMDSetupError, message: /--lr-decay 9 is longer than the run \(--steps 8\)/ });
});

test('phase settings that leave a phase without its loss are refused', async (t) => {
  await pairsReady;
  const err = (o: Record<string, unknown>) => t.throws(() => new DMDTrainer({ ...base, out: path.join(dir, 'bad'), steps: 10, ...o }, quiet), { instanceOf: DMDSetupError });
  t.regex(err({ dmStart: 3 }).message, /--dm-start 3 trains by regression alone first, which needs --pairs/);
  t.regex(err({ pairs: pairsDir, dmStart: 3, lambdaDm: 0 }).message, /--lambda-dm 0 turns off/);
});
