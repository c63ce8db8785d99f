/**
 * Shoal's one logger (Lambda Powertools): structured JSON on AWS, with the Lambda request id
 * once a handler is wrapped in `injectLambdaContext`, and per-call keys such as `collection`.
 * The level comes from POWERTOOLS_LOG_LEVEL (or AWS_LAMBDA_LOG_LEVEL), default INFO.
 *
 * With SHOAL_LOG_FORMAT=pretty (the local server sets it) each entry is one human-readable line
 * instead: JSON per line is what CloudWatch Logs Insights wants, not what a terminal does.
 */
import { Logger, LogLevelThreshold, type LogItem } from '@aws-lambda-powertools/logger';

/** Keys every entry carries; the pretty form leaves them out, they are the same on every line. */
const STANDARD_KEYS = new Set([
  'level',
  'message',
  'timestamp',
  'service',
  'sampling_rate',
  'xray_trace_id',
  'cold_start',
  'function_arn',
  'function_memory_size',
  'function_name',
  'function_request_id',
]);

function levelName(level: number): string {
  for (const [name, n] of Object.entries(LogLevelThreshold)) if (n === level) return name;
  return String(level);
}

function pretty(value: unknown): string {
  if (value !== null && typeof value === 'object') {
    const e = value as { name?: unknown; message?: unknown };
    // Powertools formats errors as {name, location, message, stack}: name and message are what a reader needs.
    if (typeof e.message === 'string' && typeof e.name === 'string') return JSON.stringify(`${e.name}: ${e.message}`);
    return JSON.stringify(value);
  }
  return typeof value === 'string' && !/[\s"=]/.test(value) && value !== '' ? value : JSON.stringify(value);
}

/** One log entry as a single line: `12:00:01.234 INFO  message key=value …`. */
export function prettyLine(level: number, attributes: Record<string, unknown>): string {
  const time = typeof attributes.timestamp === 'string' ? attributes.timestamp.slice(11, 23) : '';
  const rest = Object.entries(attributes)
    .filter(([k, v]) => !STANDARD_KEYS.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${pretty(v)}`);
  return [time, levelName(level).padEnd(5), String(attributes.message ?? ''), ...rest].filter(Boolean).join(' ');
}

class ShoalLogger extends Logger {
  protected override printLog(level: number, log: LogItem): void {
    if (process.env.SHOAL_LOG_FORMAT !== 'pretty') return super.printLog(level, log);
    log.prepareForPrint();
    const line = `${prettyLine(level, log.getAttributes())}\n`;
    (level >= LogLevelThreshold.WARN ? process.stderr : process.stdout).write(line);
  }
}

export const logger = new ShoalLogger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'shoal' });

/**
 * Re-reads POWERTOOLS_LOG_LEVEL (default INFO): the logger read it when first imported, and the local
 * server may set it (`--quiet`) after that in the same process.
 */
export function applyLogLevelFromEnv(): void {
  const level = (process.env.POWERTOOLS_LOG_LEVEL ?? 'INFO').toUpperCase();
  if (level in LogLevelThreshold) logger.setLogLevel(level as keyof typeof LogLevelThreshold);
}
