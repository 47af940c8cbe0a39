// Temporary directories for tests, removed at process exit (kept with DMD_KEEP_TEST_DIRS=1, e.g. to
// look at the screenshots of the browser tests).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const dirs: string[] = [];
process.on('exit', () => {
  if (process.env.DMD_KEEP_TEST_DIRS === '1') return;
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

export function tempDir(prefix = 'dmd-test-'): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
