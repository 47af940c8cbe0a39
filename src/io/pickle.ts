// A safe unpickler for Python's pickle protocols 0-5: it reads the opcodes Python's pickle writes and
// builds plain values, and it never runs code. GLOBAL / STACK_GLOBAL / INST resolve only through the
// caller's allow-list (each entry implemented in TypeScript); anything else is refused with one line
// naming the module and the name (the rule of PyTorch's weights_only=True). It is bounded by the file:
// every length is checked against the bytes left, memo indices cannot exceed the file size, and the
// values it returns are checked for depth and cycles, so a crafted file cannot exhaust memory or hang.
// It reads from memory or from a file through a window; large byte strings of a file are handed out
// as FileRanges, read only where they are used (straight into tensor memory for storages), so reading
// a 1 GB snapshot holds the tensors once, not the file besides.
import { closeSync, openSync, readSync } from 'node:fs';
import { Tensor } from '../tensor/tensor.js';
import { fromBytes, fromFile } from '../tensor/create.js';
import { ELEMENT_SIZE, type DType } from '../tensor/dtype.js';

export class PickleError extends Error {
  readonly code = 'ERR_PICKLE';
}

/** An instance of an allow-listed class, as plain data: its class, constructor arguments and state (BUILD). */
export class PyObject {
  state: PyValue = null;
  constructor(readonly className: string, readonly args: PyValue[] = []) {}
  /** The attribute dict of the state (state may be a dict or a (dict, slots) tuple, as Python's BUILD takes it). */
  get dict(): PyDict | null {
    const s = this.state;
    if (s instanceof PyDict) return s;
    if (Array.isArray(s) && s[0] instanceof PyDict) return s[0];
    return null;
  }
}

/** A Python dict: insertion-ordered, keys of any hashable kind (strings in the files read here). */
export class PyDict {
  readonly map = new Map<PyValue, PyValue>();
  get(key: string): PyValue | undefined { return this.map.get(key); }
  has(key: string): boolean { return this.map.has(key); }
  keys(): PyValue[] { return [...this.map.keys()]; }
  get size(): number { return this.map.size; }
}

/** A Python set or frozenset (element order as in the file). */
export class PySet {
  constructor(readonly items: PyValue[] = []) {}
}

/** A region of a file, read only when used (the large byte strings of file-backed pickles). */
export class FileRange {
  constructor(readonly path: string, readonly offset: number, readonly length: number) {}

  read(): Buffer {
    const b = Buffer.alloc(this.length);
    const fd = openSync(this.path, 'r');
    try {
      let done = 0;
      while (done < this.length) {
        const n = readSync(fd, b, done, this.length - done, this.offset + done);
        if (!n) throw new PickleError(`${this.path}: ends before the ${this.length} bytes at offset ${this.offset}`);
        done += n;
      }
    } finally {
      closeSync(fd);
    }
    return b;
  }
}

/** Where an unpickler reads: memory, or a file (or a region of one) through a window. */
export interface ByteSource {
  readonly length: number;
  /** n bytes at pos: a view valid until the next call */
  bytes(pos: number, n: number): Uint8Array;
  /** a byte string to keep: a view of memory, a copy of a small file region, a FileRange of a large one */
  payload(pos: number, n: number): Uint8Array | FileRange;
  /** the position of the next newline at or after pos (within limit bytes), or -1 */
  newline(pos: number, limit: number): number;
  /** a tensor of numel elements from the raw bytes at pos (byte-swapped when big-endian) */
  tensor(pos: number, numel: number, dtype: DType, bigEndian: boolean): Tensor;
  /** a source over [pos, pos + n) of this one */
  sub(pos: number, n: number): ByteSource;
}

export function swapBytes(b: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i += size) for (let j = 0; j < size; j++) out[i + j] = b[i + size - 1 - j]!;
  return out;
}

export class MemorySource implements ByteSource {
  constructor(private readonly data: Uint8Array) {}
  get length(): number { return this.data.length; }
  bytes(pos: number, n: number): Uint8Array { return this.data.subarray(pos, pos + n); }
  payload(pos: number, n: number): Uint8Array { return this.data.subarray(pos, pos + n); }
  newline(pos: number, limit: number): number {
    const i = this.data.indexOf(0x0a, pos);
    return i >= 0 && i - pos <= limit ? i : -1;
  }
  tensor(pos: number, numel: number, dtype: DType, bigEndian: boolean): Tensor {
    const b = this.data.subarray(pos, pos + numel * ELEMENT_SIZE[dtype]);
    return fromBytes(bigEndian ? swapBytes(b, ELEMENT_SIZE[dtype]) : b, [numel], dtype);
  }
  sub(pos: number, n: number): MemorySource { return new MemorySource(this.data.subarray(pos, pos + n)); }
}

/** Byte strings at least this long in a file-backed pickle stay in the file until used. */
const LAZY_BYTES = 1 << 18;
const WINDOW = 1 << 20;

export class FileSource implements ByteSource {
  private window: Buffer = Buffer.alloc(0);
  private windowStart = 0;

  /** `base`/`length`: the region of the file this source covers (the whole file by default). */
  constructor(readonly path: string, readonly length: number, private readonly base = 0) {}

  bytes(pos: number, n: number): Uint8Array {
    if (pos < this.windowStart || pos + n > this.windowStart + this.window.length) {
      const len = Math.min(Math.max(n, WINDOW), this.length - pos);
      this.window = new FileRange(this.path, this.base + pos, len).read();
      this.windowStart = pos;
    }
    return this.window.subarray(pos - this.windowStart, pos - this.windowStart + n);
  }

  payload(pos: number, n: number): Uint8Array | FileRange {
    return n >= LAZY_BYTES ? new FileRange(this.path, this.base + pos, n) : new Uint8Array(this.bytes(pos, n));
  }

  newline(pos: number, limit: number): number {
    const b = this.bytes(pos, Math.min(limit + 1, this.length - pos));
    const i = b.indexOf(0x0a);
    return i >= 0 ? pos + i : -1;
  }

  tensor(pos: number, numel: number, dtype: DType, bigEndian: boolean): Tensor {
    if (!bigEndian) return fromFile(this.path, this.base + pos, [numel], dtype);
    return fromBytes(swapBytes(new FileRange(this.path, this.base + pos, numel * ELEMENT_SIZE[dtype]).read(), ELEMENT_SIZE[dtype]), [numel], dtype);
  }

  sub(pos: number, n: number): FileSource { return new FileSource(this.path, n, this.base + pos); }
}

/** The source a byte string read from a pickle can be parsed as (a torch.save stream inside a pickle). */
export function sourceOf(b: Uint8Array | FileRange): ByteSource {
  return b instanceof FileRange ? new FileSource(b.path, b.length, b.offset) : new MemorySource(b);
}

/**
 * A value the unpickler returns. Tuples are arrays; bytes are Uint8Array views; ints beyond 2^53 are
 * bigints; `object` stands for what allow-listed globals make (tensors, storages).
 */
export type PyValue = null | boolean | number | bigint | string | Uint8Array | FileRange | PyValue[] | PyDict | PySet | PyObject | PyGlobal | object;

/** What an allow-listed global does when called (REDUCE), instantiated (NEWOBJ, INST, OBJ) or built (BUILD). */
export interface GlobalImpl {
  /** REDUCE / NEWOBJ / INST: the value made from the arguments */
  call?(args: PyValue[], kwargs?: PyDict): PyValue;
  /** BUILD on a value this global made (default: PyObject state, or refused) */
  build?(obj: PyValue, state: PyValue): void;
}

/** A resolved global on the stack. */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string, readonly impl: GlobalImpl) {}
  get qualified(): string { return `${this.module}.${this.name}`; }
}

export interface UnpickleOptions {
  /** the allow-list: `module.name` -> implementation; undefined = refused */
  findGlobal(module: string, name: string): GlobalImpl | undefined;
  /** PERSID / BINPERSID (torch.save's storages); refused when absent */
  persistentLoad?(pid: PyValue): PyValue;
  /** names the input in errors (a file, or "file: entry") */
  what: string;
  /** the start offset (several pickles in one stream, as the legacy torch.save format has) */
  offset?: number;
}

const MAX_DEPTH = 1000;

/** The result and where the pickle ended in the input. */
export interface Unpickled {
  value: PyValue;
  end: number;
}

const MARK = Symbol('mark');
type StackItem = PyValue | typeof MARK;

/** Reads one pickle from `data` (at o.offset); the value is checked for nesting depth and cycles. */
export function unpickle(data: Uint8Array | ByteSource, o: UnpickleOptions): Unpickled {
  const u = new Unpickler(data instanceof Uint8Array ? new MemorySource(data) : data, o);
  const value = u.run();
  checkShape(value, o.what);
  return { value, end: u.pos };
}

class Unpickler {
  pos: number;
  private readonly stack: StackItem[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, PyValue>();
  private readonly text = new TextDecoder('utf-8', { fatal: true });

  constructor(private readonly src: ByteSource, private readonly o: UnpickleOptions) {
    this.pos = o.offset ?? 0;
  }

  private fail(msg: string): never {
    throw new PickleError(`${this.o.what}: ${msg}`);
  }

  private need(n: number | bigint, what: string): number {
    const left = this.src.length - this.pos;
    if (typeof n === 'bigint' ? n > BigInt(left) : n > left) this.fail(`truncated or corrupt pickle: ${what} of ${n} bytes at offset ${this.pos}, only ${left} left`);
    if (typeof n === 'number' && n < 0) this.fail(`corrupt pickle: negative length ${n} for ${what} at offset ${this.pos}`);
    return Number(n);
  }

  /** n bytes to use at once (a view valid until the next read) */
  private bytes(n: number | bigint, what: string): Uint8Array {
    const k = this.need(n, what);
    const b = this.src.bytes(this.pos, k);
    this.pos += k;
    return b;
  }

  /** a byte string to keep (BINBYTES and kin) */
  private payload(n: number | bigint, what: string): Uint8Array | FileRange {
    const k = this.need(n, what);
    const b = this.src.payload(this.pos, k);
    this.pos += k;
    return b;
  }

  private fixed(n: number, what: string): DataView {
    const b = this.bytes(n, what);
    return new DataView(b.buffer, b.byteOffset, n);
  }

  private u8(): number { return this.bytes(1, 'a byte')[0]!; }
  private u16(): number { return this.fixed(2, 'an int').getUint16(0, true); }
  private u32(): number { return this.fixed(4, 'an int').getUint32(0, true); }
  private i32(): number { return this.fixed(4, 'an int').getInt32(0, true); }
  private u64(): bigint { return this.fixed(8, 'a length').getBigUint64(0, true); }

  private line(): string {
    const end = this.src.newline(this.pos, 1 << 16);
    if (end < 0) this.fail(`truncated or corrupt pickle: a text line at offset ${this.pos} has no end within 64 KiB`);
    const b = this.src.bytes(this.pos, end - this.pos);
    const s = Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
    this.pos = end + 1;
    return s;
  }

  private utf8(b: Uint8Array, at: number): string {
    try {
      return this.text.decode(b);
    } catch {
      return this.fail(`corrupt pickle: a string at offset ${at} is not valid UTF-8`);
    }
  }

  private push(v: StackItem): void { this.stack.push(v); }

  private pop(): PyValue {
    if (!this.stack.length) this.fail(`corrupt pickle: stack underflow at offset ${this.pos - 1}`);
    const v = this.stack.pop()!;
    if (v === MARK) this.fail(`corrupt pickle: unexpected MARK at offset ${this.pos - 1}`);
    return v;
  }

  private top(): PyValue {
    const v = this.stack[this.stack.length - 1];
    if (v === undefined || v === MARK) this.fail(`corrupt pickle: empty stack at offset ${this.pos - 1}`);
    return v as PyValue;
  }

  /** The items pushed since the last MARK (removed, with the mark). */
  private popMark(): PyValue[] {
    const m = this.marks.pop();
    if (m === undefined) this.fail(`corrupt pickle: no MARK before offset ${this.pos - 1}`);
    const items = this.stack.splice(m) as StackItem[];
    items.shift(); // the mark itself
    if (items.some((x) => x === MARK)) this.fail('corrupt pickle: nested MARK');
    return items as PyValue[];
  }

  private memoize(index: number, v: PyValue): void {
    if (index > this.src.length) this.fail(`corrupt pickle: memo index ${index} beyond the size of the input`);
    this.memo.set(index, v);
  }

  private recall(index: number): PyValue {
    if (!this.memo.has(index)) this.fail(`corrupt pickle: memo entry ${index} read before it was written (offset ${this.pos})`);
    return this.memo.get(index)!;
  }

  private global(module: string, name: string): PyGlobal {
    const impl = this.o.findGlobal(module, name);
    if (!impl) this.fail(`refused global ${module}.${name}: not in the allow-list of data types this reader builds (it never runs code from a file); if the file is trusted, load it in Python and save its tensors (e.g. safetensors)`);
    return new PyGlobal(module, name, impl);
  }

  private call(fn: PyValue, args: PyValue[], kwargs?: PyDict): PyValue {
    if (!(fn instanceof PyGlobal)) this.fail(`corrupt pickle: calls a ${describe(fn)}, not an allow-listed global`);
    if (!fn.impl.call) this.fail(`${fn.qualified} cannot be called here`);
    try {
      return fn.impl.call(args, kwargs);
    } catch (e) {
      // errors of the layers below (a damaged zip entry, a failed read) keep their own kind and message
      if (e instanceof PickleError || (e instanceof Error && 'code' in e)) throw e;
      return this.fail(`${fn.qualified}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private build(obj: PyValue, state: PyValue): void {
    if (obj instanceof PyObject) {
      obj.state = state;
      return;
    }
    const owner = builders.get(obj as object);
    if (owner?.build) {
      owner.build(obj, state);
      return;
    }
    if (state === null) return;
    this.fail(`corrupt pickle: BUILD on a ${describe(obj)}`);
  }

  private setItems(d: PyValue, items: PyValue[]): void {
    if (!(d instanceof PyDict)) this.fail(`corrupt pickle: SETITEMS on a ${describe(d)}`);
    if (items.length % 2) this.fail('corrupt pickle: SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) d.map.set(items[i]!, items[i + 1]!);
  }

  private append(l: PyValue, items: PyValue[]): void {
    if (!Array.isArray(l)) this.fail(`corrupt pickle: APPEND on a ${describe(l)}`);
    for (const x of items) l.push(x);
  }

  private long(b: Uint8Array): number | bigint {
    if (!b.length) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  private textInt(s: string): number | bigint | boolean {
    if (s === '01') return true;
    if (s === '00') return false;
    const t = s.endsWith('L') ? s.slice(0, -1) : s;
    if (!/^[-+]?\d+$/.test(t)) this.fail(`corrupt pickle: '${s.slice(0, 40)}' is not an integer`);
    const v = BigInt(t);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  run(): PyValue {
    for (;;) {
      const at = this.pos;
      const op = this.u8();
      switch (op) {
        case 0x80: { // PROTO
          const v = this.u8();
          if (v > 5) this.fail(`unsupported pickle protocol ${v} (0 to 5 are read)`);
          break;
        }
        case 0x95: this.u64(); break; // FRAME: framing only
        case 0x2e: { // STOP
          const v = this.pop();
          return v;
        }
        case 0x28: this.marks.push(this.stack.length); this.push(MARK); break; // MARK
        case 0x30: this.pop(); break; // POP
        case 0x31: this.popMark(); break; // POP_MARK
        case 0x32: this.push(this.top()); break; // DUP
        case 0x4e: this.push(null); break; // NONE
        case 0x88: this.push(true); break; // NEWTRUE
        case 0x89: this.push(false); break; // NEWFALSE
        case 0x4a: this.push(this.i32()); break; // BININT
        case 0x4b: this.push(this.u8()); break; // BININT1
        case 0x4d: this.push(this.u16()); break; // BININT2
        case 0x49: this.push(this.textInt(this.line())); break; // INT
        case 0x4c: this.push(this.textInt(this.line()) as number | bigint); break; // LONG
        case 0x8a: this.push(this.long(this.bytes(this.u8(), 'LONG1'))); break;
        case 0x8b: { // LONG4
          const n = this.i32();
          this.push(this.long(this.bytes(n, 'LONG4')));
          break;
        }
        case 0x46: { // FLOAT
          const s = this.line();
          const v = Number(s);
          if (Number.isNaN(v) && !/^[-+]?nan$/i.test(s.trim())) this.fail(`corrupt pickle: '${s.slice(0, 40)}' is not a float`);
          this.push(v);
          break;
        }
        case 0x47: this.push(this.fixed(8, 'BINFLOAT').getFloat64(0, false)); break;
        case 0x53: this.push(pyStringLiteral(this.line(), (m) => this.fail(m))); break; // STRING
        case 0x54: { const n = this.i32(); this.push(legacyString(this.bytes(n, 'BINSTRING'))); break; }
        case 0x55: this.push(legacyString(this.bytes(this.u8(), 'SHORT_BINSTRING'))); break;
        case 0x56: this.push(rawUnicodeEscape(this.line())); break; // UNICODE
        case 0x58: { const n = this.u32(); this.push(this.utf8(this.bytes(n, 'BINUNICODE'), at)); break; }
        case 0x8c: this.push(this.utf8(this.bytes(this.u8(), 'SHORT_BINUNICODE'), at)); break;
        case 0x8d: this.push(this.utf8(this.bytes(this.u64(), 'BINUNICODE8'), at)); break;
        case 0x42: { const n = this.u32(); this.push(this.payload(n, 'BINBYTES')); break; }
        case 0x43: this.push(this.payload(this.u8(), 'SHORT_BINBYTES')); break;
        case 0x8e: this.push(this.payload(this.u64(), 'BINBYTES8')); break;
        case 0x96: this.push(this.payload(this.u64(), 'BYTEARRAY8')); break;
        case 0x97: this.fail('the pickle uses out-of-band buffers (NEXT_BUFFER), which a file cannot supply');
        // eslint-disable-next-line no-fallthrough
        case 0x98: break; // READONLY_BUFFER
        case 0x29: this.push([]); break; // EMPTY_TUPLE
        case 0x85: this.push([this.pop()]); break; // TUPLE1
        case 0x86: { const b = this.pop(); const a = this.pop(); this.push([a, b]); break; }
        case 0x87: { const c = this.pop(); const b = this.pop(); const a = this.pop(); this.push([a, b, c]); break; }
        case 0x74: this.push(this.popMark()); break; // TUPLE
        case 0x5d: this.push([]); break; // EMPTY_LIST
        case 0x6c: this.push(this.popMark()); break; // LIST
        case 0x61: { const v = this.pop(); this.append(this.top(), [v]); break; } // APPEND
        case 0x65: { const items = this.popMark(); this.append(this.top(), items); break; } // APPENDS
        case 0x7d: this.push(new PyDict()); break; // EMPTY_DICT
        case 0x64: { const d = new PyDict(); this.setItems(d, this.popMark()); this.push(d); break; } // DICT
        case 0x73: { const v = this.pop(); const k = this.pop(); this.setItems(this.top(), [k, v]); break; } // SETITEM
        case 0x75: { const items = this.popMark(); this.setItems(this.top(), items); break; } // SETITEMS
        case 0x8f: this.push(new PySet()); break; // EMPTY_SET
        case 0x90: { // ADDITEMS
          const items = this.popMark();
          const s = this.top();
          if (!(s instanceof PySet)) this.fail(`corrupt pickle: ADDITEMS on a ${describe(s)}`);
          s.items.push(...items);
          break;
        }
        case 0x91: this.push(new PySet(this.popMark())); break; // FROZENSET
        case 0x70: this.memoize(Number(this.textInt(this.line())), this.top()); break; // PUT
        case 0x71: this.memoize(this.u8(), this.top()); break; // BINPUT
        case 0x72: this.memoize(this.u32(), this.top()); break; // LONG_BINPUT
        case 0x94: this.memoize(this.memo.size, this.top()); break; // MEMOIZE
        case 0x67: this.push(this.recall(Number(this.textInt(this.line())))); break; // GET
        case 0x68: this.push(this.recall(this.u8())); break; // BINGET
        case 0x6a: this.push(this.recall(this.u32())); break; // LONG_BINGET
        case 0x63: { const module = this.line(); const name = this.line(); this.push(this.global(module, name)); break; } // GLOBAL
        case 0x93: { // STACK_GLOBAL
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') this.fail('corrupt pickle: STACK_GLOBAL without module and name strings');
          this.push(this.global(module, name));
          break;
        }
        case 0x52: { // REDUCE
          const args = this.pop();
          const fn = this.pop();
          if (!Array.isArray(args)) this.fail('corrupt pickle: REDUCE arguments are not a tuple');
          this.push(this.call(fn, args));
          break;
        }
        case 0x81: { // NEWOBJ
          const args = this.pop();
          const cls = this.pop();
          if (!Array.isArray(args)) this.fail('corrupt pickle: NEWOBJ arguments are not a tuple');
          this.push(this.call(cls, args));
          break;
        }
        case 0x92: { // NEWOBJ_EX
          const kwargs = this.pop();
          const args = this.pop();
          const cls = this.pop();
          if (!Array.isArray(args) || !(kwargs instanceof PyDict)) this.fail('corrupt pickle: NEWOBJ_EX without a tuple and a dict');
          this.push(this.call(cls, args, kwargs));
          break;
        }
        case 0x69: { // INST
          const module = this.line();
          const name = this.line();
          const cls = this.global(module, name);
          this.push(this.call(cls, this.popMark()));
          break;
        }
        case 0x6f: { // OBJ
          const items = this.popMark();
          if (!items.length) this.fail('corrupt pickle: OBJ without a class');
          this.push(this.call(items[0]!, items.slice(1)));
          break;
        }
        case 0x62: { const state = this.pop(); this.build(this.top(), state); break; } // BUILD
        case 0x50: this.push(this.persistent(this.line())); break; // PERSID
        case 0x51: this.push(this.persistent(this.pop())); break; // BINPERSID
        case 0x82: case 0x83: case 0x84:
          this.fail('the pickle uses the copyreg extension registry (EXT1/2/4), which this reader does not have');
        // eslint-disable-next-line no-fallthrough
        default:
          this.fail(`not a pickle, or a corrupt one: unknown opcode 0x${op.toString(16).padStart(2, '0')} at offset ${at}`);
      }
    }
  }

  private persistent(pid: PyValue): PyValue {
    if (!this.o.persistentLoad) this.fail('the pickle refers to external data (a persistent id) that this file kind does not have');
    try {
      return this.o.persistentLoad(pid);
    } catch (e) {
      if (e instanceof PickleError) throw e;
      return this.fail(e instanceof Error ? e.message : String(e));
    }
  }
}

/** Values made by a global that takes BUILD (registered by the global's implementation). */
const builders = new WeakMap<object, GlobalImpl>();

/** Marks `v` (made by `impl`) as accepting BUILD through impl.build. */
export function buildable<T extends object>(v: T, impl: GlobalImpl): T {
  builders.set(v, impl);
  return v;
}

export function describe(v: PyValue): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'tuple/list';
  if (v instanceof Uint8Array || v instanceof FileRange) return 'bytes';
  if (v instanceof PyDict) return 'dict';
  if (v instanceof PySet) return 'set';
  if (v instanceof PyObject) return `${v.className} object`;
  if (v instanceof PyGlobal) return `global ${v.qualified}`;
  return typeof v;
}

/** Python 2 str (BINSTRING): UTF-8 when it is, else Latin-1 (what torch.load's default encoding gives for text). */
function legacyString(b: Uint8Array): string {
  const s = Buffer.from(b.buffer, b.byteOffset, b.length);
  const u = s.toString('utf8');
  return Buffer.from(u, 'utf8').equals(s) ? u : s.toString('latin1');
}

/** Protocol 0 STRING: a quoted Python literal with backslash escapes. */
function pyStringLiteral(line: string, fail: (m: string) => never): string {
  const q = line[0];
  if (line.length < 2 || (q !== "'" && q !== '"') || line[line.length - 1] !== q) fail(`corrupt pickle: STRING argument ${line.slice(0, 40)} is not quoted`);
  const body = line.slice(1, -1);
  return body.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return ({ n: '\n', r: '\r', t: '\t', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v' } as Record<string, string>)[e] ?? `\\${e}`;
  });
}

/** Protocol 0 UNICODE: raw-unicode-escape (\uXXXX and \UXXXXXXXX escapes, other bytes Latin-1). */
function rawUnicodeEscape(line: string): string {
  return line.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, a: string | undefined, b: string | undefined) => String.fromCodePoint(parseInt((a ?? b)!, 16)));
}

/** Refuses values nested deeper than MAX_DEPTH or holding themselves (a data file has neither). */
function checkShape(root: PyValue, what: string): void {
  const done = new Set<object>();
  const open = new Set<object>();
  const visit = (v: PyValue, depth: number): void => {
    if (v === null || typeof v !== 'object' || v instanceof Uint8Array || v instanceof FileRange || v instanceof PyGlobal || v instanceof Tensor) return;
    if (done.has(v)) return;
    if (open.has(v)) throw new PickleError(`${what}: the pickle holds a structure that contains itself; a data file does not`);
    if (depth > MAX_DEPTH) throw new PickleError(`${what}: values nested deeper than ${MAX_DEPTH} levels; refused (a data file is not that deep)`);
    open.add(v);
    const children = Array.isArray(v) ? v : v instanceof PyDict ? [...v.map.keys(), ...v.map.values()] : v instanceof PySet ? v.items : v instanceof PyObject ? [...v.args, v.state] : [];
    for (const c of children) visit(c, depth + 1);
    open.delete(v);
    done.add(v);
  };
  visit(root, 0);
}
