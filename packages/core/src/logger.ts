import { pino, type Logger } from 'pino';
import { safeErrorSerializer } from './error-serializer.js';
import { celeryStream } from './log-format.js';

/** Log levels accepted by `-l` (Celery's names; `warning` = `warn`). */
export type LogLevel = 'debug' | 'info' | 'warning' | 'warn' | 'error' | 'critical' | 'fatal' | 'silent';

/**
 * How the worker's log lines look: `pretty` is Celery's
 * `[time: LEVEL/MainProcess] message`, `json` is one pino JSON object per line,
 * `auto` is pretty when stderr (where logs go) is a terminal, JSON otherwise.
 */
export type LogFormat = 'auto' | 'pretty' | 'json';

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  /** Default `auto`. */
  format?: LogFormat;
  /** Colours in the pretty form. Default: when stderr is a terminal that has colours (honours NO_COLOR / FORCE_COLOR). */
  colors?: boolean;
}

/** Whether `auto` means pretty here: stderr is a terminal. */
export function stderrIsTerminal(): boolean {
  return process.stderr.isTTY === true;
}

/** A logger at the given level on stderr, as JSON lines or in Celery's console form. */
export function createLogger(level: LogLevel = 'info', name = 'celeriac', options: LoggerOptions = {}): Logger {
  const pinoLevel = level === 'warning' ? 'warn' : level === 'critical' ? 'fatal' : level;
  const format = options.format ?? 'auto';
  const pretty = format === 'pretty' || (format === 'auto' && stderrIsTerminal());
  const base = { name, level: pinoLevel, base: { pid: process.pid }, serializers: { err: safeErrorSerializer } };
  if (!pretty) return pino(base, pino.destination({ fd: 2, sync: false }));
  const colors = options.colors ?? (process.stderr.isTTY === true && process.stderr.hasColors());
  return pino(base, celeryStream(process.stderr, { colors }));
}

export type { Logger };
