// safetensors and torch.save: round trips for every dtype, reading files written by PyTorch, and
// files that libtorch cannot read giving a message with the fix.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  tensor, randn, readSafetensors, writeSafetensors, readSafetensorsHeader, readTorchSave, writeTorchSave, Tensor, DTYPES, type DType,
  TorchSaveError, SafetensorsError,
} from '../../src/index.js';
import { tempDir } from '../helpers/tmp.js';
import { torchPython, runPython } from '../helpers/python.js';

const assets = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../assets');
const dir = tempDir();

test('safetensors round-trips every dtype and the metadata', (t) => {
  const m = new Map<string, Tensor>();
  for (const d of DTYPES) m.set(`t_${d}`, tensor([[0, 1, 2], [3, 4, 5]], { dtype: d as DType }));
  m.set('scalar', tensor(2.5));
  m.set('empty', randn([0, 3]));
  const f = path.join(dir, 'all.safetensors');
  writeSafetensors(f, m, { config: '{"a":1}' });
  const r = readSafetensors(f);
  t.deepEqual(r.metadata, { config: '{"a":1}' });
  for (const [k, v] of m) {
    const got = r.tensors.get(k)!;
    t.is(got.dtype, v.dtype, k);
    t.deepEqual(got.shape, v.shape, k);
    t.true(got.equal(v), k);
  }
  const h = readSafetensorsHeader(f);
  t.is(h.entries.length, m.size);
  const partial = readSafetensors(f, { names: ['scalar'] });
  t.is(partial.tensors.size, 1);
  t.throws(() => readSafetensors(f, { names: ['nope'] }), { instanceOf: SafetensorsError, message: /no tensor named 'nope'/ });
});

test('safetensors files are readable by an independent parser (Python)', (t) => {
  if (!torchPython()) return t.pass();
  const f = path.join(dir, 'py.safetensors');
  writeSafetensors(f, { a: tensor([[1, 2], [3, 4]]), b: tensor([7], { dtype: 'int64' }) }, { k: 'v' });
  const out = runPython(
    `import json,struct,sys,numpy as np
b=open(sys.argv[1],'rb').read();n=struct.unpack('<Q',b[:8])[0];h=json.loads(b[8:8+n])
s,e=h['a']['data_offsets'];print(json.dumps([h['__metadata__'],np.frombuffer(b[8+n+s:8+n+e],dtype=np.float32).tolist(),(8+n)%8]))`,
    [f],
  );
  t.deepEqual(JSON.parse(out), [{ k: 'v' }, [1, 2, 3, 4], 0]);
});

test('reads a torch.save plain dict written by PyTorch (all dtypes, nesting, numbers, strings)', (t) => {
  const v = readTorchSave(path.join(assets, 'plain-dict.pt')) as Record<string, unknown>;
  const w = v.weights as Record<string, Tensor>;
  t.deepEqual(w.f32!.toArray(), [0, 0.25, 0.5, 0.75, 1, 1.25]);
  t.deepEqual(w.f32!.shape, [2, 3]);
  t.is(w.f64!.dtype, 'float64');
  t.deepEqual(w.f16!.toArray(), [0.5, 2]);
  t.deepEqual(w.bf16!.toArray(), [1, -3]);
  t.deepEqual(w.i64!.toArray(), [1, 2, 3]);
  t.deepEqual(w.u8!.toArray(), [0, 255]);
  t.deepEqual(w.b!.toArray(), [1, 0]);
  t.is(v.step, 1234);
  t.is(v.lr, 0.5);
  t.is(v.name, 'plain');
  t.deepEqual(v.shape, [2, 3]);
  t.deepEqual(JSON.parse(v.config as string).attn_resolutions, [16]);
});

test('writeTorchSave output reads back here and in PyTorch, also with weights_only=True', (t) => {
  const f = path.join(dir, 'w.pt');
  writeTorchSave(f, { a: tensor([1, 2]), nested: { n: 3, s: 'x', l: [1.5, tensor([4], { dtype: 'int64' })] }, flag: true, none: null });
  const back = readTorchSave(f) as { a: Tensor; nested: { n: number; s: string; l: [number, Tensor] }; flag: boolean; none: null };
  t.deepEqual(back.a.toArray(), [1, 2]);
  t.is(back.nested.n, 3);
  t.is(back.nested.l[0], 1.5);
  t.deepEqual(back.nested.l[1].toArray(), [4]);
  t.is(back.flag, true);
  t.is(back.none, null);
  if (!torchPython()) {
    t.log('PyTorch cross-check skipped: no python3 with torch');
    return;
  }
  const out = runPython(`import torch,sys,json; d=torch.load(sys.argv[1]); print(json.dumps([d['a'].tolist(), d['nested']['s'], d['nested']['l'][0], d['nested']['l'][1].tolist()]))`, [f]);
  t.deepEqual(JSON.parse(out), [[1, 2], 'x', 1.5, [4]]);
  // torch.load's default since PyTorch 2.6 is weights_only=True, whose unpickler refuses TorchScript's
  // type tags (torch.jit._pickle.restore_type_tag). PyTorch 1.13's weights-only unpickler also lacks
  // the float opcode (2.x has it), so floats are left out of that file there.
  const major = Number(runPython('import torch; print(torch.__version__.split(".")[0])').trim());
  const g = path.join(dir, 'weights-only.pt');
  writeTorchSave(g, { a: tensor([1, 2]), nested: { n: 3, s: 'x', l: [major >= 2 ? 1.5 : 15, tensor([4], { dtype: 'int64' })] }, flag: true, none: null });
  const wo = runPython(
    `import torch,sys,json; d=torch.load(sys.argv[1], weights_only=True); print(json.dumps([d['a'].tolist(), d['nested']['n'], d['nested']['s'], d['nested']['l'][0], d['nested']['l'][1].tolist(), d['flag'], d['none']]))`,
    [g],
  );
  t.deepEqual(JSON.parse(wo), [[1, 2], 3, 'x', major >= 2 ? 1.5 : 15, [4], true, null]);
});

test('unreadable torch.save content explains the fix', (t) => {
  const junk = path.join(dir, 'junk.pt');
  writeFileSync(junk, Buffer.from('PK\x03\x04 this is not a real zip archive'));
  const e = t.throws(() => readTorchSave(junk), { instanceOf: TorchSaveError });
  t.regex(e!.message, /junk\.pt: damaged or not a torch\.save file \(.*\); re-copy or re-create it/);
  t.throws(() => readTorchSave(path.join(dir, 'missing.pt')), { message: /file not found/ });
  t.throws(() => readTorchSave(dir), { message: /is a directory/ });
});
