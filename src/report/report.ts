// report.html of a run directory: one self-contained page (no network: data, sample grids and the
// drawing script are inlined) with the run's settings, device and throughput, one chart per metric
// family (log-scale toggle, resumed segments and NaN stops marked), FD curves of --eval-every, the
// sample grids over training behind a slider, and the final evaluation. Written atomically, so a
// browser can keep the page open and reload while the run refreshes it at every sample step.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { atomicWrite, FileError } from '../util/fs.js';
import { reportClient, type ClientChart, type ClientData } from './client.js';
import type { RunHooks } from '../train/run.js';

type Record_ = Record<string, unknown>;

interface Family {
  id: string;
  title: string;
  match: (key: string) => boolean;
}

const FAMILIES: Family[] = [
  { id: 'dm', title: 'Distribution matching loss', match: (k) => k === 'loss_dm' },
  { id: 'fake', title: 'Fake-score loss', match: (k) => k === 'loss_fake' },
  { id: 'regression', title: 'Regression loss', match: (k) => k === 'loss_reg' },
  { id: 'gan', title: 'GAN (losses, head outputs)', match: (k) => k.startsWith('loss_gan') || k === 'd_real' || k === 'd_fake' },
  { id: 'loss', title: 'Training loss', match: (k) => k === 'loss' },
  { id: 'grad', title: 'Gradient norms', match: (k) => k.startsWith('gnorm') || k === 'dm_grad_norm' },
  { id: 'lr', title: 'Learning rate (scale)', match: (k) => k === 'lr_scale' || k === 'lr' },
  { id: 'fd', title: 'Fréchet distance (--eval-every)', match: (k) => k.startsWith('FD-') || k === 'FID' },
  { id: 'accuracy', title: 'Accuracy on intended classes (--eval-every)', match: (k) => k === 'eval_accuracy' },
  { id: 'throughput', title: 'Steps per second', match: (k) => k === 'steps_per_second' },
];
const NOT_CHARTED = new Set(['step', 'seconds', 'gen_update', 'kimg', 'epoch', 'time']);

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function readJSON(file: string, warn: (s: string) => void): Record_ | null {
  if (!existsSync(file)) return null;
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record_;
    warn(`${file} does not hold a JSON object; the report leaves out the run's settings`);
  } catch (e) {
    warn(`${file} is not valid JSON (${e instanceof Error ? e.message : String(e)}); the report leaves out the run's settings`);
  }
  return null;
}

/**
 * metrics.jsonl records. A damaged line is skipped with a warning naming the file and the line; a cut
 * last line (a run interrupted while writing it) is skipped quietly.
 */
function readMetrics(file: string, warn: (s: string) => void): Record_[] {
  if (!existsSync(file)) return [];
  const out: Record_[] = [];
  const lines = readFileSync(file, 'utf8').split('\n');
  const last = lines.reduce((a, l, i) => (l.trim() ? i : a), -1);
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    try {
      const v = JSON.parse(line) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) out.push(v as Record_);
      else warn(`${file}: line ${i + 1} is not a JSON object; skipped`);
    } catch {
      if (i !== last) warn(`${file}: line ${i + 1} is not valid JSON; skipped`);
    }
  });
  return out;
}

function table(rows: [string, unknown][]): string {
  return `<table>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(typeof v === 'object' ? JSON.stringify(v) : v)}</td></tr>`).join('')}</table>`;
}

export interface ReportSummary {
  file: string;
  charts: { id: string; series: Record<string, number> }[];
  grids: number;
}

/** Writes RUN_DIR/report.html and returns what it holds; damaged run files are warned about (`warn`). */
export function writeReport(runDir: string, warn: (s: string) => void = (s) => console.error(`warning: ${s}`)): ReportSummary {
  const run = readJSON(path.join(runDir, 'run.json'), warn);
  const metrics = readMetrics(path.join(runDir, 'metrics.jsonl'), warn);
  if (!run && !metrics.length) throw new FileError(`${runDir}: no run.json or metrics.jsonl; give the --out directory of a dmd-train, dmd teacher or dmd classifier run`);
  const kind = String(run?.kind ?? 'run');
  const config = (run?.config ?? {}) as Record_;
  const info = (run?.info ?? {}) as Record_;
  const segments = (run?.segments ?? []) as { startStep: number; startedAt: string; resumedFrom: string | null; endStep?: number; status?: string; message?: string }[];
  const total = Number(run?.total ?? Math.max(0, ...metrics.map((m) => Number(m.step) || 0)));

  // charts: one per metric family with data; keys no family claims go to one of their own
  const values = metrics.filter((m) => m.event === undefined && typeof m.step === 'number');
  const keys = [...new Set(values.flatMap((m) => Object.keys(m).filter((k) => typeof m[k] === 'number' && !NOT_CHARTED.has(k))))];
  const charts: ClientChart[] = [];
  const claimed = new Set<string>();
  for (const f of FAMILIES) {
    const ks = keys.filter((k) => f.match(k));
    ks.forEach((k) => claimed.add(k));
    if (ks.length) charts.push({ id: f.id, title: f.title, series: ks.map((k) => ({ name: k, points: values.filter((m) => typeof m[k] === 'number').map((m) => [m.step as number, m[k] as number]) })) });
  }
  for (const k of keys.filter((k) => !claimed.has(k))) charts.push({ id: `other-${k}`, title: k, series: [{ name: k, points: values.filter((m) => typeof m[k] === 'number').map((m) => [m.step as number, m[k] as number]) }] });

  const stops = [
    ...metrics.filter((m) => m.event === 'stopped').map((m) => ({ step: Number(m.step), message: String(m.message ?? m.reason ?? 'stopped') })),
    ...segments.filter((s) => s.status === 'non-finite' && !metrics.some((m) => m.event === 'stopped' && m.step === s.endStep)).map((s) => ({ step: s.endStep ?? 0, message: s.message ?? 'stopped on NaN/Inf' })),
  ];
  const resumes = segments.slice(1).map((s) => s.startStep);

  // sample grids in step order, then the final one
  const files = existsSync(runDir) ? readdirSync(runDir).filter((f) => /^samples-(\d+|final)\.png$/.test(f)) : [];
  files.sort((a, b) => (a.includes('final') ? 1 : b.includes('final') ? -1 : a.localeCompare(b)));
  const grids = files.map((f) => ({ label: f.includes('final') ? 'final' : `step ${Number(/\d+/.exec(f)![0])}`, src: `data:image/png;base64,${readFileSync(path.join(runDir, f)).toString('base64')}` }));

  const finalEval = readJSON(path.join(runDir, 'final-eval.json'), warn);
  const last = values.at(-1);
  const lastSegment = segments.at(-1);
  const status = lastSegment?.status ?? (lastSegment ? 'running' : 'unknown');
  const summary: [string, unknown][] = [
    ['kind', kind],
    ['status', status + (lastSegment?.message ? ` — ${lastSegment.message}` : '')],
    ['progress', `${last?.step ?? 0} / ${total} steps`],
    ...Object.entries(info).map(([k, v]) => [k, v] as [string, unknown]),
    ['steps per second (last record)', typeof last?.steps_per_second === 'number' ? (last.steps_per_second as number).toFixed(3) : '–'],
    ['wall time (s)', typeof last?.seconds === 'number' ? (last.seconds as number).toFixed(0) : '–'],
  ];
  if (typeof info.global_batch === 'number' && typeof last?.steps_per_second === 'number')
    summary.push(['generated images per second', ((info.global_batch as number) * (last.steps_per_second as number)).toFixed(1)]);

  const data: ClientData = { charts, resumes, stops, grids, total };
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(kind)} run — ${esc(path.basename(path.resolve(runDir)))}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f6f6f6;font-weight:600}
#charts{display:flex;flex-wrap:wrap;gap:16px}.chart{margin:0;border:1px solid #ddd;padding:6px}.chart figcaption{display:flex;justify-content:space-between;gap:12px;font-weight:600}
.legend span{margin-right:12px;font-size:12px}.stop{color:#b00;font-weight:600}#grid-image{image-rendering:pixelated;width:640px;max-width:100%;border:1px solid #ddd}
details{margin:8px 0}
</style></head><body>
<h1>${esc(kind)} run: ${esc(path.resolve(runDir))}</h1>
<p>Generated ${esc(new Date().toISOString())} by <code>dmd report</code>; reload to see new steps while the run refreshes this page.</p>
${stops.map((s) => `<p class="stop">Stopped at step ${s.step}: ${esc(s.message)}</p>`).join('')}
<h2>Run</h2>${table(summary)}
<h2>Segments</h2>${table(segments.map((s, i) => [`segment ${i + 1}`, `steps ${s.startStep}–${s.endStep ?? '…'}, started ${s.startedAt}${s.resumedFrom ? `, resumed from ${s.resumedFrom}` : ''}${s.status ? `, ${s.status}` : ''}`]))}
<details><summary>All settings</summary>${table(Object.entries(config))}</details>
<h2>Metrics</h2><div id="charts"></div>
<h2>Samples</h2>${grids.length ? `<div><input type="range" id="grid-slider" min="0" max="${grids.length - 1}" value="${grids.length - 1}" step="1"> <span id="grid-caption"></span></div><img id="grid-image" alt="sample grid">` : '<p>No sample grids yet.</p>'}
${finalEval ? `<h2>Final evaluation</h2>${table(Object.entries(finalEval).filter(([, v]) => typeof v !== 'object'))}` : ''}
<script>
const __name = (f) => f; // tolerate the name-keeping helper of TypeScript runners
(${reportClient.toString()})(${JSON.stringify(data).replace(/</g, '\\u003c')});
</script>
</body></html>
`;
  const file = path.join(runDir, 'report.html');
  atomicWrite(file, html, 'report');
  return { file, charts: charts.map((c) => ({ id: c.id, series: Object.fromEntries(c.series.map((s) => [s.name, s.points.length])) })), grids: grids.length };
}

/** Run hooks that refresh report.html after every sample grid and at the end of the run. */
export function reportHooks(runDir: string): RunHooks {
  const refresh = () => {
    try {
      writeReport(runDir);
    } catch (e) {
      throw new Error(`could not write ${path.join(runDir, 'report.html')} (${e instanceof Error ? e.message : String(e)})`);
    }
  };
  return { onSample: refresh, onFinish: refresh };
}
