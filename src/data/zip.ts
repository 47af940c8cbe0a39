// Reading ZIP archives (stored or deflated entries), e.g. EDM's dataset zips.
import { openSync, readSync, fstatSync, closeSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';

export class ZipError extends Error {
  readonly code = 'ERR_ZIP';
}

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

export class ZipReader {
  readonly entries = new Map<string, ZipEntry>();
  private fd: number;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
    try {
      this.readDirectory();
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }

  private read(pos: number, len: number): Buffer {
    const b = Buffer.alloc(len);
    const n = readSync(this.fd, b, 0, len, pos);
    if (n !== len) throw new ZipError(`${this.path}: truncated archive (wanted ${len} bytes at ${pos})`);
    return b;
  }

  private readDirectory(): void {
    const size = fstatSync(this.fd).size;
    const tail = Math.min(size, 65557);
    const t = this.read(size - tail, tail);
    let eocd = -1;
    for (let i = t.length - 22; i >= 0; i--) if (t.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
    if (eocd < 0) throw new ZipError(`${this.path}: not a zip archive (no end-of-central-directory record)`);
    let count = t.readUInt16LE(eocd + 10);
    let dirSize = t.readUInt32LE(eocd + 12);
    let dirOffset = t.readUInt32LE(eocd + 16);
    if (dirOffset === 0xffffffff || count === 0xffff) {
      // ZIP64: locator precedes the EOCD
      const loc = eocd - 20;
      if (loc < 0 || t.readUInt32LE(loc) !== 0x07064b50) throw new ZipError(`${this.path}: broken ZIP64 archive`);
      const z = this.read(Number(t.readBigUInt64LE(loc + 8)), 56);
      count = Number(z.readBigUInt64LE(32));
      dirSize = Number(z.readBigUInt64LE(40));
      dirOffset = Number(z.readBigUInt64LE(48));
    }
    if (dirOffset + dirSize > size) throw new ZipError(`${this.path}: truncated archive (central directory past the end)`);
    const d = this.read(dirOffset, dirSize);
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (d.readUInt32LE(p) !== 0x02014b50) throw new ZipError(`${this.path}: corrupt central directory`);
      const method = d.readUInt16LE(p + 10);
      let csize = d.readUInt32LE(p + 20);
      let usize = d.readUInt32LE(p + 24);
      const nlen = d.readUInt16LE(p + 28);
      const elen = d.readUInt16LE(p + 30);
      const clen = d.readUInt16LE(p + 32);
      let local = d.readUInt32LE(p + 42);
      const name = d.toString('utf8', p + 46, p + 46 + nlen);
      let e = p + 46 + nlen;
      const eend = e + elen;
      while (e + 4 <= eend) {
        const id = d.readUInt16LE(e);
        const len = d.readUInt16LE(e + 2);
        if (id === 1) {
          let q = e + 4;
          if (usize === 0xffffffff) { usize = Number(d.readBigUInt64LE(q)); q += 8; }
          if (csize === 0xffffffff) { csize = Number(d.readBigUInt64LE(q)); q += 8; }
          if (local === 0xffffffff) { local = Number(d.readBigUInt64LE(q)); }
        }
        e += 4 + len;
      }
      this.entries.set(name, { name, method, compressedSize: csize, size: usize, localOffset: local });
      p = eend + clen;
    }
  }

  readEntry(name: string): Buffer {
    const e = this.entries.get(name);
    if (!e) throw new ZipError(`${this.path}: has no entry '${name}'`);
    const h = this.read(e.localOffset, 30);
    if (h.readUInt32LE(0) !== 0x04034b50) throw new ZipError(`${this.path}: corrupt local header of '${name}'`);
    const start = e.localOffset + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
    const data = this.read(start, e.compressedSize);
    if (e.method === 0) return data;
    if (e.method === 8) {
      try {
        return inflateRawSync(data);
      } catch (err) {
        throw new ZipError(`${this.path}: '${name}' is corrupt (${err instanceof Error ? err.message : String(err)})`);
      }
    }
    throw new ZipError(`${this.path}: '${name}' uses unsupported compression method ${e.method}`);
  }

  close(): void {
    closeSync(this.fd);
  }
}
