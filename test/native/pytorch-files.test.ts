// PyTorch files as users have them, read without Python: NVlabs EDM snapshots (.pkl) and legacy
// torch.save files. Every `X.pkl` with an `X.io.safetensors` (inputs and the snapshot's reference
// output) and every `X.pt` with an `X.expected.safetensors` (its tensors by path) in the fixture
// directory ($DMD_PYTORCH_FILES, default test/fixtures/pytorch-files) is checked; then crafted bad files.
import test from 'ava';
import { readdirSync, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadEDM, readEDMInfo, liveTensors, readSafetensors, readTorchSave, noGrad, tidy, dispose, randn, Generator, Tensor, LPIPS, TorchSaveError, CheckpointError } from '../../src/index.js';
import { torchPython, runPython } from '../helpers/python.js';
import { ROOT } from '../helpers/cli.js';
import { readPythonFile } from '../../src/io/torchsave.js';
import { PickleWriter } from '../helpers/pickle-writer.js';
import { tempDir } from '../helpers/tmp.js';

const DIR = process.env.DMD_PYTORCH_FILES ? path.resolve(process.env.DMD_PYTORCH_FILES) : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/pytorch-files');
const files = readdirSync(DIR);
const tmp = tempDir();

for (const pkl of files.filter((f) => f.endsWith('.pkl') && files.includes(f.replace(/\.pkl$/, '.io.safetensors')))) {
  test(`EDM snapshot ${pkl}: loads without Python and its network reproduces the reference output`, (t) => {
    const file = path.join(DIR, pkl);
    const io = readSafetensors(path.join(DIR, pkl.replace(/\.pkl$/, '.io.safetensors'))).tensors;
    const info = readEDMInfo(file);
    t.is(info.role, 'teacher');
    t.is(info.snapshot!.className, 'EDMPrecond');
    t.truthy(info.snapshot!.innerClass, 'the inner UNet class is reported');
    const net = loadEDM(file);
    t.is(info.snapshot!.parameterCount, net.parameterCount());
    t.deepEqual(info.config, net.config);
    const labels = io.get('labels')!;
    const y = noGrad(() => net.forward(io.get('x')!, io.get('sigma')!, { labels: labels.numel ? labels : null }));
    const [err, scale] = tidy(() => [y.sub(io.get('y')!).abs().max().item(), io.get('y')!.abs().max().item()]);
    t.log(`${pkl}: ${info.snapshot!.innerClass}, ${net.parameterCount()} parameters, other entries ${JSON.stringify(info.snapshot!.entries)}; max |D - y| = ${err.toExponential(2)} (tolerance ${(1e-4 * scale).toExponential(2)})`);
    t.true(err <= 1e-4 * scale + 1e-12);
    net.dispose();
    dispose([y, io]);
    const live = liveTensors();
    loadEDM(file).dispose();
    dispose(readTorchSave(file));
    t.is(liveTensors(), live, 'reading leaves no tensor behind');
  });
}

/** The tensors of a value by path (dict keys and list indices joined with '.'), and its non-tensor 'meta' entry. */
function flatten(v: unknown, prefix = '', out = new Map<string, Tensor>()): Map<string, Tensor> {
  if (v instanceof Tensor) out.set(prefix.slice(0, -1), v);
  else if (Array.isArray(v)) v.forEach((x, i) => flatten(x, `${prefix}${i}.`, out));
  else if (v && typeof v === 'object' && !(v instanceof Uint8Array)) for (const [k, x] of Object.entries(v)) flatten(x, `${prefix}${k}.`, out);
  return out;
}

for (const pt of files.filter((f) => /\.(pt|pth)$/.test(f) && files.includes(f.replace(/\.(pt|pth)$/, '.expected.safetensors')))) {
  test(`legacy torch.save ${pt}: every tensor as saved (views of one storage, offsets, strides, dtypes), nested containers and values`, (t) => {
    const got = readTorchSave(path.join(DIR, pt)) as Record<string, unknown>;
    const want = readSafetensors(path.join(DIR, pt.replace(/\.(pt|pth)$/, '.expected.safetensors')));
    const flat = flatten(got);
    t.deepEqual([...flat.keys()].sort(), [...want.tensors.keys()].sort());
    for (const [k, w] of want.tensors) {
      const g = flat.get(k)!;
      t.is(g.dtype, w.dtype, k);
      t.deepEqual(g.shape, w.shape, k);
      t.true(g.contiguous().equal(w), `${k} values`);
    }
    if (want.metadata.meta) t.deepEqual(got.meta, JSON.parse(want.metadata.meta));
    dispose([got, want.tensors]);
  });
}

test('tensors saved as views of one storage share it after loading (a write through one shows in the other)', (t) => {
  const got = readTorchSave(path.join(DIR, 'legacy-mixed.pt')) as Record<string, Tensor>;
  const a = got.shared_a!;
  const v = got.view_t!;
  const before = v.select(0, 1).select(0, 2).item();
  noGrad(() => a.select(0, 2).select(0, 1).fill_(before + 1));
  t.is(v.select(0, 1).select(0, 2).item(), before + 1);
  dispose(got);
});

test('LPIPS weights load from the original .pth files (legacy torch.save, as published) and give the same distances as the converted safetensors', (t) => {
  if (!torchPython()) return t.pass('skipped: no python3 with torch to write legacy .pth files');
  const dir = path.join(tmp, 'lpips');
  mkdirSync(dir);
  // torchvision's vgg16 layout (features.N, classifier.N) and lpips's lin heads, random weights, legacy format
  runPython(`
import torch, sys, collections
torch.manual_seed(0)
vgg = collections.OrderedDict()
cin = 3
for i, c in zip([0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28], [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]):
    vgg[f'features.{i}.weight'] = torch.randn(c, cin, 3, 3) * (2 / (cin * 9)) ** 0.5
    vgg[f'features.{i}.bias'] = torch.randn(c) * 0.01
    cin = c
vgg['classifier.0.weight'] = torch.randn(16, 8)
torch.save(vgg, sys.argv[1] + '/vgg16-397923af.pth', _use_new_zipfile_serialization=False)
lin = collections.OrderedDict((f'lin{k}.model.1.weight', torch.rand(1, c, 1, 1)) for k, c in enumerate([64, 128, 256, 512, 512]))
torch.save(lin, sys.argv[1] + '/vgg.pth', _use_new_zipfile_serialization=False)
`, [dir]);
  const conv = spawnSync(torchPython()!, [path.join(ROOT, 'scripts/convert-lpips.py'), path.join(dir, 'vgg16-397923af.pth'), path.join(dir, 'vgg.pth'), path.join(tmp, 'lpips.safetensors')], { encoding: 'utf8' });
  t.is(conv.status, 0, conv.stderr);
  const x = randn([2, 3, 32, 32], { generator: Generator.create('cpu', 1) }).tanh();
  const y = randn([2, 3, 32, 32], { generator: Generator.create('cpu', 2) }).tanh();
  const distances = (source: string) => {
    const m = LPIPS.load(source);
    const d = noGrad(() => m.distance(x, y)).toArray();
    m.dispose();
    return d;
  };
  const converted = distances(path.join(tmp, 'lpips.safetensors'));
  t.deepEqual(distances(dir), converted, 'a directory holding the two .pth files');
  t.deepEqual(distances(`${path.join(dir, 'vgg16-397923af.pth')},${path.join(dir, 'vgg.pth')}`), converted, 'the two files');
  t.true(converted.every((v) => v > 0));
  t.throws(() => LPIPS.load(path.join(dir, 'vgg.pth')), { message: /not LPIPS VGG weights \(missing features\.0\.weight/ });
});

// ---- bad files: one line naming the file and the problem, in bounded time and memory -----------------------

function writeTmp(name: string, data: Uint8Array): string {
  const f = path.join(tmp, name);
  writeFileSync(f, data);
  return f;
}

const REFUSED: [string, Buffer][] = [
  ['os.system', new PickleWriter(2).global('os', 'system').str('touch /tmp/dmd-pwned').op(0x85).op('R').stop()],
  ['builtins.eval', new PickleWriter(4).str('builtins').str('eval').op(0x93).str('1+1').op(0x85).op('R').stop()],
  ['subprocess.Popen', new PickleWriter(3).global('subprocess', 'Popen').op('(').str('ls').op('t').op('R').stop()],
  ['mymodule.Unknown', new PickleWriter(2).global('mymodule', 'Unknown').op(')').op(0x81).stop()],
  ['posix.system', new PickleWriter(2).op('(').str('x').op('i').raw(Buffer.from('posix\nsystem\n')).stop()],
];

for (const [name, bytes] of REFUSED) {
  test(`a pickle that names ${name} is refused with the global named, and nothing runs`, (t) => {
    const f = writeTmp(`evil-${name}.pkl`, bytes);
    const e = t.throws(() => readPythonFile(f), { instanceOf: TorchSaveError });
    t.true(e.message.includes(f) && e.message.includes(`refused global ${name}`), e.message);
    t.is(e.message.split('\n').length, 1);
    const e2 = t.throws(() => loadEDM(f), { instanceOf: CheckpointError });
    t.regex(e2.message, new RegExp(`refused global ${name.replace('.', '\\.')}`));
  });
}

test('truncated and bit-flipped snapshots are named, never loaded', (t) => {
  const good = readFileSync(path.join(DIR, 'edm-ddpmpp-cond-16.pkl'));
  for (const cut of [10, 1000, Math.floor(good.length / 2), good.length - 1]) {
    const f = writeTmp(`cut-${cut}.pkl`, good.subarray(0, cut));
    const e = t.throws(() => loadEDM(f), { instanceOf: CheckpointError });
    t.true(e.message.startsWith(f) && /truncated|corrupt|no network|not a/.test(e.message), e.message);
  }
  let flipped = 0;
  for (let i = 0; i < 40; i++) {
    const b = Buffer.from(good);
    const at = 2 + Math.floor(((i * 7919) % 997) / 997 * Math.min(b.length - 3, 4000));
    b[at] = b[at]! ^ 0xff;
    const f = writeTmp(`flip-${i}.pkl`, b);
    try {
      const net = loadEDM(f);
      net.dispose(); // a flip inside weight bytes gives other weights: still a network
    } catch (e) {
      t.true(e instanceof CheckpointError, String(e));
      t.true((e as Error).message.startsWith(f), (e as Error).message);
      flipped++;
    }
  }
  t.true(flipped > 20, `${flipped} of 40 header flips refused`);
});

test('a .pkl of something else (a dataset dict, a StyleGAN G_ema, a VP baseline) says what it found', (t) => {
  const dataset = writeTmp('dataset.pkl', new PickleWriter(4).op('}').op('(').str('images').op(']').str('labels').op(']').op('u').stop());
  t.throws(() => loadEDM(dataset), { instanceOf: CheckpointError, message: /no network under ema, G_ema, net \(the file holds images, labels\)/ });
  const persistent = (cls: string) => new PickleWriter(4).op('}').str('G_ema').str('torch_utils.persistence').str('_reconstruct_persistent_obj').op(0x93)
    .op('}').op('(').str('type').str('class').str('class_name').str(cls).str('state').op('}').op('u').op(0x85).op('R').op('s').stop();
  t.throws(() => loadEDM(writeTmp('stylegan.pkl', persistent('Generator'))), { instanceOf: CheckpointError, message: /'G_ema' is a Generator, not an EDMPrecond network/ });
  t.throws(() => loadEDM(writeTmp('vp.pkl', persistent('VPPrecond'))), { instanceOf: CheckpointError, message: /VPPrecond, EDM's VP baseline/ });
  t.throws(() => loadEDM(writeTmp('bare.pkl', persistent('EDMPrecond'))), { instanceOf: CheckpointError, message: /no recorded constructor arguments|no recorded state/ });
});

test('a legacy file whose storage is shorter than its tensors is refused', (t) => {
  const good = readFileSync(path.join(DIR, 'legacy-mixed.pt'));
  const f = writeTmp('short.pt', good.subarray(0, good.length - 20));
  const e = t.throws(() => readTorchSave(f), { instanceOf: TorchSaveError });
  t.regex(e.message, /short\.pt.*(truncated|ends after)/);
});

test('pickle bombs are refused in bounded time: deep nesting, a huge memo index, a billion-fold repeated structure, a giant view', (t) => {
  const t0 = performance.now();
  const deep = new PickleWriter(4);
  for (let i = 0; i < 100_000; i++) deep.op(']');
  for (let i = 0; i < 99_999; i++) deep.op('a');
  t.throws(() => readPythonFile(writeTmp('deep.pkl', deep.stop())), { instanceOf: TorchSaveError, message: /nested deeper than 1000/ });
  t.throws(() => readPythonFile(writeTmp('memo.pkl', new PickleWriter(4).op(']').put(0xfffffff0).stop())), { instanceOf: TorchSaveError, message: /memo index 4294967280 beyond the size/ });
  // L0 = ['xxx...']; L(i+1) = [Li, Li]: 2^60 strings of 1000 characters when spelled out, 61 lists in memory
  const lol = new PickleWriter(4).op(']').str('x'.repeat(1000)).op('a').put(0);
  for (let i = 1; i <= 60; i++) lol.op(']').op('(').get(i - 1).get(i - 1).op('e').put(i);
  const v = readTorchSave(writeTmp('laughs.pkl', lol.stop())) as unknown[];
  t.is(v.length, 2);
  t.is(v[0], v[1], 'shared, not copied');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(2n ** 40n);
  t.throws(() => readPythonFile(writeTmp('huge-bytes.pkl', new PickleWriter(4).op(0x8e).raw(len).stop())), { instanceOf: TorchSaveError, message: /truncated or corrupt pickle: BINBYTES8 of 1099511627776 bytes/ });
  const ms = performance.now() - t0;
  t.true(ms < 20_000, `${ms} ms`);
});
