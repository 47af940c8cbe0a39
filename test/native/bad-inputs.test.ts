// A sweep of bad inputs across the command line, files, pairs and resuming: each must end in a clear
// error naming the flag or file (or, where the issue allows, a warning and a safe recovery) — never a
// hang, a crash, a raw libtorch message or a silent acceptance. The teacher/format cases of
// checkpoint.test.ts and the API cases of errors.test.ts add to these.
import test from 'ava';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import {
  loadEDM, saveEDM, readEDMConfig, readSafetensors, writeSafetensors, writeTorchSave, tensor, tidy, noGrad, DMDTrainer, makePairs, PairsConfigSchema, PairsDataset,
  FeatureClassifier, evaluate, EvalConfigSchema, type Tensor,
} from '../../src/index.js';
import { tempDir } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { tinyTeacher } from '../helpers/teacher.js';
import { trainTeacher, TeacherConfigSchema } from '../../src/teacher/train.js';
import { FASHION_MNIST_DIR } from '../../src/data/sources.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = tempDir();
const teacher = tinyTeacher(dir);
const quiet = () => {};
const generatorFile = path.join(dir, 'generator.safetensors');
{
  const net = loadEDM(teacher);
  saveEDM(net, generatorFile, { generator_sigma: '80' }, 'generator');
  net.dispose();
}
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

const cli = (bin: 'dmd' | 'dmd-train', args: string[]) => runCli(bin, args);

/** Runs async jobs at most `n` at a time. */
async function pool<T>(jobs: (() => Promise<T>)[], n: number): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  }));
  return out;
}

// ---- the command line -------------------------------------------------------------------------------
const cfgDir = path.join(dir, 'a-directory');
mkdirSync(cfgDir);
const aFile = path.join(dir, 'a-file.txt');
writeFileSync(aFile, 'x');
symlinkSync(path.join(dir, 'nowhere.yaml'), path.join(dir, 'dangling.yaml'));
const cliCases: [string, 'dmd' | 'dmd-train', string[], RegExp][] = [
  ['a value flag without its value (--teacher)', 'dmd-train', ['--teacher'], /Not enough arguments following: teacher/],
  ['a value flag without its value (--steps)', 'dmd-train', ['--steps', '--seed', '1'], /Not enough arguments following: steps/],
  ['--out ""', 'dmd-train', ['--teacher', teacher, '--out', ''], /--out: must not be empty/],
  ['--dtype float16 on the CPU', 'dmd-train', ['--teacher', teacher, '--device', 'cpu', '--dtype', 'float16', '--out', path.join(dir, 'f16')], /--dtype float16 needs CUDA/],
  ['--sigma-min above --sigma-max', 'dmd-train', ['--teacher', teacher, '--sigma-min', '80', '--sigma-max', '1', '--out', path.join(dir, 's')], /--sigma-min \(80\) must be below --sigma-max \(1\)/],
  ['--config /dev/zero', 'dmd-train', ['--config', '/dev/zero'], /--config: config file \/dev\/zero: is not a regular file/],
  ['--config a directory', 'dmd-train', ['--config', cfgDir], /is a directory, expected a file/],
  ['--config a dangling symlink', 'dmd-train', ['--config', path.join(dir, 'dangling.yaml')], /dangling symbolic link/],
  ['--out under /proc', 'dmd-train', ['--teacher', teacher, '--out', '/proc/dmd-x/run'], /pseudo file system/],
  ['--out under a file', 'dmd-train', ['--teacher', teacher, '--out', path.join(aFile, 'run')], /is a file, not a directory/],
  ['--device gpu', 'dmd-train', ['--teacher', teacher, '--device', 'gpu'], /--device: must be 'cpu', 'cuda', 'cuda:N' or 'auto'/],
  ['--steps NaN', 'dmd-train', ['--teacher', teacher, '--steps', 'nan'], /--steps/],
  ['--seed -1', 'dmd-train', ['--teacher', teacher, '--seed', '-1'], /--seed/],
  ['--ema-decay 1', 'dmd-train', ['--teacher', teacher, '--ema-decay', '1'], /--ema-decay/],
  ['a generator as --teacher', 'dmd-train', ['--teacher', generatorFile, '--out', path.join(dir, 'g')], /is a one-step generator from dmd-train, not a teacher/],
  ['an absurd --batch-size', 'dmd-train', ['--teacher', teacher, '--batch-size', '1000000', '--out', path.join(dir, 'big')], /--batch-size 1000000 needs an estimated [\d.]+ GiB .*; lower --batch-size \(\d+ fits by the estimate\)/],
  ['--lambda-dm 0 without pairs or GAN', 'dmd-train', ['--teacher', teacher, '--lambda-dm', '0', '--out', path.join(dir, 'l0')], /leaves no loss for the generator/],
  ['--teacher and --generator together', 'dmd', ['sample', '--teacher', teacher, '--generator', generatorFile], /either --generator .* or --teacher/],
  ['a teacher as --generator', 'dmd', ['sample', '--generator', teacher, '--out', path.join(dir, 'x.png')], /is a teacher, not a one-step generator/],
  ['a generator as --teacher (dmd sample)', 'dmd', ['sample', '--teacher', generatorFile, '--out', path.join(dir, 'y.png')], /is a one-step generator from dmd-train, not a teacher/],
  ['a generator as --teacher (dmd pairs)', 'dmd', ['pairs', '--teacher', generatorFile, '--out', path.join(dir, 'gp')], /one-step generator/],
  ['--labels beyond the classes', 'dmd', ['sample', '--teacher', teacher, '--labels', '12', '--out', path.join(dir, 'l.png')], /--labels: the network has 10 classes/],
  ['dmd pairs --out is a file', 'dmd', ['pairs', '--teacher', teacher, '--out', aFile], /exists and is a file/],
  ['dmd pairs --sigma-min above --sigma-max', 'dmd', ['pairs', '--teacher', teacher, '--out', path.join(dir, 'ps'), '--sigma-min', '9', '--sigma-max', '1'], /--sigma-min \(9\) must be below --sigma-max/],
  ['dmd eval --ref missing (checked before sampling)', 'dmd', ['eval', '--teacher', teacher, '--ref', path.join(dir, 'no-such-dataset')], /dataset '.*no-such-dataset' not found/],
  ['dmd eval --out under /proc (checked before sampling)', 'dmd', ['eval', '--teacher', teacher, '--out', '/proc/dmd/m.json'], /--out .*pseudo file system/],
  ['dmd eval --classifier is a teacher file', 'dmd', ['eval', '--teacher', teacher, '--ref', 'fashion-mnist:test', '--classifier', teacher], /not a dmd classifier file/],
  ['dmd teacher --data /dev/null', 'dmd', ['teacher', '--out', path.join(dir, 'tn'), '--data', '/dev/null'], /neither a dataset file nor a directory/],
  ['dmd teacher --preset unknown', 'dmd', ['teacher', '--out', path.join(dir, 'tp'), '--preset', 'nope'], /unknown network preset 'nope'/],
];

test(`${cliCases.length} bad command lines: one-line errors naming the flag or file, exit 1, quickly`, async (t) => {
  const results = await pool(cliCases.map(([, bin, args]) => () => cli(bin, args)), 4);
  cliCases.forEach(([name, , , re], i) => {
    const r = results[i]!;
    t.is(r.code, 1, `${name}: exit code ${r.code}\n${r.out}`);
    t.regex(r.out, re, name);
    t.regex(r.out, /^error: /m, `${name}: no 'error:' line`);
    t.notRegex(r.out, /\n\s+at .*\.(ts|js):\d+/, `${name}: a stack trace was printed`);
    t.true(r.ms < 30_000, `${name}: took ${(r.ms / 1000).toFixed(1)} s`);
  });
});

test('--help wraps descriptions on word boundaries', async (t) => {
  const r = await cli('dmd-train', ['--help']);
  t.is(r.code, 0);
  const flat = r.out.replace(/\s+/g, ' ');
  // every word of a long description appears whole (a mid-word line break would split one)
  for (const word of ['two', 'time-scale', 'fake-score', 'distribution-matching', 'Fashion-MNIST', 'regression', 'checkpoint', 'TensorFloat-32', 'bit-exact'])
    t.true(new RegExp(`(^|[\\s(])${word.replace(/[-.]/g, '\\$&')}[\\s,;:).]`).test(flat), `'${word}' is split or missing`);
  for (const line of r.out.split('\n')) t.true(line.length <= 110, `line longer than the wrap width: ${line}`);
});

// ---- files ------------------------------------------------------------------------------------------
test('damaged and misnamed teacher files are named, not loaded', (t) => {
  const pt = path.join(dir, 'teacher.pt');
  const net = loadEDM(teacher);
  saveEDM(net, pt);
  net.dispose();
  // one flipped bit inside a stored tensor record: libtorch alone would load the wrong weights
  const bytes = readFileSync(pt);
  const pos = bytes.indexOf(Buffer.from('data/0')) + 200;
  const bad = Buffer.from(bytes);
  bad[pos] = bad[pos]! ^ 0x01;
  writeFileSync(path.join(dir, 'flipped.pt'), bad);
  t.throws(() => loadEDM(path.join(dir, 'flipped.pt')), { message: /flipped\.pt: damaged or not a torch\.save file .*CRC-32/ });
  // the content decides: a safetensors file named .pt still loads; bytes that are neither are refused by name
  writeFileSync(path.join(dir, 'st-named.pt'), readFileSync(teacher));
  const viaContent = loadEDM(path.join(dir, 'st-named.pt'));
  t.deepEqual(viaContent.config, readEDMConfig(teacher));
  viaContent.dispose();
  const garbage = Buffer.from(readFileSync(teacher));
  garbage.fill(0, 0, 16);
  writeFileSync(path.join(dir, 'not-zip.pt'), garbage);
  t.throws(() => loadEDM(path.join(dir, 'not-zip.pt')), { message: /named like a torch\.save or pickle file but is neither a zip archive nor a pickle/ });
  symlinkSync(path.join(dir, 'gone.safetensors'), path.join(dir, 'dangling.safetensors'));
  t.throws(() => loadEDM(path.join(dir, 'dangling.safetensors')), { message: /is a dangling symbolic link/ });
  t.throws(() => loadEDM('/dev/zero'), { message: /is not a regular file/ });
  const noCfg = path.join(dir, 'no-config.pt');
  writeTorchSave(noCfg, { state_dict: { w: tensor([1]) } });
  t.throws(() => loadEDM(noCfg), { message: /has no "config" entry/ });
});

// ---- pairs -------------------------------------------------------------------------------------------
const pairsDir = path.join(dir, 'pairs');
const pairsReady = makePairs(PairsConfigSchema.parse({ teacher, out: pairsDir, count: 12, steps: 2, shardSize: 6, batchSize: 6, device: 'cpu' }), quiet);

/** A copy of the pairs dataset with one change. */
function damagedPairs(name: string, change: (d: string) => void): string {
  const d = path.join(dir, `pairs-${name}`);
  mkdirSync(d);
  for (const f of readdirSync(pairsDir)) copyFileSync(path.join(pairsDir, f), path.join(d, f));
  change(d);
  return d;
}
function rewriteShard(d: string, edit: (t: Map<string, Tensor>) => void): void {
  const f = path.join(d, 'pairs-00001.safetensors');
  const r = readSafetensors(f);
  edit(r.tensors);
  writeSafetensors(f, r.tensors, r.metadata);
}
function editManifest(d: string, edit: (m: Record<string, unknown>) => void): void {
  const f = path.join(d, 'pairs.json');
  const m = JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;
  edit(m);
  writeFileSync(f, JSON.stringify(m));
}

test('bad pairs datasets are refused with the file and the problem named', async (t) => {
  await pairsReady;
  const cases: [string, string, RegExp][] = [
    ['NaN in y', damagedPairs('nan', (d) => rewriteShard(d, (m) => tidy(() => m.set('y', m.get('y')!.clone().fill_(Number.NaN).keep())))), /holds NaN or Inf values/],
    ['Inf in z', damagedPairs('inf', (d) => rewriteShard(d, (m) => tidy(() => m.set('z', m.get('z')!.clone().fill_(Infinity).keep())))), /holds NaN or Inf values/],
    ['labels out of range', damagedPairs('labels', (d) => rewriteShard(d, (m) => m.set('label', tensor([0, 1, 2, 3, 4, 99], { dtype: 'int64' })))), /class labels outside 0\.\.9/],
    ['float labels', damagedPairs('flabels', (d) => rewriteShard(d, (m) => m.set('label', tensor([0, 1, 2, 3, 4, 5])))), /must be 6 int64 class indices/],
    ['a shard without y', damagedPairs('noy', (d) => rewriteShard(d, (m) => m.delete('y'))), /no 'y' tensor|incomplete/],
    ['pairs.json lies about the count', damagedPairs('count', (d) => editManifest(d, (m) => { m.count = 13; })), /shards hold 12 pairs but it says count 13/],
    ['pairs.json lies about the shape', damagedPairs('shape', (d) => editManifest(d, (m) => { m.imageShape = [1, 16, 16]; })), /do not match pairs\.json/],
    ['truncated pairs.json', damagedPairs('trunc', (d) => writeFileSync(path.join(d, 'pairs.json'), readFileSync(path.join(d, 'pairs.json')).subarray(0, 40))), /pairs\.json: unreadable/],
    ['pairs.json of another format', damagedPairs('format', (d) => editManifest(d, (m) => { m.format = 'something-else'; })), /not a valid dmd-torch pairs manifest/],
    ['a missing shard', damagedPairs('missing', (d) => writeFileSync(path.join(d, 'pairs-00000.safetensors'), '')), /incomplete|unreadable/],
    ['no pairs.json', damagedPairs('none', (d) => writeFileSync(path.join(d, 'pairs.json'), '{}')), /not a valid dmd-torch pairs manifest/],
  ];
  for (const [name, d, re] of cases) t.throws(() => new PairsDataset(d).dispose(), { message: re }, name);
  // pairs of another teacher
  const other = tinyTeacher(dir, 'other-teacher.safetensors', { model_type: 'SongUNet', img_resolution: 32, img_channels: 1, label_dim: 10, model_channels: 8, channel_mult: [1, 2, 2], num_blocks: 1, attn_resolutions: [8], dropout: 0.05 });
  t.throws(() => new DMDTrainer({ teacher: other, pairs: pairsDir, regression: 'l2', out: path.join(dir, 'x'), device: 'cpu' }, quiet), { message: /the pairs were made by another teacher/ });
});

// ---- resuming ----------------------------------------------------------------------------------------
const base = { teacher, batchSize: 2, device: 'cpu', sampleEvery: 100, checkpointEvery: 2, metricsEvery: 1, fakeUpdatesPerGen: 2, finalEval: 0 };
async function run(cfg: Record<string, unknown>, log: (s: string) => void = quiet): Promise<void> {
  const tr = new DMDTrainer({ ...base, ...cfg }, log);
  try {
    await tr.train(log, { progress: false });
  } finally {
    tr.dispose();
  }
}
const ckDir = (out: string) => path.join(out, 'checkpoints');
const cks = (out: string) => readdirSync(ckDir(out)).filter((f) => f.endsWith('.safetensors')).sort();

test.serial('resume refuses other settings, accepts them with --force-resume (warned) and never rewrites old checkpoints', async (t) => {
  const out = path.join(dir, 'resume-settings');
  await run({ out, steps: 4 });
  const first = path.join(ckDir(out), cks(out)[0]!);
  const before = sha(first);
  await t.throwsAsync(() => run({ out, steps: 6, resume: true, batchSize: 3 }), { message: /made with other settings: batchSize \(checkpoint: 2, now: 3\).*--force-resume/ });
  await t.throwsAsync(() => run({ out, steps: 6, resume: true, fakeUpdatesPerGen: 1 }), { message: /fakeUpdatesPerGen \(checkpoint: 2, now: 1\)/ });
  await t.throwsAsync(() => run({ out, steps: 6, resume: true, genLr: 1e-3 }), { message: /genLr/ });
  const other = tinyTeacher(dir, 'resume-other.safetensors', { model_type: 'SongUNet', img_resolution: 32, img_channels: 1, label_dim: 10, model_channels: 8, channel_mult: [1, 2, 2], num_blocks: 1, attn_resolutions: [8], dropout: 0.2 });
  await t.throwsAsync(() => run({ out, steps: 6, resume: true, teacher: other }), { message: /teacher_sha256/ });
  await t.throwsAsync(() => run({ out, steps: 2, resume: true }), { message: /at step 4, beyond the 2 steps asked for/ });
  await t.throwsAsync(() => run({ out, steps: 6 }), { message: /already holds checkpoints/ });
  const logs: string[] = [];
  await run({ out, steps: 6, resume: true, batchSize: 3, forceResume: true }, (s) => logs.push(s));
  t.true(logs.some((l) => /warning: .*made with other settings: batchSize.*--force-resume/.test(l)), logs.join('\n'));
  if (existsSync(first)) t.is(sha(first), before);
  t.is(cks(out).at(-1), 'checkpoint-00000006.safetensors');
});

test.serial('a checkpoint written before a setting existed resumes while the setting is at its default, and is refused at another value', async (t) => {
  const out = path.join(dir, 'resume-older');
  await run({ out, steps: 4 });
  // as an older version wrote it: its identity lacks the settings added since (here two of them)
  const file = path.join(ckDir(out), cks(out).at(-1)!);
  const r = readSafetensors(file);
  const meta = JSON.parse(r.metadata.meta!) as { identity: Record<string, unknown> };
  t.is(meta.identity.lrDecay, 0);
  delete meta.identity.lrDecay;
  delete meta.identity.ganSamples;
  writeSafetensors(file, r.tensors, { ...r.metadata, meta: JSON.stringify(meta) });
  for (const v of r.tensors.values()) v.dispose();
  await t.throwsAsync(() => run({ out, steps: 6, resume: true, lrDecay: 2 }), { message: /made with other settings: lrDecay \(checkpoint: unset, now: 2\)/ });
  await run({ out, steps: 6, resume: true });
  t.is(cks(out).at(-1), 'checkpoint-00000006.safetensors');
});

test.serial('resume recovers: unreadable newest checkpoint (warned, previous used), NaN weights refused naming the last finite one, stray temporaries removed', async (t) => {
  const out = path.join(dir, 'resume-recover');
  await run({ out, steps: 6 });
  t.deepEqual(cks(out), ['checkpoint-00000002.safetensors', 'checkpoint-00000004.safetensors', 'checkpoint-00000006.safetensors']);
  // a truncated newest checkpoint
  const newest = path.join(ckDir(out), 'checkpoint-00000006.safetensors');
  writeFileSync(newest, readFileSync(newest).subarray(0, 5000));
  // a stray temporary of an interrupted save (its process is gone)
  writeFileSync(path.join(ckDir(out), 'checkpoint-00000008.safetensors.tmp-999999'), 'half');
  const logs: string[] = [];
  await run({ out, steps: 8, resume: true }, (s) => logs.push(s));
  t.true(logs.some((l) => /removed 1 temporary file/.test(l)), logs.join('\n'));
  t.true(logs.some((l) => /warning: .*checkpoint-00000006\.safetensors: unreadable checkpoint.*trying the previous checkpoint/.test(l)), logs.join('\n'));
  t.true(logs.some((l) => /resumed from .*checkpoint-00000004\.safetensors at step 4/.test(l)), logs.join('\n'));
  t.false(readdirSync(ckDir(out)).some((f) => f.includes('.tmp-')));

  // NaN weights in the newest checkpoint: refused, pointing at the last finite one
  const nanOut = path.join(dir, 'resume-nan');
  await run({ out: nanOut, steps: 4 });
  const f = path.join(ckDir(nanOut), 'checkpoint-00000004.safetensors');
  const r = readSafetensors(f);
  const key = [...r.tensors.keys()].find((k) => k.startsWith('G/') && k.endsWith('weight'))!;
  tidy(() => r.tensors.set(key, r.tensors.get(key)!.clone().fill_(Number.NaN).keep()));
  writeSafetensors(f, r.tensors, r.metadata);
  const e = await t.throwsAsync(() => run({ out: nanOut, steps: 6, resume: true }));
  t.regex(e!.message, /checkpoint-00000004\.safetensors: holds NaN\/Inf values \(G\//);
  t.regex(e!.message, /resume from it with --resume-from .*checkpoint-00000002\.safetensors/);
  await run({ out: nanOut, steps: 6, resume: true, resumeFrom: path.join(ckDir(nanOut), 'checkpoint-00000002.safetensors') });
  t.true(existsSync(path.join(nanOut, 'generator.safetensors')));
});

test.serial('checkpoints of another kind, missing --resume-from files and runs with no readable checkpoint are named', async (t) => {
  const out = path.join(dir, 'resume-kinds');
  await run({ out, steps: 2 });
  await t.throwsAsync(() => run({ out: path.join(dir, 'k2'), steps: 4, resumeFrom: path.join(dir, 'none.safetensors') }), { message: /--resume-from .*none\.safetensors: file not found/ });
  for (const f of cks(out)) writeFileSync(path.join(ckDir(out), f), 'garbage');
  await t.throwsAsync(() => run({ out, steps: 4, resume: true }), { message: /none of the 1 checkpoints .* is readable/ });
  if (!existsSync(FASHION_MNIST_DIR)) return;
  const tOut = path.join(dir, 'teacher-run');
  await trainTeacher(TeacherConfigSchema.parse({ out: tOut, data: 'fashion-mnist:test', kimg: 0.004, batchSize: 2, checkpointEvery: 2, sampleEvery: 1000, device: 'cpu', network: { model_channels: 8, num_blocks: 1, attn_resolutions: [] } }), quiet, { progress: false });
  const tck = path.join(ckDir(tOut), cks(tOut)[0]!);
  await t.throwsAsync(() => run({ out: path.join(dir, 'k3'), steps: 4, resumeFrom: tck }), { message: /is a checkpoint of a teacher run, not of a dmd run/ });
});

// ---- evaluation and classifiers -----------------------------------------------------------------------
test('evaluation refuses bad references and classifiers before sampling', async (t) => {
  const npz = path.join(root, 'test/assets/refs.npz');
  await t.throwsAsync(() => evaluate(EvalConfigSchema.parse({ teacher, ref: npz, num: 4, out: path.join(dir, 'm.json'), device: 'cpu' }), quiet), { message: /holds Inception statistics: FID needs --inception/ });
  const cls = path.join(dir, 'spec.safetensors');
  writeSafetensors(cls, { w: tensor([1]) }, { kind: 'dmd-classifier', arch: 'v1-groupnorm8', spec: '{not json' });
  t.throws(() => FeatureClassifier.load(cls), { message: /spec metadata is not valid JSON/ });
  const t0 = performance.now();
  await t.throwsAsync(() => evaluate(EvalConfigSchema.parse({ teacher, ref: 'fashion-mnist:test', classifier: cls, num: 10000, out: path.join(dir, 'm2.json'), device: 'cpu' }), quiet), { message: /spec metadata is not valid JSON/ });
  t.true(performance.now() - t0 < 10_000, 'the classifier is checked before 10 000 samples are generated');
  noGrad(() => undefined);
});
