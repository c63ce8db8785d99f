/**
 * What the CLI prints: tables and JSON on stdout (the only thing scripts read), messages and progress on
 * stderr. Progress is drawn only on a terminal or with `--progress`; off a terminal it is one line every few
 * seconds, so a CI log gets a heartbeat instead of thousands of carriage returns.
 */

/** A mistake in the command line or its input files: exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export function printJson(io: Io, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A text table; `undefined`/`null` cells print as `-`. */
export function table(io: Io, headers: string[], rows: unknown[][]): void {
  const cells = rows.map((r) => r.map(cell));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  io.stdout.write(`${line(headers)}\n`);
  for (const r of cells) io.stdout.write(`${line(r)}\n`);
}

function cell(v: unknown): string {
  if (v === undefined || v === null) return '-';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export interface ProgressOptions {
  enabled: boolean;
  label: string;
  unit: string;
  total?: number;
  /** Off a terminal: seconds between lines (default 5). */
  intervalS?: number;
}

/** A progress bar: done/total, rate per second and ETA. */
export class Progress {
  private readonly started = Date.now();
  private lastDraw = 0;
  private done = 0;
  private note = '';
  private readonly tty: boolean;

  constructor(
    private readonly io: Io,
    private readonly options: ProgressOptions,
  ) {
    this.tty = Boolean(io.stderr.isTTY);
  }

  set total(total: number | undefined) {
    this.options.total = total;
  }

  update(done: number, note = ''): void {
    this.done = done;
    this.note = note;
    if (!this.options.enabled) return;
    const now = Date.now();
    const every = this.tty ? 100 : (this.options.intervalS ?? 5) * 1000;
    if (now - this.lastDraw < every) return;
    this.lastDraw = now;
    this.draw(false);
  }

  finish(note = this.note): void {
    this.note = note;
    if (this.options.enabled) this.draw(true);
  }

  private draw(final: boolean): void {
    const { total, unit, label } = this.options;
    const elapsed = (Date.now() - this.started) / 1000;
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const parts = [label];
    if (total !== undefined && total > 0) {
      const frac = Math.min(1, this.done / total);
      if (this.tty) parts.push(`[${'#'.repeat(Math.round(frac * 24)).padEnd(24, '-')}]`);
      parts.push(`${this.done}/${total} ${unit}`, `${(frac * 100).toFixed(1)}%`);
    } else parts.push(`${this.done} ${unit}`);
    parts.push(`${rate >= 100 ? Math.round(rate) : rate.toFixed(1)} ${unit}/s`);
    if (final) parts.push(`in ${formatDuration(elapsed)}`);
    else if (total !== undefined && rate > 0) parts.push(`ETA ${formatDuration((total - this.done) / rate)}`);
    if (this.note) parts.push(this.note);
    const text = parts.join('  ');
    if (this.tty) this.io.stderr.write(`\r\x1b[K${text}${final ? '\n' : ''}`);
    else this.io.stderr.write(`${text}\n`);
  }
}
