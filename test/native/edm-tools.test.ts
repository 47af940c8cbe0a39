// Samplers, the data loader, the pairs dataset and teacher training (short runs on the CPU).
import test from 'ava';
import { existsSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  F, randn, tensor, noGrad, Generator, karrasSteps, karrasTable, edmSample, sampleEDM, denoiser, loadEDM, openDataset, ImageLoader, type Denoiser,
  makePairs, PairsConfigSchema, PairsDataset, readPairsManifest, trainTeacher, TeacherConfigSchema, readSafetensors,
} from '../../src/index.js';
import { FASHION_MNIST_DIR } from '../../src/data/sources.js';
import { tempDir } from '../helpers/tmp.js';
import { tinyTeacher } from '../helpers/teacher.js';

const dir = tempDir();
const teacher = tinyTeacher(dir);
const quiet = () => {};

test('Karras steps: endpoints, monotone, t_N = 0; the DMD table is ascending', (t) => {
  const s = karrasSteps(18);
  t.is(s.length, 19);
  t.true(Math.abs(s[0]! - 80) < 1e-9 && Math.abs(s[17]! - 0.002) < 1e-12 && s[18] === 0);
  t.true(s.every((v, i) => i === 0 || v < s[i - 1]!));
  const table = karrasTable(1000);
  const v = table.toArray();
  t.true(Math.abs(v[0]! - 0.002) < 1e-6 && Math.abs(v[999]! - 80) < 1e-3);
  t.true(v.every((x, i) => i === 0 || x > v[i - 1]!));
});

test('Heun NFE = 2N-1, Euler NFE = N; stochastic sampling is reproducible with a generator', (t) => {
  const net = loadEDM(teacher);
  const z = randn([2, 1, 32, 32]);
  const labels = tensor([[1, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]]);
  let calls = 0;
  const D = denoiser(net);
  const counted: Denoiser = (x, s, l) => { calls++; return D(x, s, l); };
  const sigmas = karrasSteps(4);
  t.is(edmSample(counted, z, labels, sigmas).nfe, 7);
  t.is(calls, 7);
  t.is(edmSample(counted, z, labels, sigmas, { solver: 'euler' }).nfe, 4);
  // the solver takes any decreasing schedule ending in 0, and refuses others
  t.is(edmSample(counted, z, labels, [10, 1, 0.1, 0]).nfe, 5);
  t.throws(() => edmSample(counted, z, labels, [1, 10, 0]), { instanceOf: RangeError, message: /strictly decreasing and end with 0/ });
  t.throws(() => edmSample(counted, z, labels, [10, 1]), { instanceOf: RangeError });
  const a = sampleEDM(net, z, labels, { numSteps: 3, sChurn: 10, generator: Generator.create('cpu', 5) }).x;
  const b = sampleEDM(net, z, labels, { numSteps: 3, sChurn: 10, generator: Generator.create('cpu', 5) }).x;
  const c = sampleEDM(net, z, labels, { numSteps: 3 }).x;
  t.true(a.equal(b));
  t.false(a.equal(c));
  t.is(a.dtype, 'float64');
  net.dispose();
});

test('classifier-free guidance: w = 1 is the conditional denoiser, w = 0 the unconditional one', (t) => {
  const net = loadEDM(teacher);
  const x = randn([2, 1, 32, 32]);
  const labels = tensor([[0, 0, 1, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]]);
  noGrad(() => {
    const cond = net.forward(x, 3, { labels });
    const uncond = net.forward(x, 3, { labels: labels.mul(0) });
    t.true(denoiser(net, { guidance: 1 })(x, 3, labels).allclose(cond, 1e-5, 1e-6));
    t.true(denoiser(net, { guidance: 1e-9 })(x, 3, labels).allclose(uncond, 1e-4, 1e-5));
    const w2 = denoiser(net, { guidance: 2 })(x, 3, labels);
    t.true(w2.allclose(uncond.add(cond.sub(uncond).mul(2)), 1e-4, 1e-5));
    // per-sample noise levels (DMD's real score) give the same result as a shared one
    t.true(denoiser(net, { guidance: 2 })(x, tensor([3, 3]), labels).allclose(w2, 1e-5, 1e-6));
    t.throws(() => denoiser(net, { guidance: -1 }), { instanceOf: RangeError });
  });
  net.dispose();
});

test('the loader pads Fashion-MNIST 28 -> 32, shuffles by seed and restores its position', (t) => {
  if (!existsSync(FASHION_MNIST_DIR)) return t.pass();
  const src = openDataset('fashion-mnist:test');
  const mk = () => new ImageLoader(src, { batchSize: 8, resolution: 32, seed: 3 });
  const a = mk();
  const b1 = a.next();
  t.deepEqual(b1.images.shape, [8, 1, 32, 32]);
  t.deepEqual(b1.labels!.shape, [8, 10]);
  t.true(b1.images.min().item() >= -1 && b1.images.max().item() <= 1);
  t.is(b1.images.select(3, 0).max().item(), -1); // padding column
  const state = a.state();
  const next = a.next();
  const b = mk();
  b.loadState(state);
  t.deepEqual(b.next().indices, next.indices);
  t.notDeepEqual(mk().next().indices, new ImageLoader(src, { batchSize: 8, resolution: 32, seed: 4 }).next().indices);
  t.deepEqual(b1.labels!.sum(1).toArray(), new Array(8).fill(1));
  const rs = new ImageLoader(src, { batchSize: 2, resolution: 16 }).next();
  t.deepEqual(rs.images.shape, [2, 1, 16, 16]);
});

test('pairs: sharded, deterministic, resumable without rewriting complete shards', async (t) => {
  const out = path.join(dir, 'pairs');
  const cfg = PairsConfigSchema.parse({ teacher, out, count: 10, steps: 2, shardSize: 4, batchSize: 3, device: 'cpu', seed: 1 });
  const m = await makePairs(cfg, quiet);
  t.is(m.shards.length, 3);
  t.true(m.shards.every((s) => s.complete));
  t.is(m.sampler.nfe, 3);
  const first = path.join(out, m.shards[0]!.file);
  const mtime = statSync(first).mtimeMs;
  const y2 = readSafetensors(path.join(out, m.shards[2]!.file)).tensors.get('y')!;
  // simulate a run killed during shard 2
  unlinkSync(path.join(out, m.shards[2]!.file));
  const man = readPairsManifest(out);
  man.shards[2]!.complete = false;
  writeFileSync(path.join(out, 'pairs.json'), JSON.stringify(man));
  await makePairs(cfg, quiet);
  t.is(statSync(first).mtimeMs, mtime);
  t.true(readSafetensors(path.join(out, m.shards[2]!.file)).tensors.get('y')!.equal(y2));
  // the stored y is the teacher's Heun output for the stored z and label
  const r = readSafetensors(first).tensors;
  const net = loadEDM(teacher);
  const lab = r.get('label')!;
  t.deepEqual(lab.toArray(), [0, 1, 2, 3]);
  const y = noGrad(() => sampleEDM(net, r.get('z')!, F.oneHot(lab, 10), { numSteps: 2 }).x);
  t.true(y.to('float32').allclose(r.get('y')!, 1e-5, 1e-5));
  await t.throwsAsync(() => makePairs({ ...cfg, steps: 3 }, quiet), { message: /other settings \(sampler differ/ });
  // the default batch (by teacher and device) makes the same noises and labels as batches of 3, and the
  // same outputs up to the kernels' rounding at another batch size
  const auto = path.join(dir, 'pairs-auto-batch');
  await makePairs(PairsConfigSchema.parse({ ...cfg, batchSize: undefined, out: auto }), quiet);
  for (const sh of m.shards) {
    const [a, b] = [readSafetensors(path.join(auto, sh.file)).tensors, readSafetensors(path.join(out, sh.file)).tensors];
    t.true(a.get('z')!.equal(b.get('z')!) && a.get('label')!.equal(b.get('label')!), sh.file);
    const d = a.get('y')!.sub(b.get('y')!).abs().max().item();
    t.log(`${sh.file}: max |y difference| ${d.toExponential(1)}`);
    t.true(d < 1e-4, `${sh.file}: ${d}`);
  }
  const ds = new PairsDataset(out);
  const b = ds.batch(5, Generator.create('cpu', 0), 'cpu');
  t.deepEqual(b.z.shape, [5, 1, 32, 32]);
  t.deepEqual(b.index!.shape, [5]);
  t.is(b.index!.dtype, 'int64');
  ds.dispose();
  net.dispose();
});

test('pairs: another count of the same settings takes the complete shards of a set made before, byte for byte', async (t) => {
  const cfg = PairsConfigSchema.parse({ teacher, out: path.join(dir, 'reuse-10'), count: 10, steps: 2, shardSize: 4, batchSize: 4, device: 'cpu', seed: 2 });
  const donor = cfg.out;
  await makePairs(cfg, quiet);
  const bytes = (d: string, f: string) => readFileSync(path.join(d, f));
  for (const count of [8, 12]) {
    const logs: string[] = [];
    const out = path.join(dir, `reuse-${count}`);
    // another teacher setting's set is no donor: its shards are other bytes
    const other = path.join(dir, 'reuse-other-steps');
    if (count === 8) await makePairs({ ...cfg, out: other, steps: 3 }, quiet);
    const m = await makePairs({ ...cfg, count, out }, (s) => logs.push(s), { reuse: [other, donor] });
    const fresh = await makePairs({ ...cfg, count, out: path.join(dir, `fresh-${count}`) }, quiet);
    // 8: shards 0-3 and 4-7 are the donor's; 12: those two again, and 8-11 (the donor's third shard holds 8-9) is made
    const taken = logs.filter((l) => l.includes(`taken from ${donor}`));
    t.is(taken.length, 2, logs.join('\n'));
    for (const sh of m.shards) t.true(bytes(out, sh.file).equals(bytes(path.join(dir, `fresh-${count}`), sh.file)), `${count}: ${sh.file}`);
    t.is(fresh.shards.length, m.shards.length);
    const ds = new PairsDataset(out);
    t.is(ds.size, count);
    ds.dispose();
  }
});

// serial: the default CPU generator (dropout) is process-wide, so no other test may draw from it meanwhile
test.serial('teacher training: a short run writes the teacher and resumes exactly', async (t) => {
  if (!existsSync(FASHION_MNIST_DIR)) return t.pass();
  const net = { model_type: 'SongUNet', img_resolution: 32, img_channels: 1, label_dim: 10, model_channels: 8, channel_mult: [1, 2], num_blocks: 1, attn_resolutions: [], dropout: 0.1 };
  const base = { data: 'fashion-mnist:test', network: net, batchSize: 8, kimg: 0.048, lrRampupKimg: 0.01, sampleEvery: 1000, checkpointEvery: 3, metricsEvery: 1, device: 'cpu', format: 'pt' };
  const a = await trainTeacher(TeacherConfigSchema.parse({ ...base, out: path.join(dir, 'ta') }), quiet);
  t.is(a.steps, 6);
  t.true(existsSync(a.teacherPath));
  const teacherNet = loadEDM(a.teacherPath);
  t.is(teacherNet.config.model_channels, 8);
  teacherNet.dispose();
  const losses = readFileSync(path.join(dir, 'ta', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).loss as number);
  t.true(losses.every(Number.isFinite));
  await trainTeacher(TeacherConfigSchema.parse({ ...base, kimg: 0.024, out: path.join(dir, 'tb') }), quiet);
  const b = await trainTeacher(TeacherConfigSchema.parse({ ...base, out: path.join(dir, 'tb'), resume: true }), quiet);
  t.is(b.steps, 6);
  const x = loadEDM(a.teacherPath);
  const y = loadEDM(b.teacherPath);
  const sx = x.stateDict();
  let same = true;
  for (const [k, v] of y.stateDict()) if (!v.equal(sx.get(k)!)) same = false;
  t.true(same, 'resumed teacher differs from the straight run');
  x.dispose();
  y.dispose();
});
