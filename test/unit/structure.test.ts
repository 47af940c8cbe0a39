// The layout rules of src/: the DMD algorithm reaches teacher networks only through its adapters
// (dmd/models/), lower folders never import the top ones (dmd/, report/, cli/, serve/, teacher/), the
// text-to-image family builds on the EDM family and not the other way round, and the algorithm's
// functions stay short enough to read (at most 80 lines in dmd/ and train/).
import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { ROOT } from '../helpers/cli.js';

const SRC = path.join(ROOT, 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const rel = (f: string) => path.relative(SRC, f).split(path.sep).join('/');

/** Relative imports of a file, resolved to paths under src/ (".js" specifiers name the .ts sources). */
function imports(file: string): string[] {
  const src = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const visit = (n: ts.Node) => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      const spec = n.moduleSpecifier.text;
      if (spec.startsWith('.')) out.push(rel(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts'))));
    }
    ts.forEachChild(n, visit);
  };
  visit(src);
  return out;
}

const TOP = ['dmd/', 'report/', 'cli/', 'serve/', 'teacher/'];

test('no folder below dmd/, report/, serve/, teacher/ and cli/ imports them', (t) => {
  const bad: string[] = [];
  for (const f of files(SRC)) {
    const from = rel(f);
    if (from === 'index.ts' || TOP.some((p) => from.startsWith(p))) continue;
    for (const to of imports(f)) if (TOP.some((p) => to.startsWith(p))) bad.push(`${from} -> ${to}`);
  }
  t.deepEqual(bad, []);
});

test('edm/ imports nothing of sd/ (sd/ uses edm/\'s sampler; teacher/ dispatches to both)', (t) => {
  const bad = files(path.join(SRC, 'edm')).flatMap((f) => imports(f).filter((to) => to.startsWith('sd/')).map((to) => `${rel(f)} -> ${to}`));
  t.deepEqual(bad, []);
});

test('dmd/ reaches EDM networks only through its adapter dmd/models/edm.ts', (t) => {
  const bad = files(path.join(SRC, 'dmd'))
    .filter((f) => rel(f) !== 'dmd/models/edm.ts')
    .flatMap((f) => imports(f).filter((to) => to === 'edm/network.ts').map((to) => `${rel(f)} -> ${to}`));
  t.deepEqual(bad, []);
});

test('functions of dmd/ and train/ are at most 80 lines, and the trainer file under 250', (t) => {
  const long: string[] = [];
  for (const f of [...files(path.join(SRC, 'dmd')), ...files(path.join(SRC, 'train'))]) {
    const src = ts.createSourceFile(f, readFileSync(f, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (n: ts.Node) => {
      if (ts.isFunctionLike(n) && 'body' in n && n.body) {
        const a = src.getLineAndCharacterOfPosition(n.getStart(src)).line;
        const b = src.getLineAndCharacterOfPosition(n.getEnd()).line;
        if (b - a + 1 > 80) long.push(`${rel(f)}:${a + 1} (${b - a + 1} lines)`);
      }
      ts.forEachChild(n, visit);
    };
    visit(src);
  }
  t.deepEqual(long, []);
  const lines = readFileSync(path.join(SRC, 'dmd/trainer.ts'), 'utf8').split('\n').length;
  t.true(lines < 250, `src/dmd/trainer.ts has ${lines} lines`);
});
