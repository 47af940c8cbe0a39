// Run directories under faults: a full disk and a read-only file system are named with the path and what
// was being written; damaged run.json / metrics.jsonl are warned about with the file and the line;
// images of another channel count are converted with a notice or refused; API misuse is named. The
// file-system cases mount a small tmpfs or a read-only bind mount (root); without root they skip.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, appendFileSync } from 'node:fs';
import path from 'node:path';
import { DMDTrainer, writeReport, ImageLoader, openDataset, DatasetError } from '../../src/index.js';
import { tempDir } from '../helpers/tmp.js';
import { tinyTeacher, TINY_TEACHER } from '../helpers/teacher.js';
import { pngClassFolder } from '../helpers/data.js';

const dir = tempDir();
const teacher = tinyTeacher(dir);
const quiet = () => {};
const base = { teacher, batchSize: 2, device: 'cpu', finalEval: 0, sampleEvery: 1000, metricsEvery: 1 };

/** Mounts (tmpfs of `size`, or a read-only bind of `dir`) at a new directory; null with the reason when not allowed here. */
function mount(kind: 'tmpfs' | 'ro', size = '256k'): { at: string; undo: () => void } | string {
  const at = path.join(dir, `${kind}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(at);
  const args = kind === 'tmpfs' ? ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', at] : ['--bind', '-o', 'ro', dir, at];
  const r = spawnSync('mount', args, { encoding: 'utf8' });
  if (r.status !== 0) return `cannot mount here (${(r.stderr || r.error?.message || '').trim() || 'not root'})`;
  if (kind === 'ro') spawnSync('mount', ['-o', 'remount,ro,bind', at]);
  return { at, undo: () => spawnSync('umount', ['-l', at]) };
}

test.serial('a full disk stops the run naming the checkpoint being written and the cause', async (t) => {
  const m = mount('tmpfs', '200k');
  if (typeof m === 'string') return t.pass(`skipped: ${m}`);
  try {
    const out = path.join(m.at, 'run');
    const tr = new DMDTrainer({ ...base, out, steps: 4, checkpointEvery: 2 }, quiet);
    const e = await t.throwsAsync(tr.train(quiet, { progress: false }));
    t.regex(e!.message, new RegExp(`writing (checkpoint|run record|image) ${out.replace(/[/.]/g, '\\$&')}/.*: no space left on device`));
    t.is(e!.message.split('\n').length, 1);
    tr.dispose();
  } finally {
    m.undo();
  }
});

test.serial('a read-only run directory is named with what could not be written', async (t) => {
  const out = path.join(dir, 'ro-run');
  mkdirSync(out);
  const m = mount('ro');
  if (typeof m === 'string') return t.pass(`skipped: ${m}`);
  try {
    const tr = new DMDTrainer({ ...base, out: path.join(m.at, 'ro-run'), steps: 2, checkpointEvery: 2 }, quiet);
    const e = await t.throwsAsync(tr.train(quiet, { progress: false }));
    t.regex(e!.message, /checkpoint directory .*ro-run\/checkpoints: cannot create .*ro-run\/checkpoints \(read-only file system\)/);
    tr.dispose();
  } finally {
    m.undo();
  }
});

test.serial('resuming with an unreadable run.json says it rewrote it; dmd report names damaged metrics lines, and skips a cut last line quietly', async (t) => {
  const out = path.join(dir, 'damaged');
  const a = new DMDTrainer({ ...base, out, steps: 2, checkpointEvery: 2 }, quiet);
  await a.train(quiet, { progress: false });
  a.dispose();
  writeFileSync(path.join(out, 'run.json'), '{"format": "dmd-torch/run", "segm');
  const lines: string[] = [];
  const b = new DMDTrainer({ ...base, out, steps: 3, checkpointEvery: 2, resume: true }, quiet);
  await b.train((s) => lines.push(s), { progress: false, hooks: {} });
  b.dispose();
  t.true(lines.some((l) => /warning: .*damaged\/run\.json is not valid JSON .*; it is rewritten from this run's settings/.test(l)), lines.join('\n'));
  t.is((JSON.parse(readFileSync(path.join(out, 'run.json'), 'utf8')) as { format: string }).format, 'dmd-torch/run');
  const metrics = path.join(out, 'metrics.jsonl');
  const good = readFileSync(metrics, 'utf8').trim().split('\n');
  writeFileSync(metrics, [good[0], 'not json at all', ...good.slice(1), '{"step": 9, "loss_fa'].join('\n'));
  const warnings: string[] = [];
  writeReport(out, (s) => warnings.push(s));
  t.deepEqual(warnings, [`${metrics}: line 2 is not valid JSON; skipped`]);
  appendFileSync(metrics, '\n{"step": 10}\n');
  const w2: string[] = [];
  writeReport(out, (s) => w2.push(s));
  t.deepEqual(w2, [`${metrics}: line 2 is not valid JSON; skipped`, `${metrics}: line ${good.length + 2} is not valid JSON; skipped`]);
});

test('gray images for a 3-channel network are repeated with a notice; RGB images for a 1-channel one are refused, saying why', (t) => {
  const notices: string[] = [];
  const gray = openDataset(pngClassFolder(dir));
  const l = new ImageLoader(gray, { batchSize: 4, channels: 3, resolution: 32, notice: (s) => notices.push(s) });
  t.deepEqual(l.next().images.shape, [4, 3, 32, 32]);
  t.is(notices.length, 1);
  t.regex(notices[0]!, /notice: .* holds gray images; each is repeated to the network's 3 channels/);
  const rgb = { ...gray, channels: 3, name: 'rgb-set' };
  t.throws(() => new ImageLoader(rgb, { batchSize: 4, channels: 1 }), { instanceOf: DatasetError, message: /rgb-set: RGB images for a network of 1-channel \(gray\) images; no conversion is made/ });
});

test('train() on a trainer that already ran says so', async (t) => {
  const tr = new DMDTrainer({ ...base, out: path.join(dir, 'twice'), steps: 1, checkpointEvery: 1, teacher: tinyTeacher(dir, 't2.safetensors', TINY_TEACHER) }, quiet);
  await tr.train(quiet, { progress: false, hooks: {} });
  await t.throwsAsync(tr.train(quiet, { progress: false }), { message: /this trainer has already run train\(\); make a new DMDTrainer/ });
  tr.dispose();
});
