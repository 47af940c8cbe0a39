// Multi-process jobs that go wrong end on every rank with one line that names the problem: ranks that
// disagree on settings, teachers or WORLD_SIZE (before any collective, never an abort inside Gloo),
// ranks that never join, a store address that does not resolve, a port another program holds, launch
// environments set by half, a socket interface the machine lacks, and a launcher stopped by a signal.
// 2 Gloo processes on 127.0.0.1.
import test from 'ava';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import { buildInfo } from '../../src/index.js';
import { launchFromEnv, LaunchError } from '../../src/distributed/launch.js';
import { freePort } from '../../src/distributed/spawn.js';
import { tempDir } from '../helpers/tmp.js';
import { tinyTeacher, TINY_TEACHER } from '../helpers/teacher.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = tempDir();
const teacher = tinyTeacher(dir);
const other = tinyTeacher(dir, 'other.safetensors', { ...TINY_TEACHER, model_channels: 16 });
const gloo = buildInfo().distributed.includes('gloo');
const dtest = gloo ? test.serial : test.skip;
const title = (t: string) => (gloo ? t : `${t} [skipped: this build has no Gloo backend (apt-get install libgloo-dev, rebuild)]`);

interface Proc { code: number | null; signal: NodeJS.Signals | null; out: string; ms: number }

function run(args: string[], env: Record<string, string>): { child: ChildProcess; done: Promise<Proc> } {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/dmd-train.ts', ...args], { cwd: root, env: { ...process.env, CI: '1', DMD_NUM_THREADS: '1', ...env } });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { child, done: new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, out, ms: performance.now() - t0 }))) };
}

const base = (out: string, o: { batch?: number; steps?: number; teacher?: string; timeout?: number } = {}) =>
  ['--teacher', o.teacher ?? teacher, '--out', out, '--steps', String(o.steps ?? 2), '--batch-size', String(o.batch ?? 2), '--device', 'cpu', '--final-eval', '0', '--dist-timeout', String(o.timeout ?? 20)];
const rankEnv = (rank: number, size: number, port: number, extra: Record<string, string> = {}) => ({ RANK: String(rank), WORLD_SIZE: String(size), LOCAL_RANK: String(rank), LOCAL_WORLD_SIZE: String(size), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), ...extra });

/** Both ranks ended with exit 1 and one error line matching re (no abort, no C++ trace). */
function refusedEverywhere(t: { is: (a: unknown, b: unknown, m?: string) => void; regex: (s: string, r: RegExp, m?: string) => void; false: (v: boolean, m?: string) => void }, procs: Proc[], re: RegExp): void {
  procs.forEach((p, r) => {
    t.is(p.code, 1, `rank ${r}: ${p.out}`);
    const errors = p.out.split('\n').filter((l) => l.startsWith('error: '));
    t.is(errors.length, 1, `rank ${r}: ${p.out}`);
    t.regex(errors[0] ?? '', re, `rank ${r}`);
    t.false(/terminate called|EnforceNotMet|Aborted/.test(p.out), `rank ${r} aborted: ${p.out}`);
  });
}

dtest(title('ranks launched with different --batch-size are refused before training, naming the field, both values and the ranks'), async (t) => {
  const port = await freePort();
  const out = path.join(dir, 'bs');
  const procs = await Promise.all([run([...base(out)], rankEnv(0, 2, port)).done, run(base(out, { batch: 3 }), rankEnv(1, 2, port)).done]);
  refusedEverywhere(t, procs, /disagree on batchSize \(dmd-train settings\): rank 0 has 2; rank 1 has 3/);
});

dtest(title('ranks given teachers of different shapes are refused by their hashes before any collective (never an abort in Gloo)'), async (t) => {
  const port = await freePort();
  const out = path.join(dir, 'teachers');
  const procs = await Promise.all([run(base(out), rankEnv(0, 2, port)).done, run(base(out, { teacher: other }), rankEnv(1, 2, port)).done]);
  refusedEverywhere(t, procs, /disagree on teacher_parameters|disagree on teacher_sha256/);
});

dtest(title('a rank launched with another WORLD_SIZE is refused on every rank, naming WORLD_SIZE'), async (t) => {
  const port = await freePort();
  const out = path.join(dir, 'ws');
  const procs = await Promise.all([run(base(out), rankEnv(0, 2, port)).done, run(base(out), rankEnv(1, 3, port)).done]);
  refusedEverywhere(t, procs, /disagree on WORLD_SIZE: rank \d has \d, rank \d has \d/);
});

dtest(title('a rank that never joins is named by the ranks that did, with the store address and the flag to change'), async (t) => {
  const port = await freePort();
  const p = await run(base(path.join(dir, 'alone'), { timeout: 4 }), rankEnv(0, 2, port)).done;
  t.is(p.code, 1, p.out);
  t.regex(p.out, new RegExp(`error: rank 0 of 2: rank 1 of 2 never joined within 4 s \\(store 127\\.0\\.0\\.1:${port}\\); start every rank, or raise --dist-timeout`));
  t.true(p.ms < 30_000, `${p.ms} ms`);
  t.false(/\[W socket|\[W .*\.cpp/.test(p.out), `libtorch's log lines leak: ${p.out}`);
});

dtest(title('a store address that does not resolve fails at once, naming it; a port held by another program is named as such'), async (t) => {
  const port = await freePort();
  const bad = await run(base(path.join(dir, 'dns')), rankEnv(1, 2, port, { MASTER_ADDR: 'no-such-host.invalid' })).done;
  t.is(bad.code, 1, bad.out);
  t.regex(bad.out, /MASTER_ADDR 'no-such-host\.invalid' does not resolve/);
  t.true(bad.ms < 20_000);
  const squatter = createServer((s) => s.destroy());
  await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', () => r()));
  const held = (squatter.address() as { port: number }).port;
  try {
    const p = await run(base(path.join(dir, 'held')), rankEnv(0, 2, held)).done;
    t.is(p.code, 1, p.out);
    t.regex(p.out, new RegExp(`could not host the rendezvous store at 127\\.0\\.0\\.1:${held} .*held by another program; choose another MASTER_PORT`));
  } finally {
    squatter.close();
  }
});

test('launch environments set by half are refused with the variable named, never run as one rank 0', (t) => {
  t.throws(() => launchFromEnv({ LOCAL_RANK: '1' }), { instanceOf: LaunchError, message: /LOCAL_RANK=1 is set but RANK and WORLD_SIZE are not/ });
  t.throws(() => launchFromEnv({ LOCAL_WORLD_SIZE: '2' }), { instanceOf: LaunchError, message: /LOCAL_WORLD_SIZE=2 is set/ });
  t.throws(() => launchFromEnv({ SLURM_PROCID: '1' }), { instanceOf: LaunchError, message: /SLURM_PROCID=1 is set but SLURM_NTASKS is not/ });
  t.throws(() => launchFromEnv({ SLURM_NTASKS: '4' }), { instanceOf: LaunchError, message: /SLURM_NTASKS=4 is set but SLURM_PROCID is not/ });
  t.is(launchFromEnv({ MASTER_PORT: '1234' }).source, 'single', 'a stray MASTER_PORT alone is harmless');
});

dtest(title('the --nproc-per-node launcher stopped by SIGTERM says so and exits 143; more workers than cores are warned about'), async (t) => {
  const out = path.join(dir, 'sig');
  const l = run([...base(out, { steps: 400 }), '--nproc-per-node', '3'], {});
  // once the workers run, stop the launcher
  await new Promise<void>((resolve) => {
    const check = setInterval(() => { if (/launching 3 workers/.test(readOut())) { clearInterval(check); setTimeout(resolve, 3000); } }, 100);
    let acc = '';
    const readOut = () => acc;
    l.child.stderr!.on('data', (d: Buffer) => (acc += d.toString()));
  });
  l.child.kill('SIGTERM');
  const p = await l.done;
  t.is(p.code, 143, p.out);
  t.regex(p.out, /stopped by SIGTERM; the signal was passed to the 3 workers/);
  if (availableParallelism() < 3) t.regex(p.out, /warning: --nproc-per-node 3 on \d+ core\(s\)/);
  t.false(/worker rank \d exited with code/.test(p.out), p.out);
});

dtest(title('GLOO_SOCKET_IFNAME naming an interface this machine lacks is refused on every rank with the interfaces it has'), async (t) => {
  const port = await freePort();
  const out = path.join(dir, 'ifname');
  const env = (r: number) => rankEnv(r, 2, port, { GLOO_SOCKET_IFNAME: 'lo,nosuch9' });
  const procs = await Promise.all([run(base(out), env(0)).done, run(base(out), env(1)).done]);
  refusedEverywhere(t, procs, /rank [01] of 2: GLOO_SOCKET_IFNAME=lo,nosuch9 names 'nosuch9', which this machine \(.*\) does not have; its interfaces: lo\b/);
});
