/**
 * pino's error serializer without what must never reach a log: ioredis attaches
 * the failed command to its errors (`err.command = { name, args }`), and the args
 * of a failed AUTH are the user and password. Command arguments are dropped from
 * the error and every error it wraps (`cause`, `previousErrors`).
 */
import { pino } from 'pino';

type Serialized = Record<string, unknown>;

const DROPPED_FIELDS = ['command', 'args', 'lastNodeError'];

function strip(value: unknown, depth: number): void {
  if (depth > 5 || typeof value !== 'object' || value === null) return;
  const record = value as Serialized;
  for (const field of DROPPED_FIELDS) delete record[field];
  strip(record.cause, depth + 1);
  if (Array.isArray(record.previousErrors)) for (const e of record.previousErrors) strip(e, depth + 1);
  if (Array.isArray(record.aggregateErrors)) for (const e of record.aggregateErrors) strip(e, depth + 1);
}

/** Serialize an error for a log line, without any Redis command or its arguments. */
export function safeErrorSerializer(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const serialized = pino.stdSerializers.err(err) as unknown as Serialized;
  strip(serialized, 0);
  return serialized;
}
