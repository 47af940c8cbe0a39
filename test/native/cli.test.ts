// The `dmd` command line: sample (teacher and one-step generator), pairs, classifier, eval; flags
// validated with the field named.
import test from 'ava';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodePNG } from '../../src/data/png.js';
import { FASHION_MNIST_DIR } from '../../src/data/sources.js';
import { FeatureClassifier, loadEDM, saveEDM } from '../../src/index.js';
import { tempDir } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { tinyTeacher } from '../helpers/teacher.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = tempDir();
const teacher = tinyTeacher(dir);

const dmd = (args: string[]) => runCli('dmd', args);

test('dmd sample: a Heun grid from a teacher, single PNGs from a one-step generator', async (t) => {
  const grid = path.join(dir, 'grid.png');
  const r = await dmd(['sample', '--teacher', teacher, '--steps', '2', '--count', '20', '--out', grid]);
  t.is(r.code, 0, r.out);
  t.regex(r.out, /20 images .* Heun 2 steps, NFE 3/);
  const img = decodePNG(readFileSync(grid));
  t.deepEqual([img.width, img.height, img.channels], [320, 64, 1]); // 10 classes per row
  const gen = path.join(dir, 'gen.safetensors');
  const net = loadEDM(teacher);
  saveEDM(net, gen, { generator_sigma: '80' });
  net.dispose();
  const out = path.join(dir, 'singles');
  const s = await dmd(['sample', '--generator', gen, '--count', '3', '--labels', '7', '--out', out]);
  t.is(s.code, 0, s.out);
  t.regex(s.out, /1 step/);
  t.deepEqual(readdirSync(out).sort(), ['000000.png', '000001.png', '000002.png']);
});

test('dmd pairs and dmd eval (FD in classifier features, FID with a TorchScript detector, class balance)', async (t) => {
  const pairs = path.join(dir, 'pairs');
  const p = await dmd(['pairs', '--teacher', teacher, '--out', pairs, '--count', '6', '--steps', '2', '--shard-size', '4', '--device', 'cpu']);
  t.is(p.code, 0, p.out);
  t.true(existsSync(path.join(pairs, 'pairs-00001.safetensors')));
  const cls = path.join(dir, 'cls.safetensors');
  const c = FeatureClassifier.create({ inChannels: 1, classes: 10, width: 8, resolution: 32, name: 'tiny' }, 0);
  c.save(cls);
  c.dispose();
  const ref = existsSync(FASHION_MNIST_DIR) ? 'fashion-mnist:test' : null;
  if (!ref) return;
  const m = path.join(dir, 'metrics.json');
  const e = await dmd(['eval', '--teacher', teacher, '--steps', '2', '--num', '20', '--batch-size', '10', '--ref', ref, '--ref-num', '40',
    '--classifier', cls, '--inception', path.join(root, 'test/assets/tiny-detector.pt'), '--out', m, '--device', 'cpu']);
  t.is(e.code, 0, e.out);
  const r = JSON.parse(readFileSync(m, 'utf8')) as Record<string, unknown>;
  t.true(typeof r['FD-tiny'] === 'number' && (r['FD-tiny'] as number) >= 0);
  t.true(typeof r.FID === 'number' && (r.FID as number) >= 0);
  t.is((r.class_fractions as number[]).length, 10);
  t.true(Math.abs((r.class_fractions as number[]).reduce((a, b) => a + b, 0) - 1) < 1e-9);
  t.is(r.nfe, 3);
  t.false('FID-fmnist' in r);
});

test('dmd classifier trains and reports its test accuracy', async (t) => {
  if (!existsSync(FASHION_MNIST_DIR)) return t.pass();
  const out = path.join(dir, 'classifier-run');
  const r = await dmd(['classifier', '--out', out, '--data', 'fashion-mnist:test', '--test', 'fashion-mnist:test', '--epochs', '0.02', '--width', '8', '--device', 'cpu']);
  t.is(r.code, 0, r.out);
  t.regex(r.out, /test accuracy \d+\.\d+%/);
  t.true(existsSync(path.join(out, 'metrics.jsonl')) && existsSync(path.join(out, 'run.json')));
  const c = FeatureClassifier.load(path.join(out, 'classifier.safetensors'));
  t.is(c.spec.width, 8);
  c.dispose();
});

test('dmd: bad flags and unknown commands are one-line errors naming the flag', async (t) => {
  const a = await dmd(['sample', '--count', '-2', '--teacher', teacher]);
  t.is(a.code, 1);
  t.regex(a.out, /error: invalid settings: --count/);
  t.notRegex(a.out, /at .*\.ts:\d+/);
  const b = await dmd(['frobnicate']);
  t.is(b.code, 1);
  const c = await dmd(['sample', '--teacher', path.join(dir, 'missing.pt')]);
  t.is(c.code, 1);
  t.regex(c.out, /file not found/);
  const d = await dmd(['teacher', '--out', path.join(dir, 't'), '--preset', 'nope']);
  t.is(d.code, 1);
  t.regex(d.out, /unknown network preset 'nope'/);
});
