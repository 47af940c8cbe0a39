// npm run bench:train [-- --preset fmnist --batch 128 --ratio 5 --dtype float32 --iters 10 --device cuda]
// Seconds per DMD iteration and images/s (generator samples per second of training) for a named
// network and fake:gen ratio, plus one-step generation images/s. Without arguments: a CPU plan, and
// the GPU plan of the issue when CUDA is present (ImageNet-64 ADM 296M bf16 batch 40, Fashion-MNIST
// SongUNet 7M fp32 batch 128, both fake:gen 5). One line per figure.
import { EDMNetwork, DMDTrainer, cuda, randn, tidy, noGrad, generate, getNumThreads, buildInfo, F, type Device } from '../src/index.js';
import { PRESETS, type PresetName } from '../src/edm/presets.js';

const arg = (n: string) => { const i = process.argv.indexOf(`--${n}`); return i >= 0 ? process.argv[i + 1] : undefined; };
type Dt = 'float32' | 'bfloat16';
type Plan = [PresetName, Device, number, number, Dt];
let plan: Plan[];
if (arg('preset')) {
  plan = [[arg('preset') as PresetName, (arg('device') ?? (cuda.isAvailable() ? 'cuda' : 'cpu')) as Device, Number(arg('batch') ?? 32), Number(arg('ratio') ?? 5), (arg('dtype') ?? 'float32') as Dt]];
} else {
  plan = [['fmnist-small', 'cpu', 8, 5, 'float32'], ['fmnist', 'cpu', 8, 5, 'float32']];
  if (cuda.isAvailable()) plan.push(['fmnist', 'cuda', 128, 5, 'float32'], ['imagenet64-adm', 'cuda', 40, 5, 'bfloat16']);
}
const sync = (d: Device) => { if (d !== 'cpu') cuda.synchronize(); };
console.log(`bench:train libtorch ${buildInfo().torchVersion}, ${getNumThreads()} CPU threads${cuda.isAvailable() ? ', CUDA' : ', no CUDA'}`);
for (const [name, device, batch, ratio, dtype] of plan) {
  const teacher = EDMNetwork.create({ ...PRESETS[name], dropout: 0 }, { seed: 0, device });
  teacher.eval();
  const tr = new DMDTrainer({ steps: 1e9, batchSize: batch, fakeUpdatesPerGen: ratio, dtype, device, gan: false, lambdaReg: 0, out: '/tmp/dmd-bench' }, () => {}, { teacherNet: teacher });
  const iters = Number(arg('iters') ?? (device === 'cpu' ? ratio : 4 * ratio));
  for (let i = 0; i < ratio; i++) tr.iteration(); // warm-up: one full fake:gen cycle
  sync(device);
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) tr.iteration();
  sync(device);
  const spi = (performance.now() - t0) / 1000 / iters;
  // one-step generation throughput
  const c = teacher.config;
  const z = randn([batch, c.img_channels, c.img_resolution, c.img_resolution], { device }).keep();
  const labels = F.cycledOneHot(batch, c.label_dim, device)?.keep() ?? null;
  const gen = () => noGrad(() => tidy(() => { generate(tr.G, z, labels, 80, dtype); }));
  gen();
  sync(device);
  const g0 = performance.now();
  const gi = device === 'cpu' ? 3 : 20;
  for (let i = 0; i < gi; i++) gen();
  sync(device);
  const gs = (performance.now() - g0) / 1000 / gi;
  const params = (teacher.parameterCount() / 1e6).toFixed(1);
  console.log(`train ${name} (${params}M) ${device} ${dtype} batch=${batch} fake:gen=${ratio}:1: ${spi.toFixed(3)} s/iter, ${(batch / spi).toFixed(1)} img/s; one-step generation ${(batch / gs).toFixed(0)} img/s`);
  tr.dispose();
  teacher.dispose();
  z.dispose();
  labels?.dispose();
}
