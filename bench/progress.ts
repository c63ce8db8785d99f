/** A one-line progress bar on stderr (so stdout stays a clean report). */
export class Progress {
  private doneSteps = 0;
  private readonly started = performance.now();

  constructor(private readonly total: number) {}

  step(label: string): void {
    this.doneSteps = Math.min(this.doneSteps + 1, this.total);
    const width = 30;
    const filled = Math.round((this.doneSteps / this.total) * width);
    const secs = ((performance.now() - this.started) / 1000).toFixed(0);
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
    const line = `[${bar}] ${this.doneSteps}/${this.total} ${secs}s ${label}`;
    if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${line}`);
    else process.stderr.write(`${line}\n`);
  }

  done(): void {
    if (process.stderr.isTTY) process.stderr.write('\n');
  }
}
