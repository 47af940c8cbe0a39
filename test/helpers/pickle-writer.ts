// Hand-assembled pickles for tests of the safe unpickler: opcodes as Python's pickle writes them, so a
// test can build malicious, damaged or bomb-like files without Python.
export class PickleWriter {
  private readonly parts: number[] = [];

  constructor(protocol = 4) {
    this.parts.push(0x80, protocol);
  }

  op(code: number | string, ...bytes: number[]): this {
    this.parts.push(typeof code === 'string' ? code.charCodeAt(0) : code, ...bytes);
    return this;
  }

  raw(bytes: Iterable<number>): this {
    for (const b of bytes) this.parts.push(b);
    return this;
  }

  /** GLOBAL module\nname\n (protocol 0-3 style) */
  global(module: string, name: string): this {
    return this.op('c').raw(Buffer.from(`${module}\n${name}\n`, 'latin1'));
  }

  /** SHORT_BINUNICODE / BINUNICODE */
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    if (b.length < 256) return this.op(0x8c, b.length).raw(b);
    const n = Buffer.alloc(4);
    n.writeUInt32LE(b.length);
    return this.op('X').raw(n).raw(b);
  }

  /** BININT (or BININT1 for 0..255) */
  int(v: number): this {
    if (v >= 0 && v < 256) return this.op('K', v);
    const n = Buffer.alloc(4);
    n.writeInt32LE(v);
    return this.op('J').raw(n);
  }

  /** LONG_BINPUT i */
  put(i: number): this {
    const n = Buffer.alloc(4);
    n.writeUInt32LE(i);
    return this.op('r').raw(n);
  }

  /** LONG_BINGET i */
  get(i: number): this {
    const n = Buffer.alloc(4);
    n.writeUInt32LE(i);
    return this.op('j').raw(n);
  }

  stop(): Buffer {
    return Buffer.from([...this.parts, 0x2e]);
  }
}
