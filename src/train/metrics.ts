// A step's scalar metrics: read from the device in one go and averaged over the processes of a job;
// metrics.jsonl, one JSON object per line, appended (survives resume).
import { appendFileSync } from 'node:fs';
import { fileError } from '../util/fs.js';
import type { Tensor } from '../tensor/tensor.js';
import { tidy, dispose } from '../tensor/scope.js';
import { stack } from '../tensor/create.js';
import type { Distributed } from '../distributed/context.js';

export class MetricsLog {
  constructor(readonly path: string) {}
  write(record: Record<string, number | string | boolean | null>): void {
    try {
      appendFileSync(this.path, `${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`);
    } catch (e) {
      throw fileError('appending to the metrics log', this.path, e);
    }
  }
}

/**
 * The values of named scalar tensors as numbers, with one device-to-host read for all of them (one
 * sync on CUDA, not one per metric), averaged over the processes (each computed them on its slice of
 * the global batch). The tensors are disposed.
 */
export function readScalars(named: Record<string, Tensor>, dist: Distributed): Record<string, number> {
  const names = Object.keys(named);
  const values = names.length
    ? tidy(() => {
      const v = stack(names.map((k) => named[k]!.to('float64')));
      if (!dist.enabled) return v.toFloat64Array();
      const all = v.to('cpu');
      dist.sum(all);
      return all.div(dist.size).toFloat64Array();
    })
    : new Float64Array(0);
  dispose(Object.values(named));
  const out: Record<string, number> = {};
  names.forEach((k, i) => { out[k] = values[i]!; });
  return out;
}
