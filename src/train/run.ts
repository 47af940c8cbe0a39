// The one training-run skeleton behind `dmd teacher`, `dmd-train` and `dmd classifier`: the run
// directory (run.json, metrics.jsonl, sample grids, checkpoints/), resuming (refusing checkpoints of
// other settings, skipping unreadable ones with a warning, refusing NaN weights), the step loop with
// progress, metrics, evaluations, samples and checkpoints every N steps, NaN/Inf stops that keep the
// last good checkpoint, and SIGINT/SIGTERM writing a checkpoint before exiting.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { tidy, dispose } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { foreach } from '../tensor/foreach.js';
import { ensureDir, writeFileAtomic } from '../util/fs.js';
import { CheckpointStore, nonFiniteEntries, type CheckpointData } from './checkpoints.js';
import { MetricsLog } from './metrics.js';
import { Progress } from './progress.js';
import type { TrainState } from './state.js';
import type { RunSettings } from './settings.js';
import { writeReport } from '../report/report.js';
import { tensor } from '../tensor/create.js';
import type { Distributed } from '../distributed/context.js';
import { NonFiniteLossError, RunError } from './errors.js';

export type RunKind = 'teacher' | 'dmd' | 'classifier';
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

/** Differences between two identities, as "key (checkpoint: a, now: b)". */
function identityDiff(then: Record<string, unknown>, now: Record<string, unknown>): string[] {
  const keys = [...new Set([...Object.keys(then), ...Object.keys(now)])].sort();
  return keys
    .filter((k) => JSON.stringify(then[k]) !== JSON.stringify(now[k]))
    .map((k) => `${k} (checkpoint: ${JSON.stringify(then[k]) ?? 'unset'}, now: ${JSON.stringify(now[k]) ?? 'unset'})`);
}

function readRunRecord(file: string): RunRecord | null {
  if (!existsSync(file)) return null;
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as RunRecord;
    return r.format === 'dmd-torch/run' && Array.isArray(r.segments) ? r : null;
  } catch {
    return null;
  }
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
    const diff = identityDiff(m.identity ?? {}, def.identity);
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
export async function runTraining(s: RunSettings, def: RunDefinition, runLog: (m: string) => void = console.log, o: { progress?: boolean } = {}): Promise<RunResult> {
  const dist = def.dist?.enabled ? def.dist : null;
  const main = !dist || dist.isMain;
  // in a multi-process run rank 0 speaks and writes; the others compute and wait
  const log = main ? runLog : () => {};
  const out = ensureDir(s.out, '--out');
  const store = new CheckpointStore(path.join(out, 'checkpoints'), s.keepCheckpoints, 'checkpoint', main);
  if (store.removed.length) log(`removed ${store.removed.length} temporary file(s) of an interrupted checkpoint write in ${store.dir}`);
  const t0 = performance.now();
  let elapsedBefore = 0;
  def.state.value('elapsed', () => elapsedBefore + (performance.now() - t0) / 1000, (v: number) => { elapsedBefore = v; });

  const ck = chooseCheckpoint(store, s, def, log);
  let resumedFrom: string | null = null;
  if (ck) {
    const savedWorld = Number(ck.meta.values.worldSize ?? 1);
    try {
      def.state.restore(ck, dist?.rank ?? 0);
    } finally {
      dispose(ck.tensors);
    }
    resumedFrom = ck.path;
    log(`resumed from ${ck.path} at step ${def.position()}`);
    if (savedWorld !== (dist?.size ?? 1))
      log(`warning: the checkpoint was written by ${savedWorld} process(es), this run has ${dist?.size ?? 1}: it continues, but not bit-exactly (the random streams of the ranks differ)`);
  }

  def.start?.();

  const runFile = path.join(out, 'run.json');
  const record: RunRecord = (resumedFrom ? readRunRecord(runFile) : null) ?? { format: 'dmd-torch/run', kind: def.kind, config: def.config, info: {}, total: def.total, segments: [] };
  record.config = def.config;
  record.info = { ...(def.info ?? {}) };
  record.total = def.total;
  const segment: RunRecord['segments'][number] = { startStep: def.position(), startedAt: new Date().toISOString(), resumedFrom };
  record.segments.push(segment);
  const saveRecord = () => { if (main) writeFileAtomic(runFile, `${JSON.stringify(record, null, 1)}\n`); };
  saveRecord();

  const metrics = new MetricsLog(path.join(out, 'metrics.jsonl'));
  const progress = new Progress({ total: def.total, start: def.position(), label: def.label });
  const start = def.position();
  let lastGood: string | null = resumedFrom;
  let last: Metrics = {};
  const pending = new Map<string, { sum: number; n: number }>();

  const verifyWeights = () => {
    const params = def.state.modules().flatMap((m) => m.parameters());
    if (!noGrad(() => foreach.allFinite(params)))
      throw new NonFiniteLossError(`the networks hold NaN/Inf weights at step ${def.position()}; not saving this state (last good checkpoint: ${lastGood ?? 'none'})`);
  };
  const checkpoint = () => {
    verifyWeights();
    lastGood = tidy(() => {
      const snap = def.state.snapshot(dist ?? undefined);
      const meta: CheckpointMeta = { format: 'dmd-torch/checkpoint', kind: def.kind, step: def.position(), identity: def.identity, config: def.config, values: snap.values };
      const file = path.join(store.dir, `checkpoint-${pad(def.position())}.safetensors`);
      return main ? store.save(def.position(), snap.tensors, meta) : file;
    });
    dist?.barrier();
  };
  // report.html is refreshed with every sample grid and at the end; a failure there never stops training
  const refreshReport = () => {
    if (!main) return;
    try {
      writeReport(out);
    } catch (e) {
      log(`warning: could not write ${path.join(out, 'report.html')} (${e instanceof Error ? e.message : String(e)})`);
    }
  };
  const sample = (name: string) => {
    if (!def.sample || !main) return;
    def.sample(path.join(out, name));
    refreshReport();
  };
  const finish = (status: string, message?: string) => {
    segment.endStep = def.position();
    segment.endedAt = new Date().toISOString();
    segment.status = status;
    if (message) segment.message = message;
    saveRecord();
    refreshReport();
  };

  let interrupted = false;
  const onSig = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
  };
  process.on('SIGINT', onSig);
  process.on('SIGTERM', onSig);
  // every rank must stop at the same step: a multi-process run agrees on the signal first
  const stopNow = () => {
    if (!dist) return interrupted;
    const flag = tensor([interrupted ? 1 : 0]);
    try {
      dist.sum(flag);
      return flag.item() > 0;
    } finally {
      flag.dispose();
    }
  };
  try {
    while (def.position() < def.total) {
      await new Promise<void>((r) => setImmediate(r));
      dist?.heartbeat();
      if (stopNow()) {
        checkpoint();
        progress.break();
        log(`interrupted: checkpoint written at step ${def.position()} (${lastGood}); continue with --resume`);
        finish('interrupted');
        return { status: 'interrupted', steps: def.position(), seconds: (performance.now() - t0) / 1000, resumedFrom, last };
      }
      const m = def.step();
      const step = def.position();
      for (const k of def.finite ?? Object.keys(m)) {
        const v = m[k];
        if (v !== undefined && !Number.isFinite(v)) {
          const msg =
            `${k} became ${v} at step ${step}; stopping without saving this state (last good checkpoint: ${lastGood ?? 'none'}). ` +
            'Lower the learning rate, enable gradient clipping, or resume from the last checkpoint.';
          if (main) metrics.write({ step, event: 'stopped', reason: 'non-finite', metric: k, message: msg });
          throw new NonFiniteLossError(msg);
        }
      }
      for (const [k, v] of Object.entries(m)) {
        const a = pending.get(k);
        if (a) { a.sum += v; a.n += 1; } else pending.set(k, { sum: v, n: 1 });
      }
      const evaluated = main && def.evaluate && (step % def.evaluate.every === 0 || step === def.total) ? def.evaluate.run() : {};
      if (main && o.progress !== false) progress.update(step, { ...(def.shown ? def.shown(m) : m), ...evaluated });
      if (step % s.metricsEvery === 0 || step === def.total || Object.keys(evaluated).length) {
        // each metric is the mean over the steps since the last record that produced it (a generator
        // loss of every 5th step is still recorded when records fall on other steps)
        const means: Metrics = {};
        for (const [k, a] of pending) means[k] = a.sum / a.n;
        pending.clear();
        const secs = (performance.now() - t0) / 1000;
        last = { step, ...means, ...(def.extra?.() ?? {}), ...evaluated, seconds: elapsedBefore + secs, steps_per_second: (step - start) / secs };
        if (main) metrics.write(last);
      }
      if (s.sampleEvery && step % s.sampleEvery === 0) sample(`samples-${pad(step)}.png`);
      if (step % s.checkpointEvery === 0) checkpoint();
    }
    if (def.position() > start || !existsSync(path.join(store.dir, `checkpoint-${pad(def.position())}.safetensors`))) checkpoint();
    sample('samples-final.png');
    finish('done');
    return { status: 'done', steps: def.position(), seconds: (performance.now() - t0) / 1000, resumedFrom, last };
  } catch (e) {
    progress.break();
    dist?.markStopped(e instanceof Error ? e.message : String(e));
    finish(e instanceof NonFiniteLossError ? 'non-finite' : 'failed', e instanceof Error ? e.message : String(e));
    if ((e as { code?: string }).code === 'ERR_TORCH_OUT_OF_MEMORY')
      throw new RunError(`out of memory at step ${def.position() + 1} (${(e as Error).message.split('\n')[0]}); lower --batch-size, or use --dtype bfloat16 on CUDA. The last checkpoint is ${lastGood ?? 'none'}`);
    throw e;
  } finally {
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
  }
}
