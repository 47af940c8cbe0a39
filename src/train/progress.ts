// Progress reporting: a live bar on a TTY, plain lines otherwise (or when CI is set). Speed and ETA
// come from the recent rate (the last minute, at least the last few updates), so that they recover
// quickly after a slowdown or a change of pace (e.g. evaluations, another process on the machine).

export interface ProgressOptions {
  total: number;
  start?: number;
  label?: string;
  /** plain-line interval in steps when not on a TTY */
  every?: number;
  stream?: NodeJS.WriteStream | undefined;
  /** print nothing (e.g. ranks other than 0 of a multi-process job) */
  quiet?: boolean;
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

export function formatMetric(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toFixed(4);
}

export class Progress {
  private readonly t0 = performance.now();
  private readonly start: number;
  private readonly live: boolean;
  private lastDraw = 0;
  private readonly stream: NodeJS.WriteStream;
  /** (time ms, step) of recent updates, oldest first */
  private readonly recent: [number, number][] = [];

  constructor(private readonly o: ProgressOptions) {
    this.start = o.start ?? 0;
    this.stream = o.stream ?? process.stderr;
    this.live = !!this.stream.isTTY && !process.env.CI;
  }

  /** Steps per second over the recent window (since the start while that is short). */
  rate(now: number, step: number): number {
    this.recent.push([now, step]);
    while (this.recent.length > 3 && now - this.recent[0]![0] > Progress.WINDOW_MS) this.recent.shift();
    const [t0, s0] = this.recent.length > 1 ? this.recent[0]! : [this.t0, this.start];
    return (step - s0) / Math.max((now - t0) / 1000, 1e-9);
  }

  static readonly WINDOW_MS = 60_000;

  update(step: number, metrics: Record<string, number> = {}, unit = 'it'): void {
    if (this.o.quiet) return;
    const done = step - this.start;
    const now = performance.now();
    const elapsed = (now - this.t0) / 1000;
    const rate = this.rate(now, step);
    const eta = (this.o.total - step) / rate;
    const m = Object.entries(metrics).map(([k, v]) => `${k}=${formatMetric(v)}`).join(' ');
    const head = `${this.o.label ? `${this.o.label} ` : ''}${step}/${this.o.total}`;
    const speed = rate >= 1 ? `${rate.toFixed(2)} ${unit}/s` : `${(1 / rate).toFixed(2)} s/${unit}`;
    if (this.live) {
      if (now - this.lastDraw < 100 && step < this.o.total) return;
      this.lastDraw = now;
      const width = 24;
      const filled = Math.round((width * step) / Math.max(this.o.total, 1));
      const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
      const line = `${head} ${bar} ${speed} eta ${fmtTime(eta)} ${m}`;
      const cols = this.stream.columns ?? 120;
      this.stream.write(`\r${line.slice(0, cols - 1).padEnd(Math.min(cols - 1, line.length))}\x1b[K`);
      if (step >= this.o.total) this.stream.write('\n');
    } else {
      const every = this.o.every ?? Math.max(1, Math.round(this.o.total / 50));
      if (step % every !== 0 && step !== this.o.total && done !== 1) return;
      this.stream.write(`${head} ${speed} elapsed ${fmtTime(elapsed)} eta ${fmtTime(eta)} ${m}\n`);
    }
  }

  /** Ends a live line before other output. */
  break(): void {
    if (this.live) this.stream.write('\n');
  }
}
