// Defensive safetensors header parsing: lying, truncated and malformed headers are errors that
// name the problem (no addon needed).
import test from 'ava';
import { openSync, closeSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseHeader, SafetensorsError } from '../../src/io/safetensors-header.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir();
let n = 0;

function file(header: unknown, data: Buffer | number = 0, lengthOverride?: bigint): string {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(json.length));
  const body = typeof data === 'number' ? Buffer.alloc(data) : data;
  const p = path.join(dir, `f${n++}.safetensors`);
  writeFileSync(p, Buffer.concat([len, json, body]));
  return p;
}

function parse(p: string) {
  const fd = openSync(p, 'r');
  try {
    return parseHeader(fd, p);
  } finally {
    closeSync(fd);
  }
}

test('a valid header gives entries with absolute offsets and metadata', (t) => {
  const p = file({ __metadata__: { config: '{}' }, a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] }, b: { dtype: 'I64', shape: [1], data_offsets: [16, 24] } }, 24);
  const h = parse(p);
  t.deepEqual(h.metadata, { config: '{}' });
  t.is(h.entries.length, 2);
  const a = h.entries.find((e) => e.name === 'a')!;
  t.deepEqual(a.shape, [2, 2]);
  t.is(a.dtype, 'float32');
  t.is(a.end - a.begin, 16);
  t.true(a.begin > 8);
});

const bad: [string, () => string, RegExp][] = [
  ['file shorter than 8 bytes', () => { const p = path.join(dir, 'short'); writeFileSync(p, Buffer.alloc(5)); return p; }, /shorter than the 8-byte/],
  ['header length beyond the file', () => file({}, 0, 10_000n), /exceeds the file/],
  ['absurd header length', () => file({}, 0, 2n ** 62n), /exceeds the file/],
  ['header not JSON', () => file('{"a": [1,', 0), /not JSON/],
  ['header is an array', () => file('[1,2]', 0), /not a JSON object/],
  ['unknown dtype', () => file({ a: { dtype: 'F8', shape: [1], data_offsets: [0, 1] } }, 1), /unsupported dtype "F8"/],
  ['negative shape', () => file({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /invalid shape/],
  ['fractional shape', () => file({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, 4), /invalid shape/],
  ['offsets reversed', () => file({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, 4), /invalid data_offsets/],
  ['offsets missing', () => file({ a: { dtype: 'F32', shape: [1] } }, 4), /invalid data_offsets/],
  ['entry past the end (truncated data)', () => file({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8), /truncated/],
  ['size lies about the shape', () => file({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 12] } }, 16), /needs 16/],
  ['overlapping entries', () => file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12), /overlap/],
  ['metadata not strings', () => file({ __metadata__: { x: 1 } }, 0), /must be a string/],
  ['entry not an object', () => file({ a: 3 }, 0), /is not an object/],
];

for (const [what, make, msg] of bad) {
  test(`rejects: ${what}`, (t) => {
    const err = t.throws(() => parse(make()), { instanceOf: SafetensorsError });
    t.regex(err!.message, msg);
  });
}
