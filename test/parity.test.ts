// Every case of the reference manifests ($DMD_REFERENCE_FIXTURES, or test/fixtures/reference and
// test/fixtures/sd) whose kind is implemented must pass; unknown kinds are reported as skipped.
import test from 'ava';
import { CHECKERS, judge } from './parity/kinds.js';
import { fixtureDirs, readCase, readManifest } from './parity/fixtures.js';
import { tidy, dispose } from '../src/index.js';

for (const dir of fixtureDirs()) {
  for (const c of readManifest(dir).cases) {
    const check = CHECKERS[c.kind];
    if (!check) {
      test.skip(`parity ${c.name} (${c.kind} not implemented)`, () => {});
      continue;
    }
    test(`parity ${c.name} (${c.kind})`, (t) => {
      const data = readCase(c, dir);
      try {
        const v = tidy(() => judge(check(c, data, { device: 'cpu', dtype: 'float32', dir }), c.rtol));
        t.log(`max_abs_err=${v.maxAbsErr.toExponential(3)} tol=${v.tol.toExponential(3)} (${v.worst})`);
        t.true(v.pass, `${v.worst}: max_abs_err ${v.maxAbsErr} > tol ${v.tol}`);
      } finally {
        dispose(data.all);
      }
    });
  }
}
