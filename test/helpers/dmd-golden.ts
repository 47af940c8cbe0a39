// Seeded DMD runs whose every loss and exported generator bytes are recorded in
// test/fixtures/golden/dmd-golden.json: the DMD core may be reshaped, but a seeded run must give
// bit-identical numbers. `tsx test/helpers/dmd-golden.ts --write` records the current code's values
// (done once, on the code before a refactor); test/native/dmd-golden.test.ts compares against them.
// Machines that report the same CPU model name can still round differently (a VM's "AMD EPYC" may be
// a Zen 3 with AVX2 or a Zen 4 with AVX-512, and libtorch picks its kernels by vector ISA), so the same
// runs may also be recorded on another one with `--write-variant` (dmd-golden.<isa>.json, from code whose
// DMD core is unchanged since the golden): a run must then equal one of the recordings bit for bit.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildInfo, setNumThreads } from '../../src/index.js';
import { makePairs, PairsConfigSchema } from '../../src/index.js';
import { DMDTrainer } from '../../src/index.js';
import { tinyTeacher } from './teacher.js';
import { pngClassFolder } from './data.js';
import { tempDir } from './tmp.js';

export const GOLDEN_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/golden/dmd-golden.json');

export interface GoldenRun {
  /** per iteration, every metric the trainer reported (full float64 precision as JSON keeps it) */
  metrics: Record<string, number>[];
  /** SHA-256 of generator.safetensors */
  generatorSha256: string;
}

export interface Golden {
  torchVersion: string;
  cpu: string;
  /** the vector ISA libtorch's kernels use on the recording machine (variants; the original golden predates the field) */
  isa?: string;
  /** /proc/cpuinfo's family and model of the recording machine (variants) */
  cpuId?: string;
  /** the BLAS the process had loaded (blasLibrary()); kernels round differently under another */
  blas: string;
  runs: Record<string, GoldenRun>;
}

/** The recorded configurations: pairs + diffusion GAN + EMA + fake:gen 5; and DMD's fake:gen 1 with CFG real score and l2. */
export const GOLDEN_CONFIGS: Record<string, Record<string, unknown>> = {
  'pairs-gan-ema-fg5': { steps: 12, fakeUpdatesPerGen: 5, gan: true, diffusionGan: true, emaDecay: 0.9, regression: 'pseudo-huber', lambdaReg: 0.25 },
  'pairs-l2-cfg-fg1': { steps: 6, fakeUpdatesPerGen: 1, realGuidance: 1.5, regression: 'l2', lambdaReg: 0.25, warmupSteps: 0 },
};

export function cpuModel(): string {
  try {
    const m = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m ? m[1]!.trim() : 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Which BLAS this process has loaded, from the libraries mapped into it: Debian's alternatives keep each
 * implementation of libblas.so.3 in its own directory ("blas" for the reference BLAS, "openblas-openmp",
 * "openblas-pthread", "blis-openmp", ...); a BLAS linked under another name (MKL) is named by its file.
 */
export function blasLibrary(): string {
  try {
    const files = new Set(readFileSync('/proc/self/maps', 'utf8').split('\n').map((l) => l.trim().split(/\s+/)[5] ?? '').filter((f) => f.startsWith('/')));
    const blas = [...files].find((f) => /\/libblas\.so/.test(f));
    if (blas) {
      const dir = path.basename(path.dirname(blas));
      return dir === 'blas' ? 'reference' : dir;
    }
    const other = [...files].find((f) => /mkl_|openblas|blis/.test(path.basename(f)));
    return other ? path.basename(other) : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The recordings: the golden and its variants from other machines (see the file's head). */
export function goldenRecordings(): { file: string; golden: Golden }[] {
  const dir = path.dirname(GOLDEN_FILE);
  const files = [GOLDEN_FILE, ...readdirSync(dir).filter((f) => /^dmd-golden\..+\.json$/.test(f)).sort().map((f) => path.join(dir, f))];
  return files.map((file) => ({ file, golden: JSON.parse(readFileSync(file, 'utf8')) as Golden }));
}

/** The widest vector ISA libtorch 1.13's CPU kernels dispatch to on this machine (as ATen decides it from the CPU's flags). */
export function cpuIsa(): string {
  try {
    const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').split(/\s+/));
    if (['avx512f', 'avx512bw', 'avx512vl', 'avx512dq'].every((f) => flags.has(f))) return 'avx512';
    if (flags.has('avx2') && flags.has('fma')) return 'avx2';
    return 'default';
  } catch {
    return 'unknown';
  }
}

function cpuId(): string {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    return `family ${/^cpu family\s*:\s*(\d+)/m.exec(info)?.[1] ?? '?'} model ${/^model\s*:\s*(\d+)/m.exec(info)?.[1] ?? '?'}`;
  } catch {
    return 'unknown';
  }
}

export async function runGolden(): Promise<Golden> {
  const dir = tempDir('dmd-golden-');
  const teacher = tinyTeacher(dir);
  const quiet = () => {};
  const pairs = path.join(dir, 'pairs');
  await makePairs(PairsConfigSchema.parse({ teacher, out: pairs, count: 24, steps: 3, shardSize: 10, batchSize: 8, device: 'cpu' }), quiet);
  const data = pngClassFolder(dir);
  const runs: Record<string, GoldenRun> = {};
  for (const [name, extra] of Object.entries(GOLDEN_CONFIGS)) {
    const out = path.join(dir, name);
    const tr = new DMDTrainer({ teacher, out, pairs, data, batchSize: 4, device: 'cpu', seed: 3, sampleEvery: 5, checkpointEvery: 100, metricsEvery: 1, finalEval: 0, ...extra }, quiet);
    const metrics: Record<string, number>[] = [];
    try {
      const r = await tr.train(quiet, { progress: false });
      for (const line of readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n')) {
        const m = JSON.parse(line) as Record<string, number>;
        const keep: Record<string, number> = {};
        for (const k of Object.keys(m).sort()) if (!['elapsed', 'it_per_s', 'img_per_s', 'time', 'seconds', 'steps_per_second'].includes(k) && typeof m[k] === 'number') keep[k] = m[k];
        metrics.push(keep);
      }
      runs[name] = { metrics, generatorSha256: createHash('sha256').update(readFileSync(r.generator!)).digest('hex') };
    } finally {
      tr.dispose();
    }
  }
  return { torchVersion: buildInfo().torchVersion, cpu: cpuModel(), blas: blasLibrary(), runs };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url) && process.argv.includes('--write')) {
  setNumThreads(1);
  const g = await runGolden();
  mkdirSync(path.dirname(GOLDEN_FILE), { recursive: true });
  writeFileSync(GOLDEN_FILE, `${JSON.stringify(g, null, 1)}\n`);
  console.log(`wrote ${GOLDEN_FILE}: ${Object.entries(g.runs).map(([k, r]) => `${k} (${r.metrics.length} records, generator ${r.generatorSha256.slice(0, 12)})`).join(', ')}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url) && process.argv.includes('--write-variant')) {
  setNumThreads(1);
  const g = { ...(await runGolden()), isa: cpuIsa(), cpuId: cpuId() };
  const file = GOLDEN_FILE.replace(/\.json$/, `.${g.isa}.json`);
  writeFileSync(file, `${JSON.stringify(g, null, 1)}\n`);
  console.log(`wrote ${file}`);
}
