// The ablation experiment's --quick mode: every method of scripts/experiments/fmnist-ablation.ts runs
// a few iterations and is evaluated, and results.md / samples.png are written (a test that the
// script works; the quality figures come from the full run in experiments/fmnist-ablation/).
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FASHION_MNIST_DIR } from '../../src/data/sources.js';
import { decodePNG } from '../../src/data/png.js';
import { tempDir } from '../helpers/tmp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test(`the ablation script runs every method in --quick mode${existsSync(FASHION_MNIST_DIR) ? '' : ' [skipped: no Fashion-MNIST; apt-get install dataset-fashion-mnist]'}`, (t) => {
  if (!existsSync(FASHION_MNIST_DIR)) return t.pass();
  const out = path.join(tempDir(), 'ablation');
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/experiments/fmnist-ablation.ts', '--quick', '--out', out], { cwd: root, encoding: 'utf8', env: { ...process.env, CI: '1' } });
  t.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
  const md = readFileSync(path.join(out, 'results.md'), 'utf8');
  const rows = md.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| method') && !l.startsWith('| ---'));
  t.is(rows.length, 11, md);
  for (const label of ['teacher, Heun', 'regression only', 'fake:gen 1', 'fake:gen 5', 'DMD: DM + regression (l2)', 'DMD2: fake:gen 5 + GAN', 'DMD: DM + regression (pseudo-huber)', 'EMA generator'])
    t.true(rows.some((row) => row.includes(label)), label);
  const header = md.split('\n').find((l) => l.startsWith('| method'))!.split('|').map((c) => c.trim());
  const fdColumn = header.indexOf('FD-fmnist');
  t.true(fdColumn > 0, header.join('|'));
  for (const row of rows) t.regex(row.split('|')[fdColumn]!, /^ \d+\.\d{3} $/, `FD of ${row}`);
  const png = decodePNG(readFileSync(path.join(out, 'samples.png')));
  t.deepEqual([png.width, png.height], [320, 32 * 11]);
});
