/**
 * A progress bar for long jobs: on a TTY one line redrawn in place (bar, counts, named
 * figures, rate and ETA); otherwise plain lines at most every `intervalMs` and at the end,
 * so logs stay readable in CI and files.
 */
export interface ProgressOptions {
  /** where to draw (default process.stderr) */
  stream?: NodeJS.WriteStream;
  /** plain-line interval when not a TTY (default 10 s) */
  intervalMs?: number;
  /** force plain lines or the redrawn bar */
  tty?: boolean;
  width?: number;
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const ss = String(Math.floor(s % 60)).padStart(2, '0');
  return h > 0 ? `${h}:${String(m % 60).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export class Progress {
  private readonly start = Date.now();
  private lastPrint = 0;
  private done = 0;
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;

  constructor(readonly label: string, readonly total: number, private readonly opts: ProgressOptions = {}) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? Boolean(this.stream.isTTY);
  }

  /** Sets the count done and redraws (rate-limited when not a TTY). */
  update(done: number, figures: Record<string, number | string> = {}): void {
    this.done = done;
    const now = Date.now();
    const finished = done >= this.total;
    if (!this.tty && !finished && now - this.lastPrint < (this.opts.intervalMs ?? 10000)) return;
    if (this.tty && !finished && now - this.lastPrint < 100) return;
    this.lastPrint = now;
    const elapsed = (now - this.start) / 1000;
    const rate = done / Math.max(elapsed, 1e-9);
    const eta = (this.total - done) / rate;
    const figs = Object.entries(figures).map(([k, v]) => `${k} ${typeof v === 'number' ? v.toFixed(4) : v}`).join('  ');
    const pct = this.total > 0 ? done / this.total : 1;
    const counts = `${done}/${this.total}`;
    const times = `${fmtTime(elapsed)}<${fmtTime(eta)}, ${rate >= 1 ? `${rate.toFixed(2)}/s` : `${(1 / rate).toFixed(2)}s/it`}`;
    if (this.tty) {
      const width = this.opts.width ?? 24;
      const fill = Math.round(pct * width);
      const bar = '█'.repeat(fill) + '░'.repeat(width - fill);
      this.stream.write(`\r\x1b[2K${this.label} ${bar} ${counts} [${times}] ${figs}`);
      if (finished) this.stream.write('\n');
    } else {
      this.stream.write(`${this.label} ${(pct * 100).toFixed(0).padStart(3)}% ${counts} [${times}] ${figs}\n`);
    }
  }

  /** Advances by n. */
  tick(n = 1, figures: Record<string, number | string> = {}): void {
    this.update(this.done + n, figures);
  }

  /** Ends the bar (moves to a new line on a TTY if it was not finished). */
  end(figures: Record<string, number | string> = {}): void {
    if (this.done < this.total) {
      this.total !== this.done && this.tty && this.stream.write('\n');
      if (!this.tty) this.update(this.done, figures);
    }
  }
}
