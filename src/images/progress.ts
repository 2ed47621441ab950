/**
 * A one-line progress display on stderr for long layer scans. It only draws on a TTY, and
 * only once a scan has run for a second, so quick runs and pipelines stay silent.
 */
const DELAY_MS = 1000;
const REDRAW_MS = 200;

export interface ProgressTask {
  advance(bytes: number): void;
  finish(): void;
}

const mb = (n: number): string => (n / 1e6).toFixed(1);

export class Progress {
  private readonly tasks = new Set<{ name: string; total: number; done: number }>();
  private started = 0;
  private finished = 0;
  private lastDraw = 0;
  private drawn = false;
  private firstStart = 0;

  constructor(
    private readonly enabled: boolean,
    private readonly out: Pick<NodeJS.WriteStream, 'write' | 'columns'> = process.stderr,
    private readonly delayMs = DELAY_MS,
  ) {}

  start(name: string, totalBytes: number): ProgressTask {
    const task = { name, total: totalBytes, done: 0 };
    if (!this.enabled) return { advance: () => undefined, finish: () => undefined };
    if (this.started === 0) this.firstStart = Date.now();
    this.started++;
    this.tasks.add(task);
    return {
      advance: (n) => {
        task.done += n;
        this.maybeDraw();
      },
      finish: () => {
        this.tasks.delete(task);
        this.finished++;
        // Nothing left to show: clear the line rather than leave a stale one behind.
        if (this.tasks.size === 0) this.done();
        else this.maybeDraw();
      },
    };
  }

  private maybeDraw(): void {
    const now = Date.now();
    if (now - this.firstStart < this.delayMs || now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    let done = 0;
    let total = 0;
    for (const t of this.tasks) {
      done += t.done;
      total += t.total;
    }
    const current = [...this.tasks]
      .map((t) => t.name)
      .slice(0, 2)
      .join(', ');
    const line = `scanning images: ${this.finished}/${this.started} done, ${mb(done)}/${mb(total)} MB of active layers${current ? ` (${current}${this.tasks.size > 2 ? ', …' : ''})` : ''}`;
    const width = this.out.columns ? this.out.columns - 1 : 120;
    this.out.write(`\r${line.slice(0, width).padEnd(Math.min(width, 120))}`);
    this.drawn = true;
  }

  /** Clear the line (call once everything is resolved). */
  done(): void {
    if (this.drawn) this.out.write('\r\x1b[K');
    this.drawn = false;
  }
}
