// Data-parallel training over libtorch's c10d with the Gloo backend, 2 processes on this machine:
// collective values and a torchrun-style agent store, identical parameters on every rank, N processes x
// batch B = one process x batch N*B, distributed pairs and evaluation equal to single-process ones, a
// killed rank named by the survivor within the timeout and the run resumed, bit-exact resume at world
// size 2. Skipped with the reason when this build has no Gloo backend.
import test from 'ava';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildInfo, makePairs, PairsConfigSchema, evaluate, EvalConfigSchema } from '../../src/index.js';
import { Store } from '../../src/distributed/group.js';
import { launchFromEnv, firstSlurmHost, LaunchError } from '../../src/distributed/launch.js';
import { freePort } from '../../src/distributed/spawn.js';
import { FASHION_MNIST_DIR } from '../../src/data/sources.js';
import { tempDir } from '../helpers/tmp.js';
import { tinyTeacher } from '../helpers/teacher.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const worker = path.join(root, 'test/helpers/dist-worker.ts');
const dir = tempDir();
const teacher = tinyTeacher(dir);
const gloo = buildInfo().distributed.includes('gloo');
const dtest = gloo ? test.serial : test.skip;
const title = (t: string) => (gloo ? t : `${t} [skipped: this build has no Gloo backend (apt-get install libgloo-dev, rebuild)]`);

interface Proc { code: number | null; out: string; ms: number }

function launch(args: string[], rank: number, size: number, port: number, extraEnv: Record<string, string> = {}): { child: ChildProcess; done: Promise<Proc> } {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: root,
    env: { ...process.env, CI: '1', DMD_NUM_THREADS: '1', RANK: String(rank), WORLD_SIZE: String(size), LOCAL_RANK: String(rank), LOCAL_WORLD_SIZE: String(size), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), ...extraEnv },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { child, done: new Promise((resolve) => child.on('close', (code) => resolve({ code, out, ms: performance.now() - t0 }))) };
}

async function world(args: string[], size = 2, env: Record<string, string> = {}): Promise<Proc[]> {
  const port = await freePort();
  return Promise.all(Array.from({ length: size }, (_, r) => launch(args, r, size, port, env).done));
}

const readRank = (out: string, r: number) => JSON.parse(readFileSync(path.join(out, `rank${r}.json`), 'utf8')) as Record<string, unknown>;

test('the launch contract: torchrun, SLURM and single-process environments; inconsistent ones are named', (t) => {
  t.is(launchFromEnv({}).source, 'single');
  const tr = launchFromEnv({ RANK: '1', WORLD_SIZE: '4', LOCAL_RANK: '1', LOCAL_WORLD_SIZE: '2', MASTER_ADDR: 'h0', MASTER_PORT: '1234', TORCHELASTIC_USE_AGENT_STORE: 'True' });
  t.deepEqual(tr, { rank: 1, worldSize: 4, localRank: 1, localWorldSize: 2, masterAddr: 'h0', masterPort: 1234, agentStore: true, source: 'torchrun' });
  const sl = launchFromEnv({ SLURM_PROCID: '3', SLURM_NTASKS: '8', SLURM_LOCALID: '1', SLURM_NODELIST: 'gpu[07-10,12],cpu1', SLURM_NTASKS_PER_NODE: '2', MASTER_PORT: '2222' });
  t.deepEqual(sl, { rank: 3, worldSize: 8, localRank: 1, localWorldSize: 2, masterAddr: 'gpu07', masterPort: 2222, agentStore: false, source: 'slurm' });
  t.is(firstSlurmHost('node5'), 'node5');
  t.throws(() => launchFromEnv({ RANK: '2', WORLD_SIZE: '2', MASTER_ADDR: 'x' }), { instanceOf: LaunchError, message: /rank 2 is not below the world size 2/ });
  t.throws(() => launchFromEnv({ RANK: '0', WORLD_SIZE: '2' }), { instanceOf: LaunchError, message: /MASTER_ADDR is not set/ });
  t.throws(() => launchFromEnv({ RANK: 'x', WORLD_SIZE: '2', MASTER_ADDR: 'h' }), { instanceOf: LaunchError, message: /RANK="x" is not an integer/ });
  t.throws(() => launchFromEnv({ WORLD_SIZE: '2', MASTER_ADDR: 'h' }), { message: /RANK and WORLD_SIZE must be set together/ });
});

dtest(title('collectives: broadcast, sum, allgather and barrier over Gloo, with rank 0 hosting the store and with an agent store; a process joins the job a second time'), async (t) => {
  for (const agent of [false, true]) {
    const out = tempDir();
    let store: Store | null = null;
    let port = await freePort();
    if (agent) {
      // the launcher (here the test) hosts the store, as torchrun's agent does; every rank is a client
      store = Store.tcp({ host: '127.0.0.1', port, isServer: true, worldSize: 2, timeoutMs: 30_000 });
      store.set('launcher', 'test');
      t.is(store.get('launcher').toString(), 'test');
      t.is(store.add('count', 2), 2);
    }
    const procs = await Promise.all([0, 1].map((r) => launch([worker, 'collectives', out], r, 2, port, agent ? { TORCHELASTIC_USE_AGENT_STORE: 'True' } : {}).done));
    for (const p of procs) t.is(p.code, 0, p.out);
    for (const r of [0, 1]) {
      const v = readRank(out, r);
      t.is(v.backend, 'gloo');
      t.deepEqual(v.sum, [3, 5, 7]);
      t.deepEqual(v.gathered, [[0, 1, 2, 3], [10, 11, 12, 13]]);
      t.deepEqual(v.broadcast, [20, 0]);
      t.deepEqual(v.secondSum, [201], 'a collective after joining the job a second time');
    }
    // each join has its own keys in the agent store
    if (store) t.true(store.check(['dmd-torch/1/heartbeat/0', 'dmd-torch/1/heartbeat/1', 'dmd-torch/2/heartbeat/0', 'dmd-torch/2/heartbeat/1']));
    port = 0;
  }
});

const base = { teacher, batchSize: 2, device: 'cpu', sampleEvery: 1000, checkpointEvery: 1000, metricsEvery: 1, finalEval: 0, gan: false, distTimeout: 60 };

dtest(title('ranks hold bit-identical parameters after 10 iterations (fake:gen 5), with and without GAN head and regression pairs'), async (t) => {
  const pairs = path.join(dir, 'pairs');
  await makePairs(PairsConfigSchema.parse({ teacher, out: pairs, count: 12, steps: 2, shardSize: 6, batchSize: 6, device: 'cpu' }), () => {});
  const variants: Record<string, unknown>[] = [{ fakeUpdatesPerGen: 5 }, { fakeUpdatesPerGen: 5, pairs, regression: 'l2' }];
  if (existsSync(FASHION_MNIST_DIR)) variants.push({ fakeUpdatesPerGen: 5, gan: true, data: 'fashion-mnist:test', pairs, regression: 'l2', emaDecay: 0.9 });
  for (const v of variants) {
    const out = tempDir();
    const procs = await world([worker, 'train', out, JSON.stringify({ ...base, ...v, out: path.join(out, 'run') }), '10']);
    for (const p of procs) t.is(p.code, 0, p.out);
    const [a, b] = [readRank(out, 0), readRank(out, 1)];
    t.deepEqual(a.digest, b.digest, JSON.stringify(v));
    t.is(a.step, 10);
  }
});

dtest(title('2 processes x batch B equal 1 process x batch 2B (the test mode that shares the noise stream)'), async (t) => {
  const cfg = { ...base, fakeUpdatesPerGen: 2, distSameNoise: true, warmupSteps: 0 };
  const one = tempDir();
  const two = tempDir();
  const [single] = await world([worker, 'train', one, JSON.stringify({ ...cfg, batchSize: 4, out: path.join(one, 'run') }), '4'], 1);
  t.is(single!.code, 0, single!.out);
  const procs = await world([worker, 'train', two, JSON.stringify({ ...cfg, batchSize: 2, out: path.join(two, 'run') }), '4']);
  for (const p of procs) t.is(p.code, 0, p.out);
  const a = readRank(one, 0).gSample as number[][];
  const b = readRank(two, 0).gSample as number[][];
  let worst = 0;
  a.forEach((row, i) => row.forEach((x, j) => { worst = Math.max(worst, Math.abs(x - b[i]![j]!)); }));
  t.log(`max |difference| of generator parameters after 4 iterations: ${worst.toExponential(2)}`);
  t.true(worst < 1e-6, `max difference ${worst}`);
});

dtest(title('dmd pairs at world size 2 is byte-identical to world size 1; dmd eval gives the same figures'), async (t) => {
  const one = path.join(dir, 'pairs-1');
  await makePairs(PairsConfigSchema.parse({ teacher, out: one, count: 10, steps: 2, shardSize: 3, batchSize: 3, device: 'cpu' }), () => {});
  const two = path.join(dir, 'pairs-2');
  const procs = await world(['src/cli/dmd.ts', 'pairs', '--teacher', teacher, '--out', two, '--count', '10', '--steps', '2', '--shard-size', '3', '--batch-size', '3', '--device', 'cpu']);
  for (const p of procs) t.is(p.code, 0, p.out);
  for (const f of readdirSync(one).filter((f) => f.endsWith('.safetensors'))) t.true(readFileSync(path.join(one, f)).equals(readFileSync(path.join(two, f))), f);
  t.deepEqual(JSON.parse(readFileSync(path.join(two, 'pairs.json'), 'utf8')).shards, JSON.parse(readFileSync(path.join(one, 'pairs.json'), 'utf8')).shards);
  if (!existsSync(FASHION_MNIST_DIR)) return;
  const m1 = path.join(dir, 'eval-1.json');
  const m2 = path.join(dir, 'eval-2.json');
  const common = { teacher, steps: 2, num: 30, batchSize: 7, ref: 'fashion-mnist:test', refNum: 200, device: 'cpu' };
  await evaluate(EvalConfigSchema.parse({ ...common, out: m1 }), () => {});
  const ev = await world(['src/cli/dmd.ts', 'eval', '--teacher', teacher, '--steps', '2', '--num', '30', '--batch-size', '7', '--ref', 'fashion-mnist:test', '--ref-num', '200', '--device', 'cpu', '--out', m2]);
  for (const p of ev) t.is(p.code, 0, p.out);
  const [r1, r2] = [JSON.parse(readFileSync(m1, 'utf8')), JSON.parse(readFileSync(m2, 'utf8'))] as Record<string, unknown>[];
  for (const k of ['FD-fmnist', 'FD-fmnist_noise_floor', 'precision', 'recall', 'classifier_accuracy_on_samples', 'class_fractions']) t.deepEqual(r2![k], r1![k], k);
});

dtest(title('a killed rank is named by the survivor within --dist-timeout; the run then resumes to completion, bit-exactly at world size 2'), async (t) => {
  const out = path.join(dir, 'kill');
  const args = ['src/cli/dmd-train.ts', '--teacher', teacher, '--out', out, '--steps', '400', '--batch-size', '2', '--device', 'cpu', '--final-eval', '0',
    '--checkpoint-every', '5', '--sample-every', '1000', '--dist-timeout', '15'];
  const port = await freePort();
  const r0 = launch(args, 0, 2, port);
  const r1 = launch(args, 1, 2, port);
  // wait for a checkpoint, then kill rank 1 outright
  while (!existsSync(path.join(out, 'checkpoints')) || !readdirSync(path.join(out, 'checkpoints')).some((f) => f.endsWith('.safetensors'))) await new Promise((r) => setTimeout(r, 200));
  const killedAt = performance.now();
  r1.child.kill('SIGKILL');
  const survivor = await r0.done;
  const waited = (performance.now() - killedAt) / 1000;
  t.not(survivor.code, 0);
  t.regex(survivor.out, /error: .*rank 0 of 2: .* failed .*rank 1 (\(pid \d+\) is gone|stopped responding|stopped)/);
  t.true(waited < 15 + 10, `the survivor took ${waited.toFixed(1)} s`);
  t.false(readdirSync(path.join(out, 'checkpoints')).some((f) => f.includes('.tmp-')));
  // resume at world size 2 to completion (a shorter run)
  const resumed = await world([...args.map((a) => (a === '400' ? '20' : a)), '--resume']);
  for (const p of resumed) t.is(p.code, 0, p.out);
  t.true(existsSync(path.join(out, 'generator.safetensors')));

  // bit-exact: 12 iterations straight = 6 + resume + 6, both at world size 2
  const straight = path.join(dir, 'straight');
  const split = path.join(dir, 'split');
  const common = ['src/cli/dmd-train.ts', '--teacher', teacher, '--batch-size', '2', '--device', 'cpu', '--final-eval', '0', '--checkpoint-every', '6', '--sample-every', '1000', '--metrics-every', '1', '--fake-updates-per-gen', '2'];
  for (const p of await world([...common, '--out', straight, '--steps', '12'])) t.is(p.code, 0, p.out);
  for (const p of await world([...common, '--out', split, '--steps', '6'])) t.is(p.code, 0, p.out);
  for (const p of await world([...common, '--out', split, '--steps', '12', '--resume'])) t.is(p.code, 0, p.out);
  const last = (d: string) => JSON.parse(readFileSync(path.join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').at(-1)!) as Record<string, number>;
  t.is(last(split).loss_fake, last(straight).loss_fake);
  t.true(readFileSync(path.join(split, 'generator.safetensors')).subarray(-4096).equals(readFileSync(path.join(straight, 'generator.safetensors')).subarray(-4096)));
});

dtest(title('dmd teacher trains data-parallel; a DMD run with --pairs auto at 2 processes, resumed with another number of processes, continues with a warning'), async (t) => {
  if (existsSync(FASHION_MNIST_DIR)) {
    const out = path.join(dir, 'teacher2');
    writeFileSync(path.join(dir, 'tiny-net.yaml'), 'network:\n  model_channels: 8\n  num_blocks: 1\n  attn_resolutions: []\n');
    const procs = await world(['src/cli/dmd.ts', 'teacher', '--out', out, '--data', 'fashion-mnist:test', '--kimg', '0.016', '--batch-size', '2', '--checkpoint-every', '2',
      '--sample-every', '1000', '--metrics-every', '1', '--device', 'cpu', '--config', path.join(dir, 'tiny-net.yaml')]);
    for (const p of procs) t.is(p.code, 0, p.out);
    t.true(existsSync(path.join(out, 'teacher.safetensors')));
    const run = JSON.parse(readFileSync(path.join(out, 'run.json'), 'utf8')) as { info: { processes: number; global_batch: number } };
    t.deepEqual([run.info.processes, run.info.global_batch], [2, 4]);
    // 16 images = 4 steps of the global batch 4
    const lines = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; kimg: number });
    t.deepEqual(lines.at(-1)!.step, 4);
    t.is(lines.at(-1)!.kimg, 0.016);
  }
  const out = path.join(dir, 'regroup');
  // --pairs auto: the processes make the pairs together, then join the job again to train
  const cache = { XDG_CACHE_HOME: path.join(dir, 'regroup-cache') };
  const common = ['src/cli/dmd-train.ts', '--teacher', teacher, '--out', out, '--batch-size', '2', '--device', 'cpu', '--final-eval', '0', '--checkpoint-every', '4', '--sample-every', '1000', '--pairs', 'auto', '--auto-pairs', '6'];
  for (const p of await world([...common, '--steps', '4'], 2, cache)) t.is(p.code, 0, p.out);
  t.is(readdirSync(path.join(dir, 'regroup-cache', 'dmd-torch', 'pairs')).length, 1);
  const [one] = await world([...common, '--steps', '8', '--resume'], 1, cache);
  t.is(one!.code, 0, one!.out);
  t.regex(one!.out, /warning: the checkpoint was written by 2 process\(es\), this run has 1: it continues, but not bit-exactly/);
});
