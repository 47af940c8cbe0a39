// The launcher behind `--nproc-per-node N` (and `--nnodes M --node-rank K --master-addr A`): starts this
// machine's N workers of the same command with torchrun's environment (global ranks K*N..K*N+N-1 of
// M*N; one node: 127.0.0.1 and a free port), gives each cores/N intra-op threads, streams the output of
// its first worker (and the others' errors), and when a worker fails stops the others and exits non-zero
// naming the rank.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import type { NodePlan } from './launch.js';

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const LAUNCH_FLAGS = ['--nproc-per-node', '--nnodes', '--node-rank', '--master-addr', '--master-port'];

/** The command line without the launcher's flags (`--nproc-per-node N`, `--nnodes=M`, ...): the workers get the environment instead. */
export function withoutLaunchFlags(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (LAUNCH_FLAGS.includes(args[i]!)) i++;
    else if (!LAUNCH_FLAGS.some((f) => args[i]!.startsWith(`${f}=`))) out.push(args[i]!);
  }
  return out;
}

export interface SpawnResult {
  code: number;
  /** the rank whose failure ended the job, if any */
  failedRank: number | null;
  /** the signal that stopped the launcher (and, forwarded, its workers), if one did */
  signal: NodeJS.Signals | null;
  message: string;
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 };

/** Runs this machine's workers of this same program and waits for them. */
export async function spawnWorkers(plan: NodePlan, o: { args?: string[]; log?: (s: string) => void } = {}): Promise<SpawnResult> {
  const log = o.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  // a signal during start-up (or later) stops the launch; it is forwarded to the workers started so far
  let stoppedBy: NodeJS.Signals | null = null;
  const children: ChildProcess[] = [];
  const forward = (sig: NodeJS.Signals) => {
    stoppedBy ??= sig;
    for (const c of children) if (c.exitCode === null) c.kill(sig);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  try {
    return await launchWorkers(plan, o, log, children, () => stoppedBy);
  } finally {
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
  }
}

async function launchWorkers(plan: NodePlan, o: { args?: string[] }, log: (s: string) => void, children: ChildProcess[], stopped: () => NodeJS.Signals | null): Promise<SpawnResult> {
  const { nproc, nnodes, nodeRank } = plan;
  const cores = availableParallelism();
  if (nproc > cores)
    log(`warning: --nproc-per-node ${nproc} on ${cores} core(s): 1 thread per worker and the cores oversubscribed (each process is slowed several times), and every worker loads its own networks (${nproc} times one process's memory)`);
  const port = plan.masterPort ?? (await freePort());
  const stoppedEarly = stopped();
  if (stoppedEarly) return { code: 128 + (SIGNAL_NUMBERS[stoppedEarly] ?? 15), failedRank: null, signal: stoppedEarly, message: `stopped by ${stoppedEarly} before the workers started` };
  const threads = Math.max(1, Math.floor(cores / nproc));
  const args = withoutLaunchFlags(o.args ?? process.argv.slice(2));
  const world = nnodes * nproc;
  const first = nodeRank * nproc;
  const where = nnodes === 1 ? '' : ` (ranks ${first}-${first + nproc - 1} of ${world}, node ${nodeRank} of ${nnodes})`;
  log(`launching ${nproc} workers${where}, rendezvous ${plan.masterAddr}:${port}, ${threads} thread(s) each; rank ${first}'s output follows`);
  const tails: string[][] = [];
  let failed: { rank: number; local: number; code: number } | null = null;
  const exits = Array.from({ length: nproc }, (_, local) => {
    const rank = first + local;
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...args], {
      env: {
        ...process.env, RANK: String(rank), WORLD_SIZE: String(world), LOCAL_RANK: String(local), LOCAL_WORLD_SIZE: String(nproc), GROUP_RANK: String(nodeRank),
        MASTER_ADDR: plan.masterAddr, MASTER_PORT: String(port), DMD_NUM_THREADS: process.env.DMD_NUM_THREADS ?? String(threads), TORCHELASTIC_USE_AGENT_STORE: 'False',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    tails[local] = [];
    const keep = (d: Buffer) => {
      const t = tails[local]!;
      t.push(...d.toString().split('\n').filter(Boolean));
      if (t.length > 20) t.splice(0, t.length - 20);
    };
    if (local === 0) {
      child.stdout!.pipe(process.stdout);
      child.stderr!.pipe(process.stderr);
    } else {
      child.stdout!.on('data', keep);
      child.stderr!.on('data', keep);
    }
    child.stderr!.on('data', local === 0 ? keep : () => {});
    return new Promise<void>((resolve) => {
      child.on('exit', (code, signal) => {
        const c = code ?? (signal ? 128 + (SIGNAL_NUMBERS[signal] ?? 0) : 1);
        if (c !== 0 && !failed && !stopped()) {
          failed = { rank, local, code: c };
          // stop the others: SIGTERM first (they checkpoint if they can), SIGKILL after a grace period
          for (const other of children) if (other !== child && other.exitCode === null) other.kill('SIGTERM');
          setTimeout(() => { for (const other of children) if (other.exitCode === null) other.kill('SIGKILL'); }, 10_000).unref();
        }
        resolve();
      });
    });
  });
  await Promise.all(exits);
  const sig = stopped();
  if (sig) return { code: 128 + (SIGNAL_NUMBERS[sig] ?? 15), failedRank: null, signal: sig, message: `stopped by ${sig}; the signal was passed to the ${nproc} workers` };
  if (!failed) return { code: 0, failedRank: null, signal: null, message: `all ${nproc} workers finished` };
  const f = failed as { rank: number; local: number; code: number };
  const last = tails[f.local]!.filter((l) => /error/i.test(l)).at(-1) ?? tails[f.local]!.at(-1) ?? '';
  return { code: f.code, failedRank: f.rank, signal: null, message: `worker rank ${f.rank} exited with code ${f.code}${last ? ` (${last.replace(/^error: /, '')})` : ''}; the other workers were stopped` };
}
