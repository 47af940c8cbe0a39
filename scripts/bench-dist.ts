// npm run bench:dist [-- --preset fmnist-small --batch 16 --ratio 5 --iters 20]
// Data-parallel DMD on this machine: iterations/s and generated images/s at world size 1 and 2 (Gloo,
// the cores split between the processes), and the gradient all-reduce time per iteration, in one run.
// With CUDA, the same iteration with NCCL at world size 1 and without a process group is compared
// (the cost of the gradient sync). One line per figure.
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { freePort } from '../src/distributed/spawn.js';

const arg = (n: string, d: string) => { const i = process.argv.indexOf(`--${n}`); return i >= 0 ? process.argv[i + 1]! : d; };
const self = fileURLToPath(import.meta.url);

if (process.env.DMD_BENCH_DIST_WORKER) {
  const { EDMNetwork, EDMScoreModel, DMDTrainer, PRESETS, cuda } = await import('../src/index.js');
  const preset = arg('preset', 'fmnist-small') as keyof typeof PRESETS;
  const batch = Number(arg('batch', '16'));
  const ratio = Number(arg('ratio', '5'));
  const iters = Number(arg('iters', '20'));
  const device = process.env.DMD_BENCH_DEVICE ?? 'cpu';
  const teacher = EDMNetwork.create({ ...PRESETS[preset], dropout: 0 }, { seed: 0 });
  teacher.eval();
  const tr = new DMDTrainer({ steps: 1e9, batchSize: batch, fakeUpdatesPerGen: ratio, device, gan: false, lambdaReg: 0, finalEval: 0, out: '/tmp/dmd-bench-dist' }, () => {}, { teacher: new EDMScoreModel(teacher) });
  const sync = () => { if (device !== 'cpu') cuda.synchronize(); };
  for (let i = 0; i < ratio; i++) tr.iteration();
  sync();
  tr.dist.stats.gradientSyncSeconds = 0;
  tr.dist.stats.gradientSyncs = 0;
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) tr.iteration();
  sync();
  const spi = (performance.now() - t0) / 1000 / iters;
  if (tr.dist.isMain) console.log(JSON.stringify({ world: tr.dist.size, backend: tr.dist.backend, spi, imgs: (batch * tr.dist.size) / spi, syncPerIter: tr.dist.stats.gradientSyncSeconds / iters }));
  tr.dispose();
} else {
  const cores = availableParallelism();
  const run = async (world: number, env: Record<string, string> = {}) => {
    const port = await freePort();
    const outs = await Promise.all(Array.from({ length: world }, (_, r) => new Promise<string>((resolve, reject) => {
      const p = spawn(process.execPath, [...process.execArgv, self, ...process.argv.slice(2)], {
        env: { ...process.env, DMD_BENCH_DIST_WORKER: '1', RANK: String(r), WORLD_SIZE: String(world), LOCAL_RANK: String(r), LOCAL_WORLD_SIZE: String(world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), DMD_NUM_THREADS: String(Math.max(1, Math.floor(cores / world))), ...env },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`worker ${r} exited with ${code}`))));
    })));
    return JSON.parse(outs.join('').trim().split('\n').at(-1)!) as { world: number; backend: string; spi: number; imgs: number; syncPerIter: number };
  };
  const preset = arg('preset', 'fmnist-small');
  console.log(`bench:dist ${preset}, batch ${arg('batch', '16')} per process, fake:gen ${arg('ratio', '5')}:1, ${cores} cores split between the processes`);
  for (const world of [1, 2]) {
    const r = await run(world);
    console.log(`dist world=${r.world} (${r.backend}) cpu: ${r.spi.toFixed(3)} s/iter (${(1 / r.spi).toFixed(2)} it/s), ${r.imgs.toFixed(1)} generated img/s, gradient all-reduce ${(r.syncPerIter * 1000).toFixed(1)} ms/iter (${((100 * r.syncPerIter) / r.spi).toFixed(1)}%)`);
  }
  if (process.env.DMD_BENCH_DIST_CUDA === '1') {
    for (const [label, env] of [['no process group', {}], ['NCCL process group of 1', { DMD_DIST_FORCE_GROUP: '1' }]] as const) {
      const r = await run(1, { ...env, DMD_BENCH_DEVICE: 'cuda' });
      console.log(`dist cuda ${label}: ${r.spi.toFixed(4)} s/iter, gradient sync ${(r.syncPerIter * 1000).toFixed(2)} ms/iter`);
    }
  }
}
