// Lifetime: tidy() frees everything but its result; 1000 training-like steps (EDM forward, loss,
// backward, AdamW) leave liveTensors() flat and RSS bounded; the commands' code paths (pairs, DMD with
// everything on, teacher training, evaluation) free every tensor explicitly, none is left to the GC.
import test from 'ava';
import path from 'node:path';
import { tensor, tidy, keep, dispose, liveTensors, randn, ones, EDMNetwork, AdamW, Generator, foreach, noGrad, traceTensors, FeatureClassifier } from '../../src/index.js';
import { makePairs, PairsConfigSchema } from '../../src/dmd/regression/pairs.js';
import { DMDTrainer } from '../../src/dmd/trainer.js';
import { trainTeacher, TeacherConfigSchema } from '../../src/teacher/train.js';
import { evaluate, EvalConfigSchema } from '../../src/metrics/evaluate.js';
import { tempDir } from '../helpers/tmp.js';
import { tinyTeacher, TINY_TEACHER } from '../helpers/teacher.js';
import { pngClassFolder } from '../helpers/data.js';

test('tidy frees intermediates, keeps results (nested, in objects), and frees on throw', (t) => {
  const before = liveTensors();
  const r = tidy(() => {
    const a = ones([3]);
    const b = a.mul(2);
    const inner = tidy(() => ({ keepMe: b.add(1), list: [b.sub(1)] }));
    b.exp();
    return inner;
  });
  t.is(liveTensors() - before, 2);
  t.deepEqual(r.keepMe.toArray(), [3, 3, 3]);
  dispose(r);
  t.is(liveTensors(), before);
  t.throws(() =>
    tidy(() => {
      ones([2]).mul(3);
      throw new Error('boom');
    }),
  );
  t.is(liveTensors(), before);
  const k = tidy(() => keep(ones([1])));
  t.false(k.isDisposed);
  k.dispose();
  t.is(liveTensors(), before);
});

test('using disposes at the end of a block', (t) => {
  const before = liveTensors();
  {
    using x = ones([4]);
    t.is(x.sum().item(), 4);
  }
  t.true(liveTensors() <= before + 1); // the .sum() result lives until GC or scope
});

test('tidy rejects async functions', (t) => {
  t.throws(() => tidy(() => Promise.resolve(1) as unknown as number), { instanceOf: TypeError, message: /synchronous/ });
});

test('1000 training steps keep live tensors flat and RSS bounded', (t) => {
  const net = EDMNetwork.create(
    { model_type: 'SongUNet', img_resolution: 8, img_channels: 1, label_dim: 2, model_channels: 8, channel_mult: [1, 2], num_blocks: 1, attn_resolutions: [4], dropout: 0.1 },
    { seed: 0 },
  );
  net.train();
  const opt = new AdamW(net.parameters(), { lr: 1e-4 });
  const gen = Generator.create('cpu', 0);
  const labels = keep(tensor([[1, 0], [0, 1], [1, 0], [0, 1]]));
  const step = () =>
    tidy(() => {
      const x = randn([4, 1, 8, 8], { generator: gen });
      const sigma = randn([4], { generator: gen }).mul(1.2).sub(1.2).exp();
      const n = randn([4, 1, 8, 8], { generator: gen });
      const D = net.forward(x.add(n.mul(sigma.reshape([-1, 1, 1, 1]))), sigma, { labels });
      const w = sigma.square().add(0.25).div(sigma.mul(0.5).square());
      const loss = w.reshape([-1, 1, 1, 1]).mul(D.sub(x).square()).mean();
      opt.zeroGrad();
      loss.backward();
      foreach.clipGradNorm_(net.parameters(), 10);
      opt.step();
      return loss.item();
    });
  for (let i = 0; i < 20; i++) step();
  global.gc?.();
  const live0 = liveTensors();
  const rss0 = process.memoryUsage().rss;
  let last = 0;
  for (let i = 0; i < 1000; i++) last = step();
  const live1 = liveTensors();
  const rss1 = process.memoryUsage().rss;
  t.true(Number.isFinite(last));
  t.is(live1, live0, `live tensors ${live0} -> ${live1}`);
  const growth = (rss1 - rss0) / 2 ** 20;
  t.log(`RSS ${(rss0 / 2 ** 20).toFixed(0)} MiB -> ${(rss1 / 2 ** 20).toFixed(0)} MiB over 1000 steps`);
  t.true(growth < 64, `RSS grew by ${growth.toFixed(1)} MiB`);
  noGrad(() => t.true(foreach.allFinite(net.parameters())));
  opt.dispose();
  net.dispose();
});

test('traceTensors names where a tensor that was never disposed was created', (t) => {
  const stop = traceTensors();
  const kept = randn([3]);
  tidy(() => randn([2]).add(1).sum().item());
  const freed = randn([4]);
  freed.dispose();
  const left = stop();
  t.is(left.length, 1);
  t.is(left[0]!.count, 1);
  t.regex(left[0]!.site, /memory\.test\.ts/);
  t.throws(() => { const s = traceTensors(); try { traceTensors(); } finally { s(); } }, { message: /already running/ });
  kept.dispose();
});

test.serial('pairs, a DMD run (pairs, diffusion GAN, EMA, in-run FD), teacher training and evaluation leave no tensor to the GC', async (t) => {
  const dir = tempDir();
  const teacher = tinyTeacher(dir);
  const data = pngClassFolder(dir);
  const classifier = path.join(dir, 'cls.safetensors');
  const c = FeatureClassifier.create({ inChannels: 1, classes: 10, width: 8, resolution: 32, name: 'tiny' }, 0);
  c.save(classifier);
  c.dispose();
  const quiet = () => {};
  const stop = traceTensors();
  const pairs = path.join(dir, 'pairs');
  await makePairs(PairsConfigSchema.parse({ teacher, out: pairs, count: 12, steps: 2, shardSize: 8, batchSize: 4, device: 'cpu' }), quiet);
  const tr = new DMDTrainer({
    teacher, device: 'cpu', out: path.join(dir, 'dmd'), steps: 6, batchSize: 4, fakeUpdatesPerGen: 2, pairs, regression: 'l2', gan: true, diffusionGan: true, data,
    emaDecay: 0.9, evalEvery: 3, evalNum: 8, evalRef: data, evalRefNum: 10, classifier, sampleEvery: 3, checkpointEvery: 3, finalEval: 0,
  }, quiet);
  const r = await tr.train(quiet, { progress: false });
  tr.dispose();
  await trainTeacher(TeacherConfigSchema.parse({ data, network: TINY_TEACHER, kimg: 0.016, batchSize: 4, out: path.join(dir, 'teacher'), device: 'cpu', sampleEvery: 2, checkpointEvery: 2 }), quiet, { progress: false });
  await evaluate(EvalConfigSchema.parse({ generator: r.generator, num: 8, batchSize: 4, ref: data, refNum: 10, classifier, device: 'cpu', out: path.join(dir, 'metrics.json') }), quiet);
  t.deepEqual(stop(), []);
});
