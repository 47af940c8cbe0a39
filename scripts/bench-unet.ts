// npm run bench:unet [-- --preset fmnist --batch 16 --iters 5]
// Forward and forward+backward time of named EDM networks, on the CPU and on CUDA when present
// (float32 on CUDA twice: TF32 off, then on). One line per figure.
import { EDMNetwork, randn, tidy, noGrad, cuda, getNumThreads, buildInfo, F, type Device, type ExecutionDType } from '../src/index.js';
import { PRESETS, type PresetName } from '../src/edm/presets.js';

const arg = (n: string) => { const i = process.argv.indexOf(`--${n}`); return i >= 0 ? process.argv[i + 1] : undefined; };
const only = arg('preset') as PresetName | undefined;
const plan: [PresetName, Device, number, ExecutionDType][] = [
  ['fmnist-small', 'cpu', 32, 'float32'],
  ['fmnist', 'cpu', 16, 'float32'],
  ['cifar10-ddpmpp', 'cpu', 4, 'float32'],
];
if (cuda.isAvailable()) {
  plan.push(['fmnist', 'cuda', 128, 'float32'], ['cifar10-ddpmpp', 'cuda', 128, 'float32'], ['cifar10-ddpmpp', 'cuda', 128, 'bfloat16'],
    ['imagenet64-adm', 'cuda', 40, 'bfloat16']);
}
const sync = (d: Device) => { if (d !== 'cpu') cuda.synchronize(); };
console.log(`bench:unet libtorch ${buildInfo().torchVersion}, ${getNumThreads()} CPU threads${cuda.isAvailable() ? ', CUDA' : ', no CUDA'}`);
const runs = plan.flatMap(([name, device, batch, dtype]) =>
  (device !== 'cpu' && dtype === 'float32' ? [false, true] : [null]).map((tf32) => [name, device, batch, dtype, tf32] as const));
for (const [name, device, defBatch, dtype, tf32] of runs) {
  if (only && name !== only) continue;
  if (tf32 !== null) cuda.setAllowTF32({ matmul: tf32, cudnn: tf32 });
  const batch = Number(arg('batch') ?? defBatch);
  const iters = Number(arg('iters') ?? (device === 'cpu' ? 3 : 20));
  const net = EDMNetwork.create(PRESETS[name], { seed: 0, device });
  const c = net.config;
  const x = randn([batch, c.img_channels, c.img_resolution, c.img_resolution], { device }).keep();
  const sigma = randn([batch], { device }).exp().keep();
  const labels = F.cycledOneHot(batch, c.label_dim, device)?.keep() ?? null;
  const run = (backward: boolean) => tidy(() => {
    if (!backward) { noGrad(() => net.forward(x, sigma, { labels, dtype })); return; }
    net.forward(x, sigma, { labels, dtype }).square().mean().backward();
  });
  const measure = (backward: boolean) => {
    run(backward);
    sync(device);
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) run(backward);
    sync(device);
    return (performance.now() - t0) / iters;
  };
  const fwd = measure(false);
  const fb = measure(true);
  const params = (net.parameterCount() / 1e6).toFixed(2);
  console.log(`unet ${name} (${params}M params) ${device} ${dtype}${tf32 === null ? '' : ` tf32=${tf32 ? 'on' : 'off'}`} batch=${batch}: forward ${fwd.toFixed(1)} ms (${(batch / fwd * 1000).toFixed(0)} img/s), forward+backward ${fb.toFixed(1)} ms (${(batch / fb * 1000).toFixed(0)} img/s)`);
  net.dispose();
  x.dispose();
  sigma.dispose();
  labels?.dispose();
}
