import test from 'ava';
import { dtypeCode, dtypeFromCode, DTYPES, ELEMENT_SIZE, viewBytes, isFloating } from '../../src/tensor/dtype.js';
import { checkDevice, isDevice } from '../../src/tensor/device.js';
import { warmup, edmRampup, withLinearDecay } from '../../src/nn/schedule.js';

test('dtype codes round-trip and sizes are right', (t) => {
  for (const d of DTYPES) t.is(dtypeFromCode(dtypeCode(d)), d);
  t.is(ELEMENT_SIZE.bfloat16, 2);
  t.is(ELEMENT_SIZE.int64, 8);
  t.true(isFloating('bfloat16'));
  t.false(isFloating('int32'));
  t.throws(() => dtypeFromCode(99), { message: /unsupported dtype/ });
});

test('viewBytes views aligned bytes and copies misaligned ones', (t) => {
  const f = new Float32Array([1.5, -2]);
  const bytes = new Uint8Array(f.buffer);
  t.deepEqual(Array.from(viewBytes(bytes, 'float32') as Float32Array), [1.5, -2]);
  const shifted = new Uint8Array(9);
  shifted.set(bytes, 1);
  t.deepEqual(Array.from(viewBytes(shifted.subarray(1), 'float32') as Float32Array), [1.5, -2]);
});

test('devices are validated', (t) => {
  t.true(isDevice('cpu'));
  t.true(isDevice('cuda:3'));
  t.false(isDevice('gpu'));
  t.throws(() => checkDevice('cuda:x'), { instanceOf: TypeError, message: /'cpu', 'cuda' or 'cuda:N'/ });
});

test('schedules', (t) => {
  const w = warmup(10);
  t.is(w(0), 0);
  t.is(w(5), 0.5);
  t.is(w(100), 1);
  t.is(warmup(0)(0), 1);
  t.is(edmRampup(10)(5000), 0.5);
  // warm-up 2, 8 steps, the last 4 falling to 1/4 (1-based steps): the last step still moves
  t.deepEqual([1, 2, 3, 4, 5, 6, 7, 8].map(withLinearDecay(warmup(2), 8, 4)), [0.5, 1, 1, 1, 1, 0.75, 0.5, 0.25]);
  t.is(withLinearDecay(w, 8, 0), w);
  t.is(withLinearDecay(warmup(0), 8, 8)(1), 1);
  t.is(withLinearDecay(warmup(0), 8, 4)(9), 0, 'past the end of the run: 0');
  t.throws(() => withLinearDecay(w, 8, -1), { instanceOf: RangeError });
});
