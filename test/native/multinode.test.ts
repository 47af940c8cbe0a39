// Multi-node data parallelism as two hosts: two network namespaces joined by a veth pair, each running
// the built-in launcher with two workers (--nproc-per-node 2 --nnodes 2 --node-rank K --master-addr A,
// GLOO_SOCKET_IFNAME = its veth), world size 4. The run equals the single-host world-4 run bit for bit,
// also when the second node starts 20 s late; a node that dies mid-run is named by the survivors within
// --dist-timeout, a node that cannot see rank 0's checkpoints is refused at --resume, and --resume on
// both nodes continues. Skipped with the reason without root, iproute2 or the Gloo backend.
import test from 'ava';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { buildInfo } from '../../src/index.js';
import { tempDir } from '../helpers/tmp.js';
import { tinyTeacher } from '../helpers/teacher.js';
import { runCli, ROOT } from '../helpers/cli.js';
import { netnsUnavailable, makeHostPair, type Host, type HostPair } from '../helpers/netns.js';

const why = !buildInfo().distributed.includes('gloo') ? 'this build has no Gloo backend' : netnsUnavailable();
const mtest = why ? test.skip : test.serial;
const title = (t: string) => (why ? `${t} [skipped: ${why}]` : t);
const dir = tempDir();
const teacher = tinyTeacher(dir);
const PORT = '29500';

let pair: HostPair | null = null;
test.before(() => { if (!why) pair = makeHostPair(7); });
test.after.always(() => pair?.remove());

interface Node { child: ChildProcess; done: Promise<{ code: number | null; out: string }> }

function node(host: Host, rank: number, args: string[]): Node {
  const [first] = pair!.hosts;
  const child = pair!.exec(host, process.execPath, ['--import', 'tsx', 'src/cli/dmd-train.ts', ...args,
    '--nproc-per-node', '2', '--nnodes', '2', '--node-rank', String(rank), '--master-addr', first.addr, '--master-port', PORT], {
    cwd: ROOT, env: { ...process.env, CI: '1', GLOO_SOCKET_IFNAME: host.ifname, DMD_NUM_THREADS: '1' },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { child, done: new Promise((resolve) => child.on('close', (code) => resolve({ code, out }))) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The tensor bytes of a safetensors file (after its JSON header, whose metadata names paths). */
const tensorBytes = (f: string) => {
  const b = readFileSync(f);
  return b.subarray(8 + Number(b.readBigUInt64LE(0)));
};
const lastMetrics = (d: string) => JSON.parse(readFileSync(path.join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').at(-1)!) as Record<string, number>;

const train = (out: string, steps: number) => ['--teacher', teacher, '--out', out, '--steps', String(steps), '--batch-size', '2', '--device', 'cpu', '--final-eval', '0',
  '--checkpoint-every', '3', '--sample-every', '1000', '--metrics-every', '1', '--fake-updates-per-gen', '2'];

mtest(title('two nodes x two workers, the second node 20 s late, equal the single-host world-4 run bit for bit'), async (t) => {
  const single = path.join(dir, 'single');
  const ref = await runCli('dmd-train', [...train(single, 6), '--nproc-per-node', '4'], { env: { DMD_NUM_THREADS: '1' } });
  t.is(ref.code, 0, ref.out);
  const multi = path.join(dir, 'multi');
  const [a, b] = pair!.hosts;
  const n0 = node(a, 0, train(multi, 6));
  await sleep(20_000);
  const n1 = node(b, 1, train(multi, 6));
  const [r0, r1] = await Promise.all([n0.done, n1.done]);
  t.is(r0.code, 0, r0.out);
  t.is(r1.code, 0, r1.out);
  t.regex(r0.out, /launching 2 workers \(ranks 0-1 of 4, node 0 of 2\), rendezvous 10\.231\.7\.1:29500/);
  t.regex(r1.out, /launching 2 workers \(ranks 2-3 of 4, node 1 of 2\)/);
  const run = JSON.parse(readFileSync(path.join(multi, 'run.json'), 'utf8')) as { info: { processes: number; global_batch: number } };
  t.deepEqual([run.info.processes, run.info.global_batch], [4, 8]);
  t.deepEqual(withoutTimes(lastMetrics(multi)), withoutTimes(lastMetrics(single)));
  t.true(tensorBytes(path.join(multi, 'generator.safetensors')).equals(tensorBytes(path.join(single, 'generator.safetensors'))), 'the generators differ');
});

function withoutTimes(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).filter(([k]) => !['time', 'seconds', 'steps_per_second'].includes(k)));
}

mtest(title('a node that dies mid-run is named by the survivors within --dist-timeout; a node without the checkpoints is refused; --resume on both continues'), async (t) => {
  const out = path.join(dir, 'dies');
  const args = [...train(out, 400), '--dist-timeout', '15'];
  const [a, b] = pair!.hosts;
  const n0 = node(a, 0, args);
  const n1 = node(b, 1, args);
  const ckdir = path.join(out, 'checkpoints');
  while (!existsSync(ckdir) || !readdirSync(ckdir).some((f) => f.endsWith('.safetensors'))) await sleep(200);
  const killedAt = performance.now();
  pair!.killAll(b);
  const survivor = await n0.done;
  const waited = (performance.now() - killedAt) / 1000;
  await n1.done;
  t.log(`node 0 stopped ${waited.toFixed(1)} s after node 1 died: ${survivor.out.split('\n').filter((l) => l.startsWith('error: ')).at(-1)}`);
  t.not(survivor.code, 0);
  t.regex(survivor.out, /error: worker rank [01] exited with code \d+ \(.*rank [23]\b.*\)/);
  t.true(waited < 15 + 15, `the survivors took ${waited.toFixed(1)} s`);
  t.false(readdirSync(ckdir).some((f) => f.includes('.tmp-')));

  // the second node restarted with an --out that lacks rank 0's checkpoints: every rank refuses, naming why
  const empty = path.join(dir, 'node1-local');
  const m0 = node(a, 0, [...args.map((x) => (x === '400' ? '20' : x)), '--resume']);
  const m1 = node(b, 1, [...train(empty, 20), '--dist-timeout', '15', '--resume']);
  const [e0, e1] = await Promise.all([m0.done, m1.done]);
  for (const e of [e0, e1]) {
    t.not(e.code, 0);
    t.regex(e.out, /disagree on resume_checkpoint \(resume point\): .*ranks 0, 1 have "[^"]+\.safetensors"; ranks 2, 3 have null; every node must see rank 0's --out/);
  }

  // both nodes with the run's --out: it continues to the end
  const k0 = node(a, 0, [...args.map((x) => (x === '400' ? '20' : x)), '--resume']);
  const k1 = node(b, 1, [...args.map((x) => (x === '400' ? '20' : x)), '--resume']);
  const [f0, f1] = await Promise.all([k0.done, k1.done]);
  t.is(f0.code, 0, f0.out);
  t.is(f1.code, 0, f1.out);
  t.regex(f0.out, /resumed from .*checkpoints/);
  t.true(existsSync(path.join(out, 'generator.safetensors')));
  t.is(lastMetrics(out).step, 20);
});
