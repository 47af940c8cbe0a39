// npm run bench:pkl [-- --preset imagenet64-adm --runs 3 --keep]
// Reading a large Python pickle of tensors (laid out as an NVlabs EDM snapshot: pickle.dump, storages
// as _load_from_bytes) with our TypeScript unpickler versus Python's pickle.load (Debian's python3-torch)
// on the same file, each in its own process, alternated: wall seconds and peak RSS. The file (about
// 1.2 GB for EDM's ImageNet-64 ADM, 296M parameters) is made by scripts/make-tensor-pkl.py.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync, statSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const arg = (n: string, d: string) => { const i = process.argv.indexOf(`--${n}`); return i >= 0 ? process.argv[i + 1]! : d; };
const preset = arg('preset', 'imagenet64-adm');
const runs = Number(arg('runs', '3'));
const here = path.dirname(fileURLToPath(import.meta.url));
const py = process.env.DMD_TORCH_PYTHON ?? '/usr/bin/python3';
const file = path.join(tmpdir(), `dmd-bench-${preset}.pkl`);

if (process.argv[2] === '--read') {
  // the child that reads: time and peak RSS of readPythonFile alone
  const { readPythonFile } = await import('../src/io/torchsave.js');
  const { tensorsIn } = await import('../src/edm/snapshot.js');
  const { dispose } = await import('../src/tensor/scope.js');
  const t0 = performance.now();
  const v = readPythonFile(process.argv[3]!);
  const s = (performance.now() - t0) / 1000;
  const ts = tensorsIn(v);
  console.log(JSON.stringify({ seconds: s, tensors: ts.length, values: ts.reduce((a, t) => a + t.numel, 0), maxRssMiB: process.resourceUsage().maxRSS / 1024 }));
  dispose(ts);
  process.exit(0);
}

if (!existsSync(file)) {
  const { EDMNetwork, PRESETS } = await import('../src/index.js');
  const net = EDMNetwork.create({ ...PRESETS[preset as keyof typeof PRESETS], dropout: 0 });
  const shapes: Record<string, number[]> = {};
  for (const [k, t] of net.stateDict()) { shapes[k] = t.shape; t.dispose(); }
  net.dispose();
  const shapesFile = `${file}.shapes.json`;
  writeFileSync(shapesFile, JSON.stringify(shapes));
  const r = spawnSync(py, [path.join(here, 'make-tensor-pkl.py'), shapesFile, file], { stdio: 'inherit' });
  rmSync(shapesFile);
  if (r.status !== 0) process.exit(1);
}
console.log(`bench:pkl ${file}: ${(statSync(file).size / 2 ** 30).toFixed(2)} GiB (${preset} shapes)`);
const pyCode = 'import pickle,sys,time,resource,torch\nt=time.time()\nd=pickle.load(open(sys.argv[1],"rb"))\ns=time.time()-t\nv=d["ema_state_dict"]\nimport json\nprint(json.dumps({"seconds":s,"tensors":len(v),"values":sum(x.numel() for x in v.values()),"maxRssMiB":resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024}))';
const rows: { who: string; seconds: number; maxRssMiB: number; values: number }[] = [];
for (let i = 0; i < runs; i++) {
  for (const who of ['dmd-torch', 'python'] as const) {
    const r = who === 'python'
      ? spawnSync(py, ['-c', pyCode, file], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } })
      : spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--read', file], { encoding: 'utf8' });
    if (r.status !== 0) { console.error(r.stderr); process.exit(1); }
    const m = JSON.parse(r.stdout.trim().split('\n').pop()!) as { seconds: number; maxRssMiB: number; values: number };
    rows.push({ who, ...m });
    console.log(`${who.padEnd(9)} run ${i + 1}: ${m.seconds.toFixed(2)} s, peak RSS ${m.maxRssMiB.toFixed(0)} MiB (${m.values} values)`);
  }
}
const median = (who: string, k: 'seconds' | 'maxRssMiB') => { const v = rows.filter((r) => r.who === who).map((r) => r[k]).sort((a, b) => a - b); return v[v.length >> 1]!; };
console.log(`median: dmd-torch ${median('dmd-torch', 'seconds').toFixed(2)} s / ${median('dmd-torch', 'maxRssMiB').toFixed(0)} MiB, Python pickle.load ${median('python', 'seconds').toFixed(2)} s / ${median('python', 'maxRssMiB').toFixed(0)} MiB: ratio ${(median('dmd-torch', 'seconds') / median('python', 'seconds')).toFixed(2)}x time, ${(median('dmd-torch', 'maxRssMiB') / median('python', 'maxRssMiB')).toFixed(2)}x memory`);
if (!process.argv.includes('--keep')) rmSync(file);
