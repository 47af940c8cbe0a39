// The progress line's speed and ETA come from the recent rate, not the average since the start.
import test from 'ava';
import { Progress } from '../../src/train/progress.js';

test('the rate follows a slowdown within the window instead of averaging since the start', (t) => {
  const p = new Progress({ total: 1000, stream: { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream });
  // 100 steps at 10 steps/s, then 10 steps at 0.1 steps/s (times in ms)
  let now = 0;
  for (let s = 1; s <= 100; s++) p.rate((now += 100), s);
  t.true(Math.abs(p.rate(now, 100) - 10) < 0.5);
  let r = 0;
  for (let s = 101; s <= 110; s++) r = p.rate((now += 10_000), s);
  // the average since the start would be 110 steps / 110 s = 1 step/s
  t.true(r < 0.2, `recent rate ${r}`);
});
