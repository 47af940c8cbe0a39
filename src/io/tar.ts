// Reading tar archives (POSIX ustar, with GNU long names and pax path records), e.g. WebDataset shards:
// the headers are indexed once and each member is read with one positioned read, so shards larger than
// memory are fine. Header checksums are verified; a truncated archive is an error naming the member.
import { openSync, readSync, fstatSync, closeSync } from 'node:fs';

export class TarError extends Error {
  readonly code = 'ERR_TAR';
}

export interface TarEntry {
  name: string;
  offset: number;
  size: number;
}

function field(h: Buffer, at: number, len: number): string {
  const s = h.subarray(at, at + len);
  const z = s.indexOf(0);
  return s.subarray(0, z < 0 ? len : z).toString('utf8');
}

function octal(h: Buffer, at: number, len: number, file: string): number {
  if (h[at]! & 0x80) { // GNU base-256 for sizes of 8 GiB and more
    let v = 0;
    for (let i = at + 1; i < at + len; i++) v = v * 256 + h[i]!;
    return v;
  }
  const s = field(h, at, len).trim();
  if (!/^[0-7]*$/.test(s)) throw new TarError(`${file}: corrupt tar header (field '${s}' is not octal)`);
  return s ? parseInt(s, 8) : 0;
}

/** The path records of a pax extended header ("<len> path=<value>\n" ...). */
function paxPath(body: Buffer): string | null {
  let i = 0;
  let found: string | null = null;
  while (i < body.length) {
    const sp = body.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(body.subarray(i, sp).toString('ascii'), 10);
    if (!(len > 0)) break;
    const rec = body.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (rec.slice(0, eq) === 'path') found = rec.slice(eq + 1);
    i += len;
  }
  return found;
}

export class TarReader {
  /** regular-file members in archive order (a later member of the same name replaces an earlier one) */
  readonly entries = new Map<string, TarEntry>();
  private fd: number;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
    try {
      this.index();
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }

  private read(offset: number, size: number): Buffer {
    const b = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const n = readSync(this.fd, b, got, size - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return got === size ? b : b.subarray(0, got);
  }

  private index(): void {
    const total = fstatSync(this.fd).size;
    let pos = 0;
    let longName: string | null = null;
    while (pos + 512 <= total) {
      const h = this.read(pos, 512);
      if (h.every((v) => v === 0)) break; // end-of-archive blocks
      let sum = 0;
      for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
      const stored = octal(h, 148, 8, this.path);
      if (sum !== stored) throw new TarError(`${this.path}: not a tar archive or corrupt at byte ${pos} (header checksum ${stored}, computed ${sum})`);
      const size = octal(h, 124, 12, this.path);
      const type = String.fromCharCode(h[156]!);
      const prefix = field(h, 257, 6) === 'ustar' ? field(h, 345, 155) : '';
      const name = longName ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
      const data = pos + 512;
      if (data + size > total) throw new TarError(`${this.path}: truncated: member ${name} needs ${size} bytes at ${data}, the file ends at ${total}`);
      longName = null;
      if (type === 'L') longName = this.read(data, size).toString('utf8').replace(/\0+$/, '');
      else if (type === 'x') longName = paxPath(this.read(data, size));
      else if (type === '0' || type === '\0' || type === '7') this.entries.set(name.replace(/^\.\//, ''), { name, offset: data, size });
      pos = data + Math.ceil(size / 512) * 512;
    }
  }

  readEntry(name: string): Buffer {
    const e = this.entries.get(name);
    if (!e) throw new TarError(`${this.path}: no member ${name}`);
    return this.read(e.offset, e.size);
  }

  close(): void {
    closeSync(this.fd);
  }
}
