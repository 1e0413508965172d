/**
 * Celery's console log form for pino records:
 * `[2026-11-23 16:00:00,123: INFO/MainProcess] Task tasks.add[<id>] received`,
 * the whole line coloured by level on a terminal (DEBUG blue, WARNING yellow,
 * ERROR red, CRITICAL magenta, INFO plain — Celery's ColorFormatter). An `err`
 * field is printed as its stack below the line, as Celery prints a traceback;
 * at DEBUG the record's other fields follow the message as JSON.
 */

/** Options for {@link celeryLine} and {@link celeryStream}. */
export interface CeleryFormatOptions {
  /** Wrap each line in ANSI colour codes. */
  colors: boolean;
  /** Shown after the level (Celery: `MainProcess`, `ForkPoolWorker-1`). Default `MainProcess`. */
  processName?: string;
}

/** Where formatted lines go (a `process.stderr`-like stream). */
export interface LineSink {
  write(text: string): unknown;
}

const ESC = '\x1b[';
const RESET = `${ESC}0m`;
const COLORS: Record<string, string> = { DEBUG: `${ESC}1;34m`, WARNING: `${ESC}1;33m`, ERROR: `${ESC}1;31m`, CRITICAL: `${ESC}1;35m` };
/** Fields every pino record carries, or that the line itself already shows. */
const SHOWN = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'err', 'v']);

/** Celery's level name for a pino level number. */
export function celeryLevelName(level: number): string {
  if (level >= 60) return 'CRITICAL';
  if (level >= 50) return 'ERROR';
  if (level >= 40) return 'WARNING';
  if (level >= 30) return 'INFO';
  return 'DEBUG';
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** `2026-11-23 16:00:00,123` in local time, as Python logging's `asctime`. */
export function asctime(epochMs: number): string {
  const d = new Date(epochMs);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())},${pad(d.getMilliseconds(), 3)}`;
}

function errorText(err: unknown): string {
  if (!err || typeof err !== 'object') return String(err);
  const e = err as { stack?: unknown; type?: unknown; message?: unknown };
  if (typeof e.stack === 'string' && e.stack) return e.stack;
  return `${typeof e.type === 'string' ? e.type : 'Error'}: ${String(e.message ?? '')}`;
}

/** One pino record (already parsed) as Celery would print it, with a trailing newline. */
export function celeryLine(record: Record<string, unknown>, options: CeleryFormatOptions): string {
  const level = celeryLevelName(typeof record.level === 'number' ? record.level : 30);
  const time = typeof record.time === 'number' ? record.time : Date.now();
  let text = `[${asctime(time)}: ${level}/${options.processName ?? 'MainProcess'}] ${typeof record.msg === 'string' ? record.msg : ''}`;
  if (level === 'DEBUG') {
    const extra = Object.fromEntries(Object.entries(record).filter(([k]) => !SHOWN.has(k)));
    if (Object.keys(extra).length > 0) text += ` ${JSON.stringify(extra)}`;
  }
  if (record.err !== undefined) text += `\n${errorText(record.err)}`;
  const color = options.colors ? COLORS[level] : undefined;
  return (color ? `${color}${text}${RESET}` : text) + '\n';
}

/**
 * A pino destination that prints Celery's form on `sink`. pino hands it one
 * serialized record per `write`; a line that is not JSON is passed through as is.
 */
export function celeryStream(sink: LineSink, options: CeleryFormatOptions): { write(line: string): void } {
  return {
    write(line: string) {
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch {
        sink.write(line);
        return;
      }
      sink.write(record && typeof record === 'object' ? celeryLine(record as Record<string, unknown>, options) : line);
    },
  };
}
