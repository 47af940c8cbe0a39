// Memory statistics as the very first CUDA call of a process (its own test file, so its own process):
// PyTorch initialises CUDA lazily, and the allocator's statistics used to throw "did you call init?"
// until some CUDA tensor existed.
import test from 'ava';
import { cuda, zeros } from '../../src/index.js';

const available = cuda.isAvailable();
const reason = cuda.unavailableReason() ?? 'CUDA is available';

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

test('memory statistics without a usable CUDA device say why they are unavailable', (t) => {
  if (available) return t.pass();
  const why = cuda.builtWithCuda() ? /no CUDA device is visible to this CUDA build of dmd-torch \(CUDA_VISIBLE_DEVICES / : /this build of dmd-torch is CPU-only/;
  t.throws(() => cuda.memoryStats(), { message: why });
});
