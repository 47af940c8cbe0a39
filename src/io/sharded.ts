// The manifests of sharded datasets written by the CLI (`dmd pairs`, `dmd latents`): a JSON file beside
// safetensors shards that each cover [start, start + count) of the items. Reading one checks it against
// its schema and that the shards tile the items; a shard counts as complete when its file (written last,
// atomically) holds a tensor with its count of rows.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { readRegularFile } from '../util/fs.js';
import { formatZodError } from '../util/zod.js';
import { readSafetensorsHeader } from './safetensors.js';

export interface ShardEntry { file: string; start: number; count: number }

export interface ManifestKind {
  /** the manifest's file name, e.g. pairs.json */
  name: string;
  /** what it is, e.g. 'pairs' */
  what: string;
  /** the items, e.g. 'pairs', 'images' */
  items: string;
  /** the command that makes it, for the messages: 'dmd pairs' */
  command: string;
  /** the error class of the family */
  error: new (message: string) => Error;
}

export function readShardedManifest<S extends z.ZodType<{ count: number; shards: ShardEntry[] }>>(dir: string, schema: S, k: ManifestKind): z.infer<S> {
  const file = path.join(dir, k.name);
  if (!existsSync(file)) throw new k.error(`${dir}: no ${k.name} (make the dataset with '${k.command} --out ${dir}')`);
  let raw: unknown;
  try {
    raw = JSON.parse(readRegularFile(file, `${k.what} manifest`, 64 * 2 ** 20).toString('utf8'));
  } catch (e) {
    throw new k.error(`${file}: unreadable (${e instanceof Error ? e.message : String(e)}); re-run '${k.command} --out ${dir}' with its settings to repair it`);
  }
  const r = schema.safeParse(raw);
  if (!r.success) throw new k.error(`${file}: not a valid dmd-torch ${k.what} manifest (${formatZodError(r.error)})`);
  const m = r.data as z.infer<S> & { count: number; shards: ShardEntry[] };
  let next = 0;
  for (const sh of m.shards) {
    if (sh.start !== next) throw new k.error(`${file}: shard ${sh.file} starts at ${sh.start}, expected ${next} (the manifest was edited or damaged)`);
    next += sh.count;
  }
  if (next !== m.count) throw new k.error(`${file}: its shards hold ${next} ${k.items} but it says count ${m.count} (the manifest was edited or damaged)`);
  return m;
}

/** Whether a shard's file exists and its tensor `key` has the shard's count of rows. */
export function shardComplete(dir: string, s: ShardEntry, key: string): boolean {
  const f = path.join(dir, s.file);
  if (!existsSync(f)) return false;
  try {
    return readSafetensorsHeader(f).entries.some((e) => e.name === key && e.shape[0] === s.count);
  } catch {
    return false;
  }
}
