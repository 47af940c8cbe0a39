// The one training-run skeleton behind `dmd teacher`, `dmd-train` and `dmd classifier`: the run
// directory (run.json, metrics.jsonl, sample grids, checkpoints/), resuming (refusing checkpoints of
// other settings, skipping unreadable ones with a warning, refusing NaN weights), the step loop with
// progress, metrics, evaluations, samples and checkpoints every N steps, NaN/Inf stops that keep the
// last good checkpoint, and SIGINT/SIGTERM writing a checkpoint before exiting. What else should
// happen around the run (refreshing report.html, ...) comes in as hooks: this layer knows nothing of it.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { tidy, dispose } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { foreach } from '../tensor/foreach.js';
import { ensureDir, atomicWrite } from '../util/fs.js';
import { CheckpointStore, checkpointFileName, nonFiniteEntries, type CheckpointData } from './checkpoints.js';
import { MetricsLog } from './metrics.js';
import { Progress } from './progress.js';
import type { TrainState } from './state.js';
import type { RunSettings } from './settings.js';
import { tensor } from '../tensor/create.js';
import type { Distributed } from '../distributed/context.js';
import { NonFiniteLossError, RunError } from './errors.js';

export type RunKind = 'teacher' | 'dmd' | 'classifier' | 'autoencoder';
export type Metrics = Record<string, number>;

export interface RunDefinition {
  kind: RunKind;
  /** progress label */
  label: string;
  /** total number of steps */
  total: number;
  /** everything a checkpoint holds; the run adds its own step and wall time */
  state: TrainState;
  /** completed steps (restored from the state) */
  position(): number;
  /** settings that must equal the checkpoint's to resume (teacher hash, batch size, recipe, ...) */
  identity: Record<string, unknown>;
  /**
   * the settings' defaults: a setting that a checkpoint's identity lacks (one written before the setting
   * existed) matches its default, so that such checkpoints still resume when it is left at that
   */
  identityDefaults?: Record<string, unknown>;
  /** recorded in run.json and the checkpoints */
  config: unknown;
  /** facts for run.json and the report: device, teacher, parameter counts, global batch, ... */
  info?: Record<string, unknown>;
  /** one training step; returns its scalar metrics */
  step(): Metrics;
  /** metrics that must stay finite (default: all) */
  finite?: readonly string[];
  /** the metrics shown on the progress line (default: all) */
  shown?(m: Metrics): Metrics;
  /** added to every metrics record (e.g. kimg, learning rate) */
  extra?(): Metrics;
  /** writes a sample grid */
  sample?(file: string): void;
  /** a periodic evaluation (e.g. FD of a small fixed sample set), merged into the metrics record (rank 0 only) */
  evaluate?: { every: number; run(): Metrics };
  /** a multi-process run: rank 0 writes every file, all ranks checkpoint their random states together */
  dist?: Distributed;
  /** called on every rank after a resume (or none) and before the first step, e.g. to broadcast rank 0's weights */
  start?(): void;
}

/**
 * Called by rank 0 after each sample grid and when the run ends (done, interrupted or failed), e.g. to
 * refresh report.html (report/report.ts: reportHooks). A hook that throws is warned about and never
 * stops training.
 */
export interface RunHooks {
  onSample?(file: string): void;
  onFinish?(status: RunStatus): void;
}

export type RunStatus = 'done' | 'interrupted' | 'non-finite' | 'failed';

export interface RunOptions {
  /** show the progress line (default true) */
  progress?: boolean;
  hooks?: RunHooks;
}

export interface RunResult {
  status: 'done' | 'interrupted';
  steps: number;
  /** wall seconds of this process's part of the run */
  seconds: number;
  resumedFrom: string | null;
  /** the last metrics record (with the last evaluation, if any) */
  last: Metrics;
}

interface CheckpointMeta {
  format: 'dmd-torch/checkpoint';
  kind: RunKind;
  step: number;
  identity: Record<string, unknown>;
  config: unknown;
  values: Record<string, unknown>;
}

export interface RunRecord {
  format: 'dmd-torch/run';
  kind: RunKind;
  config: unknown;
  info: Record<string, unknown>;
  total: number;
  segments: { startStep: number; startedAt: string; resumedFrom: string | null; endStep?: number; endedAt?: string; status?: string; message?: string }[];
}

const pad = (s: number) => String(s).padStart(8, '0');

/** Differences between two identities, as "key (checkpoint: a, now: b)"; a key the checkpoint lacks matches its default. */
function identityDiff(then: Record<string, unknown>, now: Record<string, unknown>, defaults: Record<string, unknown> = {}): string[] {
  const keys = [...new Set([...Object.keys(then), ...Object.keys(now)])].sort();
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  return keys
    .filter((k) => !same(then[k], now[k]) && !(!(k in then) && k in defaults && same(defaults[k], now[k])))
    .map((k) => `${k} (checkpoint: ${JSON.stringify(then[k]) ?? 'unset'}, now: ${JSON.stringify(now[k]) ?? 'unset'})`);
}

/** The run record of a resumed run, or null (with a warning when the file exists but cannot be used). */
function readRunRecord(file: string, log: (m: string) => void): RunRecord | null {
  if (!existsSync(file)) return null;
  let problem: string;
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as RunRecord;
    if (r && r.format === 'dmd-torch/run' && Array.isArray(r.segments)) return r;
    problem = 'is not a dmd-torch run record';
  } catch (e) {
    problem = `is not valid JSON (${e instanceof Error ? e.message : String(e)})`;
  }
  log(`warning: ${file} ${problem}; it is rewritten from this run's settings (the history of the earlier segments is lost, the checkpoints are not affected)`);
  return null;
}

/** The checkpoint to continue from (or null for a fresh run), checked against this run. */
function chooseCheckpoint(store: CheckpointStore, s: RunSettings, def: RunDefinition, log: (m: string) => void): CheckpointData<CheckpointMeta> | null {
  let ck: CheckpointData<CheckpointMeta> | null = null;
  if (s.resumeFrom) {
    if (!existsSync(s.resumeFrom)) throw new RunError(`--resume-from ${s.resumeFrom}: file not found`);
    ck = CheckpointStore.load<CheckpointMeta>(s.resumeFrom);
  } else {
    const all = store.list();
    if (!all.length) {
      if (s.resume) log(`--resume: no checkpoint in ${s.out} yet; starting a new run`);
      return null;
    }
    if (!s.resume)
      throw new RunError(`${s.out} already holds checkpoints (newest: ${path.basename(all.at(-1)!.file)}); pass --resume to continue, or choose another --out`);
    const problems: string[] = [];
    for (const c of [...all].reverse()) {
      try {
        ck = CheckpointStore.load<CheckpointMeta>(c.file);
        break;
      } catch (e) {
        problems.push(e instanceof Error ? e.message : String(e));
        log(`warning: ${problems.at(-1)}; trying the previous checkpoint`);
      }
    }
    if (!ck) throw new RunError(`none of the ${all.length} checkpoints in ${store.dir} is readable (${problems.join('; ')}); start a new run in another --out`);
  }
  try {
    const m = ck.meta;
    if (m.format !== 'dmd-torch/checkpoint' || m.kind !== def.kind)
      throw new RunError(`${ck.path}: is a checkpoint of a ${m.kind ?? 'different'} run, not of a ${def.kind} run`);
    if (ck.step > def.total)
      throw new RunError(`${ck.path}: the checkpoint is at step ${ck.step}, beyond the ${def.total} steps asked for; ask for at least ${ck.step} steps to continue it`);
    const diff = identityDiff(m.identity ?? {}, def.identity, def.identityDefaults);
    if (diff.length) {
      const msg = `${ck.path} was made with other settings: ${diff.join('; ')}`;
      if (!s.forceResume) throw new RunError(`${msg}. Resume with the same settings, or pass --force-resume to continue with the new ones (not bit-exact)`);
      log(`warning: ${msg}; continuing with the new settings because of --force-resume (the run is no longer bit-exact)`);
    }
    const bad = noGrad(() => nonFiniteEntries(ck!));
    if (bad.length) {
      let finite: string | null = null;
      for (const c of [...store.list()].reverse()) {
        if (c.step >= ck.step) continue;
        try {
          const older = CheckpointStore.load<CheckpointMeta>(c.file);
          const ok = noGrad(() => nonFiniteEntries(older)).length === 0;
          dispose(older.tensors);
          if (ok) {
            finite = c.file;
            break;
          }
        } catch {
          /* unreadable: look further back */
        }
      }
      throw new RunError(
        `${ck.path}: holds NaN/Inf values (${bad.slice(0, 3).join(', ')}${bad.length > 3 ? ', ...' : ''}); not resuming from it. ` +
          (finite ? `The newest finite checkpoint is ${finite}: resume from it with --resume-from ${finite}` : 'No older finite checkpoint exists; start a new run'),
      );
    }
    return ck;
  } catch (e) {
    dispose(ck.tensors);
    throw e;
  }
}

/** Runs (or continues) a training run to def.total steps. */
export async function runTraining(s: RunSettings, def: RunDefinition, runLog: (m: string) => void = console.log, o: RunOptions = {}): Promise<RunResult> {
  return new TrainingRun(s, def, runLog, o).run();
}

/** One run's state between its start-up and its end; each phase of runTraining is one method. */
class TrainingRun {
  private readonly dist: Distributed | null;
  private readonly main: boolean;
  /** in a multi-process run rank 0 speaks and writes; the others compute and wait */
  private readonly log: (m: string) => void;
  private readonly out: string;
  private readonly store: CheckpointStore;
  private readonly t0 = performance.now();
  private elapsedBefore = 0;
  private resumedFrom: string | null = null;
  private lastGood: string | null = null;
  private last: Metrics = {};
  private start = 0;
  private readonly pending = new Map<string, { sum: number; n: number }>();
  private record!: RunRecord;
  private segment!: RunRecord['segments'][number];
  private metrics!: MetricsLog;
  private progress!: Progress;
  private interrupted = false;

  constructor(private readonly s: RunSettings, private readonly def: RunDefinition, runLog: (m: string) => void, private readonly o: RunOptions) {
    this.dist = def.dist?.enabled ? def.dist : null;
    this.main = !this.dist || this.dist.isMain;
    this.log = this.main ? runLog : () => {};
    this.out = ensureDir(s.out, '--out');
    this.store = new CheckpointStore(path.join(this.out, 'checkpoints'), s.keepCheckpoints, 'checkpoint', this.main);
    if (this.store.removed.length) this.log(`removed ${this.store.removed.length} temporary file(s) of an interrupted checkpoint write in ${this.store.dir}`);
    def.state.value('elapsed', () => this.elapsedBefore + (performance.now() - this.t0) / 1000, (v: number) => { this.elapsedBefore = v; });
  }

  async run(): Promise<RunResult> {
    this.resume();
    this.def.start?.();
    this.openRecord();
    this.metrics = new MetricsLog(path.join(this.out, 'metrics.jsonl'));
    this.progress = new Progress({ total: this.def.total, start: this.def.position(), label: this.def.label });
    this.start = this.def.position();
    this.lastGood = this.resumedFrom;
    const onSig = () => {
      if (this.interrupted) process.exit(130);
      this.interrupted = true;
    };
    process.on('SIGINT', onSig);
    process.on('SIGTERM', onSig);
    try {
      return await this.loop();
    } catch (e) {
      throw this.failed(e);
    } finally {
      process.off('SIGINT', onSig);
      process.off('SIGTERM', onSig);
    }
  }

  /** Restores the checkpoint to continue from, if any. */
  private resume(): void {
    const ck = chooseCheckpoint(this.store, this.s, this.def, this.log);
    this.agreeOnStart(ck?.path ?? null);
    if (!ck) return;
    const savedWorld = Number(ck.meta.values.worldSize ?? 1);
    try {
      this.def.state.restore(ck, this.dist?.rank ?? 0);
    } finally {
      dispose(ck.tensors);
    }
    this.resumedFrom = ck.path;
    this.log(`resumed from ${ck.path} at step ${this.def.position()}`);
    const world = this.dist?.size ?? 1;
    if (savedWorld !== world)
      this.log(`warning: the checkpoint was written by ${savedWorld} process(es), this run has ${world}: it continues, but not bit-exactly (the random streams of the ranks differ)`);
  }

  /**
   * Every rank must start from the same checkpoint: in a multi-node job each node reads --out itself,
   * so a node that does not see rank 0's checkpoints (no shared file system) would start over alone.
   */
  private agreeOnStart(checkpoint: string | null): void {
    this.dist?.agree('resume point', { resume_checkpoint: checkpoint && path.basename(checkpoint) },
      "every node must see rank 0's --out (a shared file system), or copy rank 0's checkpoints into each node's --out before --resume");
  }

  /** run.json: the settings, facts and one segment per (resumed) part of the run. */
  private openRecord(): void {
    const def = this.def;
    const runFile = path.join(this.out, 'run.json');
    this.record = (this.resumedFrom ? readRunRecord(runFile, this.log) : null) ?? { format: 'dmd-torch/run', kind: def.kind, config: def.config, info: {}, total: def.total, segments: [] };
    this.record.config = def.config;
    this.record.info = { ...(def.info ?? {}) };
    this.record.total = def.total;
    this.segment = { startStep: def.position(), startedAt: new Date().toISOString(), resumedFrom: this.resumedFrom };
    this.record.segments.push(this.segment);
    this.saveRecord();
  }

  private saveRecord(): void {
    if (this.main) atomicWrite(path.join(this.out, 'run.json'), `${JSON.stringify(this.record, null, 1)}\n`, 'run record');
  }

  private async loop(): Promise<RunResult> {
    const def = this.def;
    while (def.position() < def.total) {
      await new Promise<void>((r) => setImmediate(r));
      this.dist?.heartbeat();
      if (this.stopNow()) {
        this.checkpoint();
        this.progress.break();
        this.log(`interrupted: checkpoint written at step ${def.position()} (${this.lastGood}); continue with --resume`);
        this.finish('interrupted');
        return this.result('interrupted');
      }
      const m = def.step();
      const step = def.position();
      this.checkFinite(m, step);
      for (const [k, v] of Object.entries(m)) {
        const a = this.pending.get(k);
        if (a) { a.sum += v; a.n += 1; } else this.pending.set(k, { sum: v, n: 1 });
      }
      const evaluated = this.main && def.evaluate && (step % def.evaluate.every === 0 || step === def.total) ? def.evaluate.run() : {};
      if (this.main && this.o.progress !== false) this.progress.update(step, { ...(def.shown ? def.shown(m) : m), ...evaluated });
      if (step % this.s.metricsEvery === 0 || step === def.total || Object.keys(evaluated).length) this.writeMetrics(step, evaluated);
      if (this.s.sampleEvery && step % this.s.sampleEvery === 0) this.sample(`samples-${pad(step)}.png`);
      if (step % this.s.checkpointEvery === 0) this.checkpoint();
    }
    if (def.position() > this.start || !existsSync(path.join(this.store.dir, checkpointFileName('checkpoint', def.position())))) this.checkpoint();
    this.sample('samples-final.png');
    this.finish('done');
    return this.result('done');
  }

  private result(status: RunResult['status']): RunResult {
    return { status, steps: this.def.position(), seconds: (performance.now() - this.t0) / 1000, resumedFrom: this.resumedFrom, last: this.last };
  }

  /** Every rank must stop at the same step: a multi-process run agrees on the signal first. */
  private stopNow(): boolean {
    if (!this.dist) return this.interrupted;
    const flag = tensor([this.interrupted ? 1 : 0]);
    try {
      this.dist.sum(flag);
      return flag.item() > 0;
    } finally {
      flag.dispose();
    }
  }

  private checkFinite(m: Metrics, step: number): void {
    for (const k of this.def.finite ?? Object.keys(m)) {
      const v = m[k];
      if (v !== undefined && !Number.isFinite(v)) {
        const msg =
          `${k} became ${v} at step ${step}; stopping without saving this state (last good checkpoint: ${this.lastGood ?? 'none'}). ` +
          'Lower the learning rate, enable gradient clipping, or resume from the last checkpoint.';
        if (this.main) this.metrics.write({ step, event: 'stopped', reason: 'non-finite', metric: k, message: msg });
        throw new NonFiniteLossError(msg);
      }
    }
  }

  /**
   * Each metric is the mean over the steps since the last record that produced it (a generator loss of
   * every 5th step is still recorded when records fall on other steps).
   */
  private writeMetrics(step: number, evaluated: Metrics): void {
    const means: Metrics = {};
    for (const [k, a] of this.pending) means[k] = a.sum / a.n;
    this.pending.clear();
    const secs = (performance.now() - this.t0) / 1000;
    this.last = { step, ...means, ...(this.def.extra?.() ?? {}), ...evaluated, seconds: this.elapsedBefore + secs, steps_per_second: (step - this.start) / secs };
    if (this.main) this.metrics.write(this.last);
  }

  private checkpoint(): void {
    const def = this.def;
    const params = def.state.modules().flatMap((m) => m.parameters());
    if (!noGrad(() => foreach.allFinite(params)))
      throw new NonFiniteLossError(`the networks hold NaN/Inf weights at step ${def.position()}; not saving this state (last good checkpoint: ${this.lastGood ?? 'none'})`);
    this.lastGood = tidy(() => {
      const snap = def.state.snapshot(this.dist ?? undefined);
      const meta: CheckpointMeta = { format: 'dmd-torch/checkpoint', kind: def.kind, step: def.position(), identity: def.identity, config: def.config, values: snap.values };
      return this.main ? this.store.save(def.position(), snap.tensors, meta) : path.join(this.store.dir, checkpointFileName('checkpoint', def.position()));
    });
    this.dist?.barrier();
  }

  /** Runs a hook on rank 0; a failure there is a warning and never stops training. */
  private hook(what: string, fn: (() => void) | undefined): void {
    if (!fn || !this.main) return;
    try {
      fn();
    } catch (e) {
      this.log(`warning: ${e instanceof Error ? e.message : String(e)} (${what}; training goes on)`);
    }
  }

  private sample(name: string): void {
    if (!this.def.sample || !this.main) return;
    const file = path.join(this.out, name);
    this.def.sample(file);
    const onSample = this.o.hooks?.onSample;
    this.hook('after the sample grid', onSample && (() => onSample(file)));
  }

  private finish(status: RunStatus, message?: string): void {
    Object.assign(this.segment, { endStep: this.def.position(), endedAt: new Date().toISOString(), status });
    if (message) this.segment.message = message;
    this.saveRecord();
    const onFinish = this.o.hooks?.onFinish;
    this.hook('at the end of the run', onFinish && (() => onFinish(status)));
  }

  /** Records a failed run and turns an out-of-memory error into advice. */
  private failed(e: unknown): unknown {
    this.progress.break();
    const message = e instanceof Error ? e.message : String(e);
    this.dist?.markStopped(message);
    this.finish(e instanceof NonFiniteLossError ? 'non-finite' : 'failed', message);
    if ((e as { code?: string }).code === 'ERR_TORCH_OUT_OF_MEMORY')
      return new RunError(`out of memory at step ${this.def.position() + 1} (${message.split('\n')[0]}); lower --batch-size, or use --dtype bfloat16 on CUDA. The last checkpoint is ${this.lastGood ?? 'none'}`);
    return e;
  }
}
