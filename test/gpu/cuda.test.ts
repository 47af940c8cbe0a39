// CUDA checks, run by `npm run test:gpu` on the GPU machine; every test skips with the reason when
// CUDA is absent (CPU-only libtorch or no device).
import test from 'ava';
import {
  cuda, randn, ones, zeros, tidy, noGrad, Generator, manualSeed, EDMNetwork, buildInfo, AdamW, foreach, liveTensors,
} from '../../src/index.js';
import { CHECKERS, judge } from '../parity/kinds.js';
import { fixturesDir, readCase, readManifest } from '../parity/fixtures.js';

const available = cuda.isAvailable();
// float32 parity is judged without TensorFloat-32 (cuDNN uses it by default on Ampere and newer)
cuda.setAllowTF32({ matmul: false, cudnn: false });
const reason = cuda.unavailableReason() ?? 'CUDA is available';
const gpu = available ? test : test.skip;
const t_ = (title: string) => (available ? title : `${title} [skipped: ${reason}]`);

gpu(t_('CUDA tensors: creation, ops, transfer back'), (t) => {
  t.true(cuda.deviceCount() >= 1);
  const x = randn([256, 256], { device: 'cuda' });
  t.is(x.device, 'cuda:0');
  const y = x.matmul(x.t()).add(1).relu();
  const cpu = y.cpu();
  t.is(cpu.device, 'cpu');
  const ref = x.cpu().matmul(x.cpu().t()).add(1).relu();
  t.true(cpu.allclose(ref, 1e-3, 1e-3));
  cuda.synchronize();
});

gpu(t_('autograd on CUDA'), (t) => {
  const w = randn([8, 4], { device: 'cuda' }).requiresGrad_();
  w.square().sum().backward();
  t.true(w.grad!.cpu().allclose(w.detach().cpu().mul(2)));
});

gpu(t_('bfloat16 matmul on CUDA is close to float32'), (t) => {
  const a = randn([128, 64], { device: 'cuda' });
  const b = randn([64, 32], { device: 'cuda' });
  const f = a.matmul(b);
  const h = a.bfloat16().matmul(b.bfloat16());
  t.is(h.dtype, 'bfloat16');
  const rel = tidy(() => h.float().sub(f).abs().max().item() / f.abs().max().item());
  t.true(rel < 2e-2, `relative error ${rel}`);
});

gpu(t_('memory stats: allocated, peak and reset'), (t) => {
  cuda.resetPeakMemoryStats();
  const before = cuda.memoryStats().allocated;
  const big = zeros([64, 1024, 1024], { device: 'cuda' }); // 256 MiB
  const during = cuda.memoryStats();
  t.true(during.allocated - before >= 256 * 2 ** 20);
  t.true(during.peakAllocated >= during.allocated);
  big.dispose();
  t.true(cuda.memoryStats().allocated < during.allocated);
  cuda.resetPeakMemoryStats();
  t.true(cuda.memoryStats().peakAllocated < during.peakAllocated);
});

gpu(t_('CUDA generators: seeding and state restore'), (t) => {
  const g = Generator.create('cuda', 11);
  const s = g.getState();
  const a = randn([5], { device: 'cuda', generator: g }).cpu().toArray();
  g.setState(s);
  t.deepEqual(randn([5], { device: 'cuda', generator: g }).cpu().toArray(), a);
  manualSeed(3);
  const b = randn([3], { device: 'cuda' }).cpu().toArray();
  manualSeed(3);
  t.deepEqual(randn([3], { device: 'cuda' }).cpu().toArray(), b);
});

gpu(t_('an EDM training step on CUDA in bf16 with fp32 master weights'), (t) => {
  const net = EDMNetwork.create({ model_type: 'SongUNet', img_resolution: 16, img_channels: 3, model_channels: 32, channel_mult: [1, 2], num_blocks: 1, attn_resolutions: [8] }, { seed: 0, device: 'cuda' });
  const opt = new AdamW(net.parameters(), { lr: 1e-4 });
  const live = liveTensors();
  for (let i = 0; i < 5; i++) {
    tidy(() => {
      const x = randn([8, 3, 16, 16], { device: 'cuda' });
      const loss = net.forward(x, ones([8], { device: 'cuda' }), { dtype: 'bfloat16' }).sub(x).square().mean();
      opt.zeroGrad();
      loss.backward();
      opt.step();
    });
  }
  t.is(net.parameters()[0]!.dtype, 'float32');
  t.true(noGrad(() => foreach.allFinite(net.parameters())));
  t.is(liveTensors(), live + 3 * net.parameters().length); // AdamW state only
  net.dispose();
});

gpu(t_('TF32 settings round-trip and float32 with TF32 stays close to exact float32'), (t) => {
  const before = cuda.allowTF32();
  t.deepEqual(before, { matmul: false, cudnn: false });
  const a = randn([512, 512], { device: 'cuda', generator: Generator.create('cuda', 1) });
  const exact = a.matmul(a);
  cuda.setAllowTF32({ matmul: true, cudnn: true });
  t.deepEqual(cuda.allowTF32(), { matmul: true, cudnn: true });
  t.deepEqual(buildInfo().tf32, { matmul: true, cudnn: true });
  const fast = a.matmul(a);
  cuda.setAllowTF32(before);
  const rel = tidy(() => fast.sub(exact).abs().max().item() / exact.abs().max().item());
  t.log(`TF32 matmul relative error ${rel.toExponential(2)}`);
  t.true(rel < 1e-2, `relative error ${rel}`);
});

// EDM forward parity on CUDA: fp32 within the fixture tolerance (TF32 off), bf16 within 3e-2 (documented).
const dir = fixturesDir();
for (const c of readManifest(dir).cases.filter((x) => x.kind === 'edm-forward')) {
  for (const [dtype, rtol] of [['float32', c.rtol], ['bfloat16', 3e-2]] as const) {
    gpu(t_(`CUDA parity ${c.name} ${dtype}`), (t) => {
      const data = readCase(c, dir);
      const v = tidy(() => judge(CHECKERS[c.kind]!(c, data, { device: 'cuda', dtype }), rtol));
      t.log(`max_abs_err=${v.maxAbsErr.toExponential(3)} tol=${v.tol.toExponential(3)} (${v.worst})`);
      t.true(v.pass);
    });
  }
}

test('CUDA availability is reported consistently', (t) => {
  t.is(cuda.deviceCount() > 0, available);
  if (!available) t.log(`CUDA tests skipped: ${reason}`);
});
