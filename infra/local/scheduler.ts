/**
 * The local stand-in for an EventBridge schedule rule (`rate(...)`) targeting a Lambda function.
 *
 * Every `everyMs` the handler gets the same `Scheduled Event` object EventBridge would send. Unlike
 * EventBridge, runs never overlap: a tick that comes due while the previous run is still going waits
 * for it (ticks missed meanwhile are coalesced into one, no burst of catch-up runs). Errors are logged
 * (or passed to `onError`), never thrown: the next tick comes anyway, as with a failed async invoke.
 */
import { randomUUID } from 'node:crypto';
import type { ScheduledEvent } from 'aws-lambda';

export type ScheduleHandler = (event: ScheduledEvent) => Promise<unknown>;

/**
 * The local builder tick's period (the stand-in for the 1-minute EventBridge rule), which also drives
 * the import sweeper: `SHOAL_LOCAL_TICK_S` seconds when set (a positive number), else `fallbackMs`
 * (30 s for `npm start`). Shorter catches up unindexed writes and re-queues stuck imports sooner, at
 * the cost of a catalog scan per tick.
 */
export function tickPeriodMs(env: Record<string, string | undefined>, fallbackMs: number): number {
  const raw = env.SHOAL_LOCAL_TICK_S;
  if (raw === undefined || raw === '') return fallbackMs;
  const s = Number(raw);
  if (!Number.isFinite(s) || s <= 0) throw new RangeError(`SHOAL_LOCAL_TICK_S must be a positive number, got ${raw}`);
  return s * 1000;
}

export interface ScheduleOptions {
  everyMs: number;
  handler: ScheduleHandler;
  /** Rule name, used in the event's `resources` ARN and in log lines. */
  name: string;
  /** Run once right away instead of waiting `everyMs` for the first tick (EventBridge waits). Default false. */
  runOnStart?: boolean;
  region?: string;
  account?: string;
  onError?: (err: unknown) => void;
}

export interface Schedule {
  /** Cancels future ticks and resolves once a run in progress has finished. */
  stop(): Promise<void>;
}

export function startSchedule(opts: ScheduleOptions): Schedule {
  if (!Number.isFinite(opts.everyMs) || opts.everyMs <= 0) {
    throw new RangeError(`everyMs must be a positive number, got ${opts.everyMs}`);
  }
  const region = opts.region ?? process.env.AWS_REGION ?? 'us-east-1';
  const account = opts.account ?? '000000000000';
  const ruleArn = `arn:aws:events:${region}:${account}:rule/${opts.name}`;
  const onError =
    opts.onError ??
    ((err: unknown) => {
      console.error(`[schedule ${opts.name}] run failed`, err);
    });

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let nextDue = Date.now() + (opts.runOnStart ? 0 : opts.everyMs);

  const run = async (due: number): Promise<void> => {
    const event: ScheduledEvent = {
      version: '0',
      id: randomUUID(),
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account,
      // EventBridge stamps the scheduled time, to the second, without milliseconds.
      time: new Date(Math.floor(due / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      region,
      resources: [ruleArn],
      detail: {},
    };
    try {
      await opts.handler(event);
    } catch (err) {
      try {
        onError(err);
      } catch {
        // the reporter must not break the schedule
      }
    }
  };

  const arm = (): void => {
    if (stopped) return;
    timer = setTimeout(tick, Math.max(0, nextDue - Date.now()));
  };

  const tick = (): void => {
    timer = undefined;
    if (stopped) return;
    const due = nextDue;
    running = run(due).finally(() => {
      running = undefined;
      // Next slot on the fixed grid after now: ticks missed during a long run collapse into one.
      const now = Date.now();
      nextDue = due + opts.everyMs;
      if (nextDue <= now) nextDue = now;
      arm();
    });
  };

  arm();

  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      while (running) await running;
    },
  };
}
