import { pino, type Logger } from 'pino';
import { safeErrorSerializer } from './error-serializer.js';

/** Log levels accepted by `-l` (Celery's names; `warning` = `warn`). */
export type LogLevel = 'debug' | 'info' | 'warning' | 'warn' | 'error' | 'critical' | 'fatal' | 'silent';

/** A structured (JSON lines) logger at the given level, on stderr. */
export function createLogger(level: LogLevel = 'info', name = 'celeriac'): Logger {
  const pinoLevel = level === 'warning' ? 'warn' : level === 'critical' ? 'fatal' : level;
  return pino({ name, level: pinoLevel, base: { pid: process.pid }, serializers: { err: safeErrorSerializer } }, pino.destination({ fd: 2, sync: false }));
}

export type { Logger };
