// npm run bench:ops — per-call cost of a small op and of a 64-channel conv forward+backward, beside
// the same computation in PyTorch (Debian's /usr/bin/python3 torch, when present) in one run.
// One line per figure.
import { spawnSync } from 'node:child_process';
import { randn, tidy, cuda, getNumThreads, buildInfo, F, type Device } from '../src/index.js';

const devices: Device[] = ['cpu', ...(cuda.isAvailable() ? (['cuda'] as Device[]) : [])];
const sync = (d: Device) => { if (d !== 'cpu') cuda.synchronize(); };

function time(iters: number, fn: () => void, d: Device): number {
  for (let i = 0; i < Math.min(50, iters); i++) fn();
  sync(d);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) fn();
  sync(d);
  return Number(process.hrtime.bigint() - t0) / 1e3 / iters;
}

const results: Record<string, number> = {};
for (const d of devices) {
  const a = randn([16], { device: d }).keep();
  const b = randn([16], { device: d }).keep();
  results[`add16-${d}`] = time(20000, () => a.add(b).dispose(), d);
  const x = randn([8, 64, 32, 32], { device: d }).keep().requiresGrad_();
  const w = randn([64, 64, 3, 3], { device: d }).keep().requiresGrad_();
  const conv = () => tidy(() => {
    F.conv2d(x, w, null, { padding: 1 }).sum().backward();
    x.grad = null;
    w.grad = null;
  });
  results[`conv64-${d}`] = time(d === 'cpu' ? 20 : 200, conv, d);
}

const py = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import torch']).status === 0);
const pyResults: Record<string, number> = {};
if (py) {
  const code = `
import torch, time, json
torch.set_num_threads(${getNumThreads()})
devs = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
out = {}
def sync(d):
    if d != 'cpu': torch.cuda.synchronize()
def bench(iters, fn, d):
    for _ in range(min(50, iters)): fn()
    sync(d); t0 = time.perf_counter()
    for _ in range(iters): fn()
    sync(d); return (time.perf_counter() - t0) * 1e6 / iters
for d in devs:
    a = torch.randn(16, device=d); b = torch.randn(16, device=d)
    out['add16-' + d] = bench(20000, lambda: a + b, d)
    x = torch.randn(8, 64, 32, 32, device=d, requires_grad=True); w = torch.randn(64, 64, 3, 3, device=d, requires_grad=True)
    def conv():
        torch.nn.functional.conv2d(x, w, padding=1).sum().backward(); x.grad = None; w.grad = None
    out['conv64-' + d] = bench(20 if d == 'cpu' else 200, conv, d)
out['version'] = torch.__version__
print(json.dumps(out))
`;
  const r = spawnSync(py, ['-c', code], { encoding: 'utf8' });
  if (r.status === 0) Object.assign(pyResults, JSON.parse(r.stdout));
  else console.log(`python torch failed: ${r.stderr.split('\n').slice(-3).join(' ')}`);
}

const info = buildInfo();
console.log(`bench:ops libtorch ${info.torchVersion}, ${getNumThreads()} threads${py ? `, python torch ${pyResults.version ?? '?'}` : ', no python torch'}`);
for (const [k, v] of Object.entries(results)) {
  const p = pyResults[k];
  const ratio = p ? ` python=${p.toFixed(2)} us/call ratio=${(v / p).toFixed(2)}x` : '';
  const what = k.startsWith('add16') ? 'add [16]+[16]' : 'conv2d 64->64 3x3 [8,64,32,32] fwd+bwd';
  console.log(`${k.padEnd(12)} ${what}: dmd-torch=${v.toFixed(2)} us/call${ratio}`);
}
