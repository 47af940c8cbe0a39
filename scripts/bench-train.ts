// npm run bench:train [-- --preset fmnist --batch 128 --ratio 5 --gan --dtype float32 --iters 10 --device cuda --no-tf32 --cudnn-benchmark]
// Seconds per DMD iteration and images/s (generator samples per second of training) for a named
// network and fake:gen ratio (with --gan: DMD2's GAN on real Fashion-MNIST), the mean seconds of the
// generator turn and of the fake-score turn, one-step generation images/s and, on CUDA, the peak memory allocated.
// Without arguments: a CPU plan and, when CUDA is present, the four configurations of DMD2's
// published H100 timings (SongUNet 7M fp32+TF32 batch 128 fake:gen 5; ADM 296M batch 40 in bf16 with
// fake:gen 5 and 1, and fp32+TF32 fake:gen 5), each printed beside DMD2's figures with the ratios.
// One line per figure.
import { EDMNetwork, EDMScoreModel, DMDTrainer, ganGeneratorLoss, cuda, randn, tidy, noGrad, getNumThreads, buildInfo, F, type Device } from '../src/index.js';
import { PRESETS, type PresetName } from '../src/edm/presets.js';

const arg = (n: string) => { const i = process.argv.indexOf(`--${n}`); return i >= 0 ? process.argv[i + 1] : undefined; };
const flag = (n: string) => process.argv.includes(`--${n}`);
type Dt = 'float32' | 'bfloat16';
interface Row { name: PresetName; device: Device; batch: number; ratio: number; dtype: Dt; gan?: boolean; dmd2?: { spi: number; genImgPerS: number; peakGiB: number } }
let plan: Row[];
if (arg('preset')) {
  plan = [{ name: arg('preset') as PresetName, device: (arg('device') ?? (cuda.isAvailable() ? 'cuda' : 'cpu')) as Device, batch: Number(arg('batch') ?? 32), ratio: Number(arg('ratio') ?? 5), dtype: (arg('dtype') ?? 'float32') as Dt, gan: flag('gan') }];
} else {
  plan = [
    { name: 'fmnist-small', device: 'cpu', batch: 8, ratio: 5, dtype: 'float32' },
    { name: 'fmnist-small', device: 'cpu', batch: 8, ratio: 1, dtype: 'float32', gan: true },
    { name: 'fmnist', device: 'cpu', batch: 8, ratio: 5, dtype: 'float32' },
  ];
  if (cuda.isAvailable()) {
    // DMD2's own PyTorch code on one H100 80GB, random-init teacher (figures from the project's issue)
    plan = [
      { name: 'fmnist', device: 'cuda', batch: 128, ratio: 5, dtype: 'float32', dmd2: { spi: 0.0642, genImgPerS: 11279, peakGiB: 4.2 } },
      { name: 'imagenet64-adm', device: 'cuda', batch: 40, ratio: 5, dtype: 'bfloat16', dmd2: { spi: 0.3351, genImgPerS: 650, peakGiB: 24.3 } },
      { name: 'imagenet64-adm', device: 'cuda', batch: 40, ratio: 1, dtype: 'bfloat16', dmd2: { spi: 0.5865, genImgPerS: 629, peakGiB: 24.3 } },
      { name: 'imagenet64-adm', device: 'cuda', batch: 40, ratio: 5, dtype: 'float32', dmd2: { spi: 0.4431, genImgPerS: 511, peakGiB: 37.8 } },
    ];
  }
}
const tf32 = !flag('no-tf32');
if (flag('cudnn-benchmark')) cuda.setDeterminism({ cudnnBenchmark: true });
const sync = (d: Device) => { if (d !== 'cpu') cuda.synchronize(); };
console.log(`bench:train libtorch ${buildInfo().torchVersion}, ${getNumThreads()} CPU threads${cuda.isAvailable() ? ', CUDA' : ', no CUDA'}; float32 on CUDA with TF32 ${tf32 ? 'on' : 'off'}, cuDNN benchmark ${cuda.determinism().cudnnBenchmark ? 'on' : 'off'}`);
for (const { name, device, batch, ratio, dtype, gan, dmd2 } of plan) {
  const teacher = EDMNetwork.create({ ...PRESETS[name], dropout: 0 }, { seed: 0, device });
  teacher.eval();
  const tr = new DMDTrainer({ steps: 1e9, batchSize: batch, fakeUpdatesPerGen: ratio, dtype, device, tf32, gan: !!gan, data: gan ? 'fashion-mnist' : undefined, lambdaReg: 0, out: '/tmp/dmd-bench' }, () => {}, { teacher: new EDMScoreModel(teacher) });
  const iters = Number(arg('iters') ?? (device === 'cpu' ? Math.max(10, 2 * ratio) : 4 * ratio));
  for (let i = 0; i < ratio; i++) tr.iteration(); // warm-up: one full fake:gen cycle
  sync(device);
  if (device !== 'cpu') cuda.resetPeakMemoryStats();
  const t0 = performance.now();
  const turns = { generator: 0, generatorTurns: 0, fakeScore: 0 };
  for (let i = 0; i < iters; i++) {
    tr.iteration();
    if (device !== 'cpu') continue; // kernel launches only on CUDA
    if (tr.turnSeconds.generator > 0) { turns.generator += tr.turnSeconds.generator; turns.generatorTurns += 1; }
    turns.fakeScore += tr.turnSeconds.fakeScore;
  }
  sync(device);
  const spi = (performance.now() - t0) / 1000 / iters;
  const turnLine = turns.generatorTurns ? `; generator turn ${(turns.generator / turns.generatorTurns).toFixed(4)} s, fake-score turn ${(turns.fakeScore / iters).toFixed(4)} s` : '';
  const peak = device !== 'cpu' ? cuda.memoryStats().peakAllocated / 2 ** 30 : null;
  // one-step generation throughput
  const c = teacher.config;
  const z = randn([batch, c.img_channels, c.img_resolution, c.img_resolution], { device }).keep();
  const labels = F.cycledOneHot(batch, c.label_dim, device)?.keep() ?? null;
  const gen = () => noGrad(() => tidy(() => { tr.G.generate(z, labels, 80, dtype); }));
  gen();
  sync(device);
  const g0 = performance.now();
  const gi = device === 'cpu' ? 3 : 20;
  for (let i = 0; i < gi; i++) gen();
  sync(device);
  const genRate = batch / ((performance.now() - g0) / 1000 / gi);
  const params = (teacher.parameterCount() / 1e6).toFixed(1);
  const prec = dtype === 'float32' && device !== 'cpu' ? `float32${tf32 ? '+TF32' : ''}` : dtype;
  console.log(`train ${name} (${params}M) ${device} ${prec} batch=${batch} fake:gen=${ratio}:1${gan ? ' +GAN' : ''}: ${spi.toFixed(4)} s/iter, ${(batch / spi).toFixed(1)} img/s${turnLine}; one-step generation ${genRate.toFixed(0)} img/s${peak !== null ? `; peak ${peak.toFixed(1)} GiB` : ''}`);
  if (gan && tr.critic) {
    // the generator turn's GAN term alone, its backward with the critic frozen (as the trainer runs it)
    // and without (what it cost before), alternated in this process
    const critic = tr.critic;
    const ganTerm = (frozen: boolean) => {
      const t1 = performance.now();
      tidy(() => {
        const run = () => ganGeneratorLoss(critic.ganLogits(tr.G.generate(z, labels, 80, dtype), labels)).backward();
        if (frozen) critic.frozen(run);
        else run();
      });
      sync(device);
      tr.optG.zeroGrad();
      tr.optF!.zeroGrad();
      return performance.now() - t1;
    };
    const times = { frozen: [] as number[], open: [] as number[] };
    for (let i = 0; i < 2 * gi + 4; i++) times[i % 2 ? 'open' : 'frozen'].push(ganTerm(i % 2 === 0));
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]! / 1000;
    console.log(`  GAN generator term (G forward, head on the fake score's bottleneck, backward): ${median(times.frozen).toFixed(4)} s with the critic frozen, ${median(times.open).toFixed(4)} s with its weight gradients computed (median of ${times.open.length})`);
  }
  if (dmd2) {
    console.log(`  vs DMD2 (H100 80GB, its PyTorch code): ${dmd2.spi} s/iter, ${dmd2.genImgPerS} img/s, ${dmd2.peakGiB} GiB -> ${(dmd2.spi / spi).toFixed(2)}x faster per iteration (target 1.4x), ${(genRate / dmd2.genImgPerS).toFixed(2)}x generation (target 1.5x), memory ${(peak! / dmd2.peakGiB).toFixed(2)}x (target <= 1)`);
  }
  tr.dispose();
  teacher.dispose();
  z.dispose();
  labels?.dispose();
}
