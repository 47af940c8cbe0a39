// Memory statistics as the very first CUDA call of a process (its own test file, so its own process):
// PyTorch initialises CUDA lazily, and the allocator's statistics used to throw "did you call init?"
// until some CUDA tensor existed.
import test from 'ava';
import { cuda, buildInfo, zeros } from '../../src/index.js';

const available = cuda.isAvailable();
const reason = !buildInfo().cuda ? 'this addon was built against a CPU-only libtorch' : 'no CUDA device is visible';

(available ? test : test.skip)(`memory statistics, peak reset and emptyCache work before any CUDA tensor exists${available ? '' : ` [skipped: ${reason}]`}`, (t) => {
  const s = cuda.memoryStats();
  t.is(s.allocated, 0);
  t.true(s.reserved >= 0);
  cuda.resetPeakMemoryStats();
  cuda.emptyCache();
  const x = zeros([1024, 1024], { device: 'cuda' });
  t.true(cuda.memoryStats().allocated >= 4 * 2 ** 20);
  x.dispose();
});

test('memory statistics on a CPU-only build say why they are unavailable', (t) => {
  if (available) return t.pass();
  t.throws(() => cuda.memoryStats(), { message: /CUDA is not available/ });
});
