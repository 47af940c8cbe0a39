// metrics.jsonl: one JSON object per line, appended (survives resume).
import { appendFileSync } from 'node:fs';

export class MetricsLog {
  constructor(readonly path: string) {}
  write(record: Record<string, number | string | boolean | null>): void {
    appendFileSync(this.path, `${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`);
  }
}
