// Explicit tensor lifetime: tidy() scopes free every tensor created inside except what the function
// returns (or what was kept). GC finalizers only back this up: a synchronous training loop must not
// depend on them (Node runs ObjectWrap finalizers only after the event loop turns).
import { N, type TensorHandle } from '../native.js';

/** What a scope needs to know of a tensor. */
export interface Scoped {
  /** @internal */ _h: TensorHandle | null;
  /** @internal */ _kept: boolean;
}

const stack: Scoped[][] = [];

let traced: Map<Scoped, string> | null = null;

/** Registers a new tensor with the innermost open scope (if any). */
export function track(t: Scoped): void {
  const top = stack[stack.length - 1];
  if (top) top.push(t);
  if (traced && !traced.has(t)) traced.set(t, new Error().stack ?? '');
}

/** Where tensors that outlived a trace were created, and how many came from each place. */
export interface TensorSite {
  /** the first calls outside the tensor library, innermost first */
  site: string;
  count: number;
}

/**
 * Starts recording where tensors are created (for tests and leak hunts: it holds every new tensor
 * until stopped). The returned function stops the trace and lists the tensors created since that are
 * still alive (neither disposed nor freed by a scope), grouped by creation site. A tensor that only
 * the garbage collector would free shows up here, whether or not the GC has run.
 */
export function traceTensors(o: { frames?: number } = {}): () => TensorSite[] {
  if (traced) throw new Error('traceTensors: a trace is already running');
  const mine = new Map<Scoped, string>();
  traced = mine;
  return () => {
    if (traced === mine) traced = null;
    const sites = new Map<string, number>();
    for (const [t, stackText] of mine) {
      if (t._h === null) continue;
      const frames = stackText.split('\n').slice(1).map((l) => l.trim()).filter((l) => !/[/\\](src|dist)[/\\]tensor[/\\]|node:internal/.test(l));
      const site = frames.slice(0, o.frames ?? 4).join(' < ');
      sites.set(site, (sites.get(site) ?? 0) + 1);
    }
    mine.clear();
    return [...sites].map(([site, count]) => ({ site, count })).sort((a, b) => b.count - a.count);
  };
}

function isScoped(x: unknown): x is Scoped {
  return typeof x === 'object' && x !== null && '_h' in x && '_kept' in x;
}

/**
 * Finds the tensors in a result: the value itself, or inside arrays, Maps, Sets and plain objects, at
 * any depth (each container once, so shared or cyclic structures end).
 */
function collect(value: unknown, out: Set<Scoped>): void {
  if (value === null || typeof value !== 'object') return;
  if (isScoped(value)) {
    out.add(value);
    return;
  }
  const seen = new Set<object>();
  const stack: unknown[] = [value];
  while (stack.length) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    if (isScoped(v)) {
      out.add(v);
      continue;
    }
    if (seen.has(v)) continue;
    seen.add(v);
    if (Array.isArray(v)) for (const x of v) stack.push(x);
    else if (v instanceof Map) for (const x of v.values()) stack.push(x);
    else if (v instanceof Set) for (const x of v) stack.push(x);
    else if (Object.getPrototypeOf(v) === Object.prototype) for (const x of Object.values(v)) stack.push(x);
  }
}

function release(ts: Scoped[]): void {
  const handles: TensorHandle[] = [];
  for (const t of ts) {
    if (t._h) {
      handles.push(t._h);
      t._h = null;
    }
  }
  if (handles.length) N.disposeMany(handles);
}

/**
 * Runs fn and disposes every tensor it created, except the tensors it returns (found in arrays,
 * Maps, Sets and plain objects) and tensors marked with keep(). Returned tensors move to the
 * enclosing scope. fn must be synchronous.
 */
export function tidy<T>(fn: () => T): T {
  const scope: Scoped[] = [];
  stack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    release(scope.filter((t) => !t._kept));
    throw e;
  }
  stack.pop();
  if (result instanceof Promise) {
    release(scope.filter((t) => !t._kept));
    throw new TypeError('tidy() takes a synchronous function; await inside it would free tensors too early');
  }
  const keepSet = new Set<Scoped>();
  collect(result, keepSet);
  const dead: Scoped[] = [];
  const parent = stack[stack.length - 1];
  for (const t of scope) {
    if (t._kept) continue;
    if (keepSet.has(t)) parent?.push(t);
    else dead.push(t);
  }
  release(dead);
  return result;
}

/** Exempts a tensor from every tidy() scope; it lives until dispose() (or GC). */
export function keep<T extends Scoped>(t: T): T {
  t._kept = true;
  return t;
}

/** Undoes keep(): the tensor joins the innermost open tidy() scope again. */
export function unkeep<T extends Scoped>(t: T): T {
  t._kept = false;
  track(t);
  return t;
}

/** Disposes every tensor found in the value (arrays, Maps, Sets, plain objects). */
export function dispose(value: unknown): void {
  const found = new Set<Scoped>();
  collect(value, found);
  release([...found]);
}

/** Number of native tensors alive (not disposed, not yet collected). */
export function liveTensors(): number {
  return N.liveTensors();
}

/** Number of tidy() scopes currently open. */
export function scopeDepth(): number {
  return stack.length;
}
