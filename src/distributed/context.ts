// A process's place in a data-parallel job: the launch (launch.ts), the store and the process group,
// and what training does with them — broadcast networks from rank 0, average gradients, sum metrics,
// gather states, barriers. A single process (world size 1) needs none of it and every call is a no-op.
// When a collective fails, the store tells which rank stopped (it said so, or its heartbeat went quiet)
// and the error names it.
import { hostname, networkInterfaces } from 'node:os';
import type { Tensor } from '../tensor/tensor.js';
import { type Device, isCuda, resolveDevice } from '../tensor/device.js';
import { cuda } from '../tensor/cuda.js';
import { buildInfo } from '../tensor/runtime.js';
import { tensor } from '../tensor/create.js';
import type { Stateful } from '../nn/module.js';
import { launchFromEnv, type LaunchInfo, LaunchError } from './launch.js';
import { Store, ProcessGroup, type Backend } from './group.js';
import { PACKAGE_VERSION } from '../util/version.js';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class DistributedError extends Error {
  readonly code = 'ERR_DISTRIBUTED';
}

export interface DistributedOptions {
  /** 'auto': NCCL for CUDA devices when built, else Gloo */
  backend?: 'auto' | Backend;
  /** seconds a collective may wait (0 = 600 on CUDA, 120 on CPU) */
  timeoutSeconds?: number;
  device: Device;
  launch?: LaunchInfo;
}

/**
 * Every rank says it is here, with its view of the job, before the process group is made: a rank
 * launched with another WORLD_SIZE or a rank number taken twice is refused on every rank, and ranks
 * that never arrive within the timeout are named (with the store's address and the flag to change).
 */
function rendezvous(store: Store, launch: LaunchInfo, timeoutMs: number): void {
  const me = { worldSize: launch.worldSize, host: hostname(), pid: process.pid, source: launch.source };
  const where = `store ${launch.masterAddr}:${launch.masterPort}`;
  if (store.add(`join-count/${launch.rank}`, 1) > 1)
    throw new DistributedError(`rank ${launch.rank} of ${launch.worldSize}: another process of this job already claimed rank ${launch.rank} (${where}); give every process its own RANK`);
  store.set(`join/${launch.rank}`, JSON.stringify(me));
  const read = (r: number) => JSON.parse(store.get(`join/${r}`).toString('utf8')) as typeof me;
  const secs = Math.round(timeoutMs / 1000);
  const missing = () => Array.from({ length: launch.worldSize }, (_, r) => r).filter((r) => !store.check([`join/${r}`]));
  const waitFor = (keys: string[]) => {
    try {
      store.wait(keys, timeoutMs);
      return true;
    } catch {
      return false;
    }
  };
  if (!waitFor(['join/0'])) throw new DistributedError(`rank ${launch.rank} of ${launch.worldSize}: rank 0 never joined within ${secs} s (${where}); start it, or raise --dist-timeout`);
  const zero = read(0);
  if (zero.worldSize !== launch.worldSize)
    throw new DistributedError(`the ranks disagree on WORLD_SIZE: rank 0 has ${zero.worldSize}, rank ${launch.rank} has ${launch.worldSize}; launch every rank with the same WORLD_SIZE`);
  if (!waitFor(Array.from({ length: launch.worldSize }, (_, r) => `join/${r}`))) {
    const gone = missing();
    throw new DistributedError(`rank ${launch.rank} of ${launch.worldSize}: ${gone.length === 1 ? `rank ${gone[0]}` : `ranks ${gone.join(', ')}`} of ${launch.worldSize} never joined within ${secs} s (${where}); start every rank, or raise --dist-timeout`);
  }
  for (let r = 0; r < launch.worldSize; r++) {
    const o = read(r);
    if (o.worldSize !== launch.worldSize)
      throw new DistributedError(`the ranks disagree on WORLD_SIZE: rank ${r} has ${o.worldSize}, rank ${launch.rank} has ${launch.worldSize}; launch every rank with the same WORLD_SIZE`);
  }
}

/** A value per rank, grouped: "rank 0 has 4; ranks 1, 2 have 8". */
/** GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME naming an interface this machine lacks: said before the rendezvous, with the ones it has. */
function checkSocketInterfaces(backend: Backend, who: string): void {
  const variable = backend === 'gloo' ? 'GLOO_SOCKET_IFNAME' : 'NCCL_SOCKET_IFNAME';
  const value = process.env[variable];
  if (!value) return;
  const have = Object.keys(networkInterfaces());
  // NCCL's syntax allows a prefix match (eth), ^ to exclude and = for an exact name; only exact Gloo names and plain NCCL prefixes are checked
  const names = value.split(',').filter((n) => n && !/^[\^=]/.test(n));
  const missing = names.filter((n) => (backend === 'gloo' ? !have.includes(n) : !have.some((h) => h.startsWith(n))));
  if (missing.length)
    throw new DistributedError(`${who}: ${variable}=${value} names ${missing.map((m) => `'${m}'`).join(', ')}, which this machine (${hostname()}) does not have; its interfaces: ${have.join(', ')}`);
}

/**
 * The rendezvous stores this process has opened, by address and role, kept for the process's life. A
 * process that joins a job a second time (dmd-train's `--pairs auto` step, then its training) goes
 * through the same store under a fresh key prefix: rank 0 cannot bind its port again while the first
 * store serves it, and torchrun's agent store still holds the first join's keys.
 */
const rootStores = new Map<string, Store>();
/** how many times this process has joined a job: every rank of a job joins as often, in the same order */
let joins = 0;

function rootStore(launch: LaunchInfo, timeoutMs: number): Store {
  const isServer = !launch.agentStore && launch.rank === 0;
  const key = `${launch.masterAddr}:${launch.masterPort}:${isServer ? 'server' : 'client'}`;
  let root = rootStores.get(key);
  if (!root) {
    root = Store.tcp({ host: launch.masterAddr, port: launch.masterPort, isServer, worldSize: launch.worldSize, timeoutMs });
    rootStores.set(key, root);
  }
  return root;
}

function byValue(values: string[]): string {
  const groups = new Map<string, number[]>();
  values.forEach((v, r) => groups.set(v, [...(groups.get(v) ?? []), r]));
  return [...groups].map(([v, rs]) => `${rs.length === 1 ? `rank ${rs[0]} has` : `ranks ${rs.join(', ')} have`} ${v}`).join('; ');
}

export class Distributed {
  private heartbeatAt = 0;
  /** time spent averaging gradients (seconds) and how often, for benchmarks */
  readonly stats = { gradientSyncSeconds: 0, gradientSyncs: 0 };

  private constructor(
    readonly launch: LaunchInfo,
    private readonly store: Store | null,
    private readonly group: ProcessGroup | null,
    readonly timeoutMs: number,
  ) {}

  get rank(): number { return this.launch.rank; }
  get size(): number { return this.launch.worldSize; }
  get localRank(): number { return this.launch.localRank; }
  get isMain(): boolean { return this.launch.rank === 0; }
  get enabled(): boolean { return this.group !== null; }
  get backend(): string { return this.group?.backend ?? 'none'; }
  /** the underlying process group (null for one process) */
  get processGroup(): ProcessGroup | null { return this.group; }

  /**
   * The device and the job of a command: its --device setting resolved (in a multi-process job each
   * process takes the GPU of its LOCAL_RANK for 'auto' and 'cuda'), and the process group joined.
   */
  static forCommand(cfg: { device: string; distBackend?: 'auto' | Backend; distTimeout?: number }): { dist: Distributed; device: Device } {
    const launch = launchFromEnv();
    const perRank = launch.worldSize > 1 && (cfg.device === 'auto' || cfg.device === 'cuda') && cuda.isAvailable();
    const device = resolveDevice(perRank ? `cuda:${launch.localRank}` : cfg.device);
    return { dist: Distributed.init({ backend: cfg.distBackend, timeoutSeconds: cfg.distTimeout, device, launch }), device };
  }

  /** One process, no collectives. */
  static single(): Distributed {
    return new Distributed(launchFromEnv({}), null, null, 0);
  }

  /** Joins the job the environment describes (torchrun, SLURM, or none). */
  static init(o: DistributedOptions): Distributed {
    const launch = o.launch ?? launchFromEnv();
    // DMD_DIST_FORCE_GROUP=1 makes even one process join a group (to measure the cost of the collectives)
    if (launch.worldSize === 1 && process.env.DMD_DIST_FORCE_GROUP !== '1') return new Distributed(launch, null, null, 0);
    const timeoutMs = 1000 * (o.timeoutSeconds || (isCuda(o.device) ? 600 : 120));
    const built = buildInfo().distributed;
    const backend: Backend = o.backend && o.backend !== 'auto' ? o.backend : isCuda(o.device) && built.includes('nccl') ? 'nccl' : 'gloo';
    if (!built.includes(backend))
      throw new DistributedError(
        `--dist-backend ${backend}: this build of dmd-torch has ${built.length ? `only ${built.join(', ')}` : 'no process-group backend'}; ` +
          (backend === 'gloo' ? 'install the Gloo headers (Debian: apt-get install libgloo-dev) and rebuild with npm run build:native' : 'rebuild against a CUDA libtorch with NCCL (NCCL_HOME) to use nccl'),
      );
    if (backend === 'nccl' && !isCuda(o.device)) throw new DistributedError('--dist-backend nccl needs --device cuda');
    if (backend === 'gloo' && isCuda(o.device)) throw new DistributedError('the Gloo backend here reduces CPU tensors only; use --dist-backend nccl (or auto) with CUDA');
    const who = `rank ${launch.rank} of ${launch.worldSize}`;
    // a store address that does not resolve fails at once, naming it
    try {
      Store.resolve(launch.masterAddr);
    } catch (e) {
      throw new DistributedError(`${who}: MASTER_ADDR ${e instanceof Error ? e.message : String(e)}; set it to rank 0's host name or address`);
    }
    checkSocketInterfaces(backend, who);
    let store: Store;
    try {
      // torchrun's agent hosts a store already (every rank a client); otherwise rank 0 hosts one
      store = rootStore(launch, timeoutMs).prefix(`dmd-torch/${++joins}`);
    } catch (e) {
      throw new DistributedError(`${who}: ${e instanceof Error ? e.message : String(e)}`);
    }
    rendezvous(store, launch, timeoutMs);
    const group = ProcessGroup.create(store, launch.rank, launch.worldSize, { backend, timeoutMs, device: launch.localRank });
    const d = new Distributed(launch, store, group, timeoutMs);
    store.set(`proc/${launch.rank}`, `${hostname()}:${process.pid}`);
    d.heartbeat(true);
    return d;
  }

  /**
   * Before the first collective that depends on them: every rank publishes the settings that must be
   * the same in all processes of the job (settings, teacher hash, parameter count, versions, ...), and
   * any difference ends every rank with one line naming the field, the values and the ranks holding
   * them. `what` names the step (e.g. "dmd-train settings"), `fix` what to do about a difference.
   */
  agree(what: string, fingerprint: Record<string, unknown>, fix = 'every process must run with the same settings and files'): void {
    if (!this.store) return;
    const store = this.store;
    const mine = { ...fingerprint, dmd_torch: PACKAGE_VERSION, libtorch: buildInfo().torchVersion, world_size: this.size };
    const key = (r: number) => `agree/${what}/${r}`;
    store.set(key(this.rank), JSON.stringify(mine));
    try {
      store.wait(Array.from({ length: this.size }, (_, r) => key(r)), this.timeoutMs);
    } catch {
      const gone = Array.from({ length: this.size }, (_, r) => r).filter((r) => !store.check([key(r)]));
      throw new DistributedError(`rank ${this.rank} of ${this.size}: rank(s) ${gone.join(', ')} did not reach the ${what} check within ${Math.round(this.timeoutMs / 1000)} s${this.diagnoseSuffix()}`);
    }
    const all = Array.from({ length: this.size }, (_, r) => JSON.parse(store.get(key(r)).toString('utf8')) as Record<string, unknown>);
    const fields = [...new Set(all.flatMap((f) => Object.keys(f)))].sort();
    for (const f of fields) {
      const values = all.map((x) => JSON.stringify(x[f]) ?? 'unset');
      if (new Set(values).size > 1)
        throw new DistributedError(`the processes of this job disagree on ${f} (${what}): ${byValue(values)}; ${fix}`);
    }
  }

  private diagnoseSuffix(): string {
    const why = this.diagnose();
    return why ? ` — ${why}` : '';
  }

  /** Records that this rank is alive (at most once a second). */
  heartbeat(force = false): void {
    if (!this.store) return;
    const now = Date.now();
    if (!force && now - this.heartbeatAt < 1000) return;
    this.heartbeatAt = now;
    try {
      this.store.set(`heartbeat/${this.rank}`, String(now));
    } catch {
      /* the store host is gone: the next collective reports it */
    }
  }

  /** Tells the other ranks why this one stops (read when their next collective fails). */
  markStopped(reason: string): void {
    try {
      this.store?.set(`stopped/${this.rank}`, reason.slice(0, 2000));
    } catch {
      /* nobody left to tell */
    }
  }

  /** Which ranks stopped, died or went quiet, for the message of a failed collective. */
  private diagnose(): string {
    if (!this.store) return '';
    const store = this.store;
    const look = (): string[] => {
      const found: string[] = [];
      for (let r = 0; r < this.size; r++) {
        if (r === this.rank) continue;
        if (store.check([`stopped/${r}`])) {
          found.push(`rank ${r} stopped: ${store.get(`stopped/${r}`).toString('utf8').split('\n')[0]}`);
          continue;
        }
        // a rank on this host whose process is gone (killed, crashed) is named at once
        const [host, pid] = store.check([`proc/${r}`]) ? store.get(`proc/${r}`).toString().split(':') : [];
        if (host === hostname() && pid && !processAlive(Number(pid))) {
          found.push(`rank ${r} (pid ${pid}) is gone`);
          continue;
        }
        const beat = store.check([`heartbeat/${r}`]) ? Number(store.get(`heartbeat/${r}`).toString()) : 0;
        const quiet = (Date.now() - beat) / 1000;
        if (!beat || quiet > 5) found.push(`rank ${r} stopped responding (${beat ? `no heartbeat for ${quiet.toFixed(0)} s` : 'never started'})`);
      }
      return found;
    };
    try {
      // a rank that stops cleanly says so a moment after its peers' collectives fail: look for up to 3 s
      for (let i = 0; i < 15; i++) {
        const found = look();
        if (found.length) return found.join('; ');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
      }
      return '';
    } catch {
      return this.rank === 0 ? '' : 'rank 0, which hosts the store, is gone';
    }
  }

  private guarded<T>(fn: (g: ProcessGroup) => T): T {
    if (!this.group) throw new DistributedError('not a multi-process job');
    try {
      return fn(this.group);
    } catch (e) {
      const why = this.diagnose();
      throw new DistributedError(`${e instanceof Error ? e.message : String(e)}${why ? ` — ${why}` : ''}`);
    }
  }

  barrier(): void {
    if (this.group) this.guarded((g) => g.barrier());
  }

  /**
   * Parameters and buffers of the modules become rank 0's. The ranks first compare what they hold
   * (tensor count and sizes): networks of different shapes are refused naming the ranks, never handed to
   * the backend (Gloo aborts the process on a size mismatch).
   */
  broadcastModules(modules: readonly (Stateful | null)[]): void {
    if (!this.group) return;
    const tensors = modules.flatMap((m) => (m ? [...m.stateDict().values()] : []));
    try {
      const shape = tensor([tensors.length, tensors.reduce((a, t) => a + t.numel, 0)], { dtype: 'float64' });
      const seen = this.allgather(shape).map((t) => { const v = t.toArray(); t.dispose(); return `${v[0]} tensors of ${v[1]} values`; });
      shape.dispose();
      if (new Set(seen).size > 1) throw new DistributedError(`the processes of this job hold networks of different shapes: ${byValue(seen)}; every process must load the same teacher and settings`);
      this.guarded((g) => g.broadcastTensors(tensors));
    } finally {
      for (const t of tensors) t.dispose();
    }
  }

  /** Gradients of these parameters become their mean over the ranks. */
  averageGradients(params: readonly Tensor[]): void {
    if (!this.group) return;
    const t0 = performance.now();
    this.guarded((g) => g.averageGradients(params));
    this.stats.gradientSyncSeconds += (performance.now() - t0) / 1000;
    this.stats.gradientSyncs += 1;
  }

  /** In-place sum over the ranks. */
  sum(t: Tensor): void {
    if (this.group) this.guarded((g) => g.allreduce([t]));
  }

  /** Every rank's tensor, in rank order ([t] for one process). */
  allgather(t: Tensor): Tensor[] {
    return this.group ? this.guarded((g) => g.allgather(t)) : [t.clone()];
  }

  destroy(): void {
    this.group?.destroy();
  }
}

export { LaunchError };
