// File-system helpers that fail fast with a message naming the path and the fix: directory creation
// (Node's recursive mkdir loops forever under pseudo file systems such as /proc), reading files that
// must be regular files (a config at /dev/zero would otherwise be read until memory runs out), and
// atomic writes (temporary file, fsync, rename, fsync of the directory) whose leftovers can be recognised and removed.
import { closeSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, statSync, unlinkSync, writeSync, lstatSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';

export class FileError extends Error {
  readonly code = 'ERR_FILE';
}

const ERRNO_TEXT: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  EISDIR: 'is a directory',
  ENOTDIR: 'a parent is not a directory',
  ENOENT: 'no such file or directory',
  EMFILE: 'too many open files',
  EIO: 'input/output error (a failing disk or network file system?)',
  EFBIG: 'file too large for the file system',
  ENAMETOOLONG: 'file name too long',
};

/**
 * A file-system error as one line naming what was done, the path and the cause in words
 * ("writing checkpoint runs/x/checkpoints/...: no space left on device"). Errors that are already ours pass through.
 */
export function fileError(action: string, file: string, e: unknown): Error {
  if (e instanceof FileError) return e;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (!code || !(code in ERRNO_TEXT) && !code.startsWith('E')) return e instanceof Error ? e : new Error(String(e));
  return new FileError(`${action} ${file}: ${ERRNO_TEXT[code] ?? (e as Error).message}`);
}

const PSEUDO_ROOTS = ['/proc', '/sys', '/dev'];

/**
 * Creates a directory and its missing parents one level at a time (never Node's recursive mkdir,
 * which spins on some pseudo file systems). `what` names the setting in errors (e.g. "--out").
 */
export function ensureDir(dir: string, what = 'directory'): string {
  if (typeof dir !== 'string' || dir.trim() === '') throw new FileError(`${what} is empty; give a directory path`);
  const abs = path.resolve(dir);
  if (PSEUDO_ROOTS.some((r) => abs === r || abs.startsWith(`${r}/`)))
    throw new FileError(`${what} ${dir}: is under ${abs.split('/').slice(0, 2).join('/')}, a pseudo file system where files cannot be written; choose a normal directory`);
  const missing: string[] = [];
  let p = abs;
  for (;;) {
    let st;
    try {
      st = statSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        // a dangling symlink is "missing" to stat but not creatable
        try {
          if (lstatSync(p).isSymbolicLink()) throw new FileError(`${what} ${dir}: ${p} is a dangling symbolic link; remove it or point it at a directory`);
        } catch (le) {
          if (le instanceof FileError) throw le;
        }
        missing.push(p);
        const parent = path.dirname(p);
        if (parent === p) break;
        p = parent;
        continue;
      }
      if (code === 'ENOTDIR') throw new FileError(`${what} ${dir}: a parent of it is a file, not a directory`);
      throw new FileError(`${what} ${dir}: cannot be used (${(e as Error).message})`);
    }
    if (!st.isDirectory()) throw new FileError(`${what} ${dir}: ${p === abs ? 'exists and is a file' : `${p} is a file`}, not a directory; choose another path`);
    break;
  }
  for (const m of missing.reverse()) {
    try {
      mkdirSync(m);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue;
      throw new FileError(`${what} ${dir}: cannot create ${m} (${(code && ERRNO_TEXT[code]) || (e as Error).message})`);
    }
  }
  return abs;
}

/** Ensures the directory that will hold `file` exists (see ensureDir). */
export function ensureParentDir(file: string, what = 'output file'): void {
  if (typeof file !== 'string' || file.trim() === '') throw new FileError(`${what} is empty; give a file path`);
  ensureDir(path.dirname(path.resolve(file)), what);
}

/**
 * Reads a file that must be a regular file of at most maxBytes (configs, manifests, JSON): a
 * directory, device or FIFO is refused before reading, and so is a file that is too large.
 */
export function readRegularFile(file: string, what = 'file', maxBytes = 64 * 2 ** 20): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      let dangling = false;
      try {
        dangling = lstatSync(file).isSymbolicLink();
      } catch {
        /* does not exist at all */
      }
      throw new FileError(`${what} ${file}: ${dangling ? 'is a dangling symbolic link' : 'not found'}`);
    }
    if (code === 'EISDIR') throw new FileError(`${what} ${file}: is a directory, expected a file`);
    if (code === 'EACCES') throw new FileError(`${what} ${file}: permission denied`);
    throw new FileError(`${what} ${file}: cannot be opened (${(e as Error).message})`);
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new FileError(`${what} ${file}: is a directory, expected a file`);
    if (!st.isFile()) throw new FileError(`${what} ${file}: is not a regular file (a device, pipe or socket)`);
    if (st.size > maxBytes) throw new FileError(`${what} ${file}: is ${(st.size / 2 ** 20).toFixed(1)} MiB, more than the ${(maxBytes / 2 ** 20).toFixed(0)} MiB expected of it`);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The suffix of temporary files of atomic writes: `<file>.tmp-<pid>`. */
export const TEMP_SUFFIX = /\.tmp-\d+$/;

/** The temporary file an atomic write of `file` goes through (recognised by TEMP_SUFFIX). */
export function temporaryPath(file: string): string {
  return `${file}.tmp-${process.pid}`;
}

/** Writes all of `data` at the file position (writeSync may write less than asked). */
export function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done);
}

function fsyncDirectory(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    /* some file systems cannot sync a directory; the rename itself is still atomic */
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/**
 * The one way files are written: into a temporary file beside `file`, flushed to disk (fsync), renamed
 * over `file`, then the directory flushed so that the rename survives a crash. A reader sees the old
 * file or the new one, never a part. `data` is the content, or a function that writes it to the open
 * descriptor (large files written piece by piece). On failure the temporary file is removed and the
 * error names `what` was being written, the path and the cause.
 */
export function atomicWrite(file: string, data: string | Uint8Array | ((fd: number) => void), what = 'file'): void {
  const tmp = temporaryPath(file);
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'w');
    if (typeof data === 'function') data(fd);
    else writeAll(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, file);
  } catch (e) {
    if (fd !== null) {
      try { closeSync(fd); } catch { /* already closed */ }
    }
    try { unlinkSync(tmp); } catch { /* not created */ }
    throw fileError(`writing ${what}`, file, e);
  }
  fsyncDirectory(path.dirname(path.resolve(file)));
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes leftovers of interrupted atomic writes (of processes no longer running) in a directory; returns their names. */
export function removeStrayTemporaries(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const stray = names.filter((n) => TEMP_SUFFIX.test(n) && !alive(Number(/\.tmp-(\d+)$/.exec(n)![1])));
  for (const n of stray) {
    try {
      unlinkSync(path.join(dir, n));
    } catch {
      /* gone already */
    }
  }
  return stray;
}

/** hashes already computed in this process, keyed by device, inode, size and modification time */
const shaMemo = new Map<string, string>();

/**
 * SHA-256 of a file (hex), read in 1 MiB pieces. A file hashed before in this process and unchanged
 * since (same device, inode, size and modification time) is not read again: a run names its teacher's
 * hash in several places (pairs cache, pairs check, checkpoints, the generator), and a 1 GB teacher
 * takes seconds to hash.
 */
export function fileSha256(file: string): string {
  const fd = openSync(file, 'r');
  try {
    const st = fstatSync(fd, { bigint: true });
    const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
    const known = shaMemo.get(key);
    if (known) return known;
    const h = createHash('sha256');
    const buf = Buffer.alloc(1 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (!n) break;
      h.update(buf.subarray(0, n));
    }
    const sha = h.digest('hex');
    shaMemo.set(key, sha);
    return sha;
  } finally {
    closeSync(fd);
  }
}

/**
 * SHA-256 of a file, or of a folder (a diffusers model): the hash of its regular files' relative paths
 * and hashes, in sorted order, so that a folder with the same files hashes the same wherever it is.
 */
export function pathSha256(p: string): string {
  if (!statSync(p).isDirectory()) return fileSha256(p);
  const lines: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.isFile()) lines.push(`${path.relative(p, full).split(path.sep).join('/')}\0${fileSha256(full)}\n`);
    }
  };
  walk(p);
  return createHash('sha256').update(lines.join('')).digest('hex');
}
