// Reading ZIP archives (stored or deflated entries, ZIP64), e.g. EDM's dataset zips and torch.save
// files, with the CRC-32 of every entry checked.
//
// Why our own reader rather than yauzl or fflate: the image loader reads random entries
// synchronously, one batch at a time, from archives that may not fit in memory (EDM's ImageNet-64
// zip is ~12 GB). This reader keeps only the central directory and reads an entry with one positioned
// read. yauzl is asynchronous only (a promise per entry inside a synchronous training step) and slow to
// open; fflate's unzipSync needs the whole archive in memory and extracts every entry up front. npm run
// bench:zip (60 000 PNG entries, 34 MiB, 2 cores): ours opens in 67 ms and reads 1000 random entries in
// 11 ms; yauzl takes 3.5 s and 103 ms; fflate 146 ms and 1 ms, holding archive and entries in memory.
// Inflation and CRC-32 are node:zlib's.
import { openSync, readSync, fstatSync, closeSync } from 'node:fs';
import { inflateRawSync, crc32 } from 'node:zlib';

export class ZipError extends Error {
  readonly code = 'ERR_ZIP';
}

export interface ZipEntry {
  name: string;
  method: number;
  crc: number;
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
      const crc = d.readUInt32LE(p + 16);
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
      this.entries.set(name, { name, method, crc, compressedSize: csize, size: usize, localOffset: local });
      p = eend + clen;
    }
  }

  /** An entry's bytes, decompressed and checked against its CRC-32. */
  readEntry(name: string): Buffer {
    const e = this.entries.get(name);
    if (!e) throw new ZipError(`${this.path}: has no entry '${name}'`);
    const h = this.read(e.localOffset, 30);
    if (h.readUInt32LE(0) !== 0x04034b50) throw new ZipError(`${this.path}: corrupt local header of '${name}'`);
    const start = e.localOffset + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
    let data = this.read(start, e.compressedSize);
    if (e.method === 8) {
      try {
        data = inflateRawSync(data);
      } catch (err) {
        throw new ZipError(`${this.path}: '${name}' is corrupt (${err instanceof Error ? err.message : String(err)})`);
      }
    } else if (e.method !== 0) {
      throw new ZipError(`${this.path}: '${name}' uses unsupported compression method ${e.method}`);
    }
    if (data.length !== e.size || crc32(data) >>> 0 !== e.crc)
      throw new ZipError(`${this.path}: '${name}' is corrupt (CRC-32 or size mismatch; the file was damaged or truncated)`);
    return data;
  }

  /** Reads every entry, checking sizes and CRC-32s (throws a ZipError naming the first damaged one). */
  verify(): void {
    for (const name of this.entries.keys()) this.readEntry(name);
  }

  close(): void {
    closeSync(this.fd);
  }
}
