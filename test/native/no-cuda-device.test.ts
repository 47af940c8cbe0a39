// Without a usable CUDA device (a CPU build, or a CUDA build on a machine that sees no GPU) the CUDA
// paths must fail in one line saying why, never crash: dmd-train, dmd sample and dmd serve with
// --device cuda; --device auto runs on the CPU (with a warning on a CUDA build); buildInfo() says which
// build this is. scripts/test-cuda-build.sh runs this file through an addon built against Debian's
// CUDA libtorch, where the "no device visible" branch is the one taken. Skipped where CUDA works.
import test from 'ava';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { buildInfo, cuda, resolveDevice, zeros } from '../../src/index.js';
import { tempDir } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { tinyTeacher } from '../helpers/teacher.js';

const why = cuda.unavailableReason();
const t_ = why === null ? test.skip : test;
const built = buildInfo().cuda;
const dir = tempDir();
const teacher = tinyTeacher(dir);

t_('buildInfo() and cuda.unavailableReason() name the build and why CUDA is not usable', (t) => {
  const info = buildInfo();
  if (built) {
    t.is(info.summary, 'CUDA build, no device visible');
    t.regex(why!, /^CUDA build, no device visible \(CUDA_VISIBLE_DEVICES( is unset|='.*')\)$/);
  } else {
    t.is(info.summary, 'CPU build');
    t.is(why, 'this addon was built against a CPU-only libtorch');
  }
  t.false(cuda.isAvailable());
  t.is(cuda.deviceCount(), 0);
  // the API says the same in one error, also for tensors and memory statistics
  t.throws(() => resolveDevice('cuda'), { message: `--device cuda: ${why}; use --device cpu (or --device auto)` });
  t.throws(() => resolveDevice('cuda:1'), { message: /^--device cuda:1: / });
  t.throws(() => cuda.memoryStats(), { message: built ? /no CUDA device is visible to this CUDA build/ : /this build of dmd-torch is CPU-only/ });
  t.throws(() => zeros([2], { device: 'cuda' }));
  const warnings: string[] = [];
  t.is(resolveDevice('auto', (m) => warnings.push(m)), 'cpu');
  t.deepEqual(warnings, built ? [`--device auto: ${why}; running on the CPU`] : []);
});

t_('CUDA_VISIBLE_DEVICES is quoted in the reason of a CUDA build', async (t) => {
  const r = await runCli('dmd-train', ['--teacher', teacher, '--device', 'cuda', '--out', path.join(dir, 'vis')], { env: { CUDA_VISIBLE_DEVICES: '' } });
  t.is(r.code, 1, r.out);
  t.regex(r.out, built ? /CUDA_VISIBLE_DEVICES=''/ : /CPU-only libtorch/);
});

const commands: [string, 'dmd' | 'dmd-train', string[]][] = [
  ['dmd-train', 'dmd-train', ['--teacher', teacher, '--device', 'cuda', '--steps', '1', '--out', path.join(dir, 'train')]],
  ['dmd sample', 'dmd', ['sample', '--teacher', teacher, '--steps', '2', '--count', '1', '--device', 'cuda', '--out', path.join(dir, 's.png')]],
  ['dmd serve', 'dmd', ['serve', '--generator', teacher, '--device', 'cuda', '--port', '0']],
  ['dmd-train cuda:1', 'dmd-train', ['--teacher', teacher, '--device', 'cuda:1', '--steps', '1', '--out', path.join(dir, 'train1')]],
];
for (const [name, bin, args] of commands)
  t_(`${name} --device ${args[args.indexOf('--device') + 1]}: one line naming why, exit 1, nothing written`, async (t) => {
    const r = await runCli(bin, args, { env: { CUDA_VISIBLE_DEVICES: '0' } });
    t.is(r.code, 1, r.out);
    const lines = r.out.trim().split('\n');
    const dev = args[args.indexOf('--device') + 1]!;
    t.is(lines.length, 1, r.out);
    t.regex(lines[0]!, new RegExp(`^error: --device ${dev}: ${built ? "CUDA build, no device visible \\(CUDA_VISIBLE_DEVICES='0'\\)" : 'this addon was built against a CPU-only libtorch'}; use --device cpu`));
    const out = args[args.indexOf('--out') + 1];
    if (out && args.includes('--out')) t.false(existsSync(out), 'an output was made');
  });

t_('dmd sample --device auto runs on the CPU', async (t) => {
  const out = path.join(dir, 'auto.png');
  const r = await runCli('dmd', ['sample', '--teacher', teacher, '--steps', '2', '--count', '1', '--device', 'auto', '--out', out]);
  t.is(r.code, 0, r.out);
  t.true(existsSync(out));
  if (built) t.regex(r.out, /warning: --device auto: CUDA build, no device visible .*; running on the CPU/);
  else t.notRegex(r.out, /warning: --device auto/);
});
