// foreach primitives, AdamW, gradient clipping and EMA. AdamW is compared with torch.optim.AdamW
// (Debian's python3-torch) over several steps when available.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { tensor, randn, foreach, gradsOf, AdamW, manualSeed, writeSafetensors, tidy, noGrad, EDMNetwork, EMA } from '../../src/index.js';
import { torchPython, runPython } from '../helpers/python.js';
import { tempDir } from '../helpers/tmp.js';
import { CheckpointStore } from '../../src/train/checkpoints.js';
import { TrainState } from '../../src/train/state.js';

const near = (ts: { toArray(): number[] }[], want: number[][]) =>
  ts.every((x, i) => x.toArray().every((v, k) => Math.abs(v - want[i]![k]!) < 1e-5));

test('foreach ops match per-tensor arithmetic', (t) => {
  const a = [tensor([1, 2]), tensor([3])];
  const b = [tensor([10, 20]), tensor([30])];
  foreach.lerp_(a, b, 0.5);
  t.deepEqual(a.map((x) => x.toArray()), [[5.5, 11], [16.5]]);
  foreach.mul_(a, 2);
  foreach.add_(a, b, -1);
  t.deepEqual(a.map((x) => x.toArray()), [[1, 2], [3]]);
  foreach.addcmul_(a, b, b, 0.01);
  t.true(near(a, [[2, 6], [12]]));
  foreach.addcdiv_(a, b, b, 1);
  foreach.sqrt_(b);
  t.true(near(a, [[3, 7], [13]]));
  t.true(Math.abs(b[0]!.toArray()[0]! - Math.sqrt(10)) < 1e-6);
  t.true(foreach.allFinite(a));
  a[1]!.fill_(NaN);
  t.false(foreach.allFinite(a));
});

test('gradsOf lists and zeroGrad; clipGradNorm scales to the max norm', (t) => {
  const p = [tensor([3, 0]).requiresGrad_(), tensor([4]).requiresGrad_()];
  p[0]!.mul(p[0]!).sum().add(p[1]!.mul(p[1]!).sum()).backward(); // grads 2p = [6,0],[8]
  const norm = foreach.clipGradNorm_(p, 5);
  t.true(Math.abs(norm.item() - 10) < 1e-5);
  const g = foreach.clone(gradsOf(p));
  t.true(Math.abs(g[0]!.toArray()[0]! - 3) < 1e-4 && Math.abs(g[1]!.toArray()[0]! - 4) < 1e-4);
  t.deepEqual(foreach.hasGrad(p), [true, true]);
  foreach.zeroGrad(p);
  t.deepEqual(foreach.hasGrad(p), [false, false]);
  t.throws(() => foreach.clone(gradsOf(p)), { message: /has no gradient/ });
});

test('AdamW skips parameters without a gradient', (t) => {
  const a = tensor([1]).requiresGrad_();
  const b = tensor([1]).requiresGrad_();
  const opt = new AdamW([a, b], { lr: 0.1, weightDecay: 0 });
  a.mul(2).sum().backward();
  opt.step();
  t.true(Math.abs(a.item() - 0.9) < 1e-6);
  t.is(b.item(), 1);
});

test('AdamW equals torch.optim.AdamW over 5 steps', (t) => {
  if (!torchPython()) {
    t.log('skipped: no python3 with torch');
    t.pass();
    return;
  }
  const dir = tempDir();
  manualSeed(0);
  const shapes = [[4, 3], [3], [2, 2, 2]];
  const init = shapes.map((s) => randn(s));
  const grads = [0, 1, 2, 3, 4].map(() => shapes.map((s) => randn(s)));
  const file = path.join(dir, 'adam.safetensors');
  const rec: Record<string, ReturnType<typeof randn>> = {};
  init.forEach((x, i) => (rec[`p${i}`] = x));
  grads.forEach((gs, s) => gs.forEach((g, i) => (rec[`g${s}_${i}`] = g)));
  writeSafetensors(file, rec);
  const params = init.map((x) => x.clone().requiresGrad_());
  const opt = new AdamW(params, { lr: 0.01, betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0.05 });
  for (const gs of grads) {
    params.forEach((p, i) => (p.grad = gs[i]!.clone()));
    opt.step();
  }
  const script = path.join(dir, 'adam.py');
  writeFileSync(
    script,
    `
import json, struct, sys, torch, numpy as np
def read(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8+n]); d = {}
    for k, v in h.items():
        if k == '__metadata__': continue
        s, e = v['data_offsets']; d[k] = torch.from_numpy(np.frombuffer(b[8+n+s:8+n+e], dtype=np.float32).copy()).reshape(v['shape'])
    return d
d = read(sys.argv[1]); ps = [d[f'p{i}'].clone().requires_grad_() for i in range(3)]
opt = torch.optim.AdamW(ps, lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05)
for s in range(5):
    for i, p in enumerate(ps): p.grad = d[f'g{s}_{i}'].clone()
    opt.step()
print(json.dumps([p.detach().flatten().tolist() for p in ps]))
`,
  );
  const ref = JSON.parse(runPython(`exec(open(${JSON.stringify(script)}).read())`, [file])) as number[][];
  params.forEach((p, i) => {
    const got = p.toArray();
    const err = Math.max(...got.map((v, k) => Math.abs(v - ref[i]![k]!)));
    t.true(err < 1e-6, `param ${i}: max err ${err}`);
  });
});

test('EMA moves the shadow toward the model by 1 - beta', (t) => {
  const cfg = { model_type: 'SongUNet' as const, img_resolution: 8, img_channels: 1, model_channels: 8, channel_mult: [1], num_blocks: 1, attn_resolutions: [] };
  const net = EDMNetwork.create(cfg, { seed: 1 });
  const shadow = net.clone();
  noGrad(() => net.parameters().forEach((p) => p.add_(1)));
  new EMA(shadow).update(net, 0.75);
  const d = tidy(() => shadow.parameters()[0]!.sub(net.parameters()[0]!).abs().max().item());
  t.true(Math.abs(d - 0.75) < 1e-5, `distance ${d}`);
  net.dispose();
  shadow.dispose();
});

test('optimizer state round-trips through a TrainState checkpoint, and a mismatched one is refused by name', (t) => {
  const dir = tempDir();
  const mk = (n: number) => Array.from({ length: n }, (_, i) => tensor([i + 1, 2 * i]).requiresGrad_());
  const params = mk(2);
  const opt = new AdamW(params, { lr: 0.1 });
  params.forEach((p) => p.mul(3).sum().backward());
  opt.step();
  const store = new CheckpointStore(dir, 1);
  const file = tidy(() => {
    const snap = new TrainState('cpu').optimizer('opt', opt).snapshot();
    return store.save(1, snap.tensors, { step: 1, values: snap.values });
  });
  const ck = CheckpointStore.load<{ values: Record<string, unknown> }>(file);
  const again = new AdamW(mk(2), { lr: 0.1 });
  new TrainState('cpu').optimizer('opt', again).restore(ck);
  t.is(again.stepCount, 1);
  t.deepEqual(again.state().expAvg.map((m) => m.toArray()), opt.state().expAvg.map((m) => m.toArray()));
  t.deepEqual(again.state().expAvgSq.map((v) => v.toArray()), opt.state().expAvgSq.map((v) => v.toArray()));
  const err = t.throws(() => new TrainState('cpu').optimizer('opt', new AdamW(mk(3), { lr: 0.1 })).restore(ck), { message: /optimizer state 'opt' holds 2 tensors, the run has 3 parameters/ });
  t.is((err as Error & { code?: string }).code, 'ERR_RUN');
  t.throws(() => new TrainState('cpu').optimizer('optG', again).restore(ck), { message: /optimizer state 'optG' holds 0 tensors/ });
});
