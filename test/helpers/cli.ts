// Runs one of the package's commands (src/cli/<bin>.ts under tsx) as a child process, as a user would,
// and collects its output; onLine sees each output line with a function that sends SIGINT.
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface CliResult { code: number | null; out: string; ms: number }

export function runCli(bin: 'dmd' | 'dmd-train', args: string[], o: { env?: Record<string, string>; onLine?: (line: string, interrupt: () => void) => void } = {}): Promise<CliResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, `src/cli/${bin}.ts`), ...args], { cwd: ROOT, env: { ...process.env, CI: '1', ...o.env } });
    let out = '';
    const onData = (d: Buffer) => {
      const s = d.toString();
      out += s;
      if (o.onLine) for (const l of s.split('\n')) if (l) o.onLine(l, () => p.kill('SIGINT'));
    };
    p.stdout.on('data', onData);
    p.stderr.on('data', onData);
    p.on('close', (code) => resolve({ code, out, ms: performance.now() - t0 }));
  });
}
