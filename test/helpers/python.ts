// The Python that has PyTorch (Debian's /usr/bin/python3 with python3-torch), for cross-checks.
// Tests that need it skip with a reason when it is absent.
import { spawnSync } from 'node:child_process';

let cached: string | null | undefined;

export function torchPython(): string | null {
  if (cached !== undefined) return cached;
  const candidates = [process.env.DMD_TORCH_PYTHON, '/usr/bin/python3', 'python3'].filter((x): x is string => !!x);
  cached = null;
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' });
    if (r.status === 0) {
      cached = py;
      break;
    }
  }
  return cached;
}

/** Runs Python code with the torch interpreter; returns stdout (throws with stderr on failure). */
export function runPython(code: string, args: string[] = []): string {
  const py = torchPython();
  if (!py) throw new Error('no python3 with torch');
  const r = spawnSync(py, ['-c', code, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}
