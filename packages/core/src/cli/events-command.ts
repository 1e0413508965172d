/**
 * `celeriac events`: a live, readable stream of every worker's events (Python and
 * Celeriac), one line each, coloured on a terminal; `--dump` prints each event as
 * one JSON line instead (like `celery events --dump`). Runs until interrupted.
 */
import { appFor, type ConnectionFlags } from './load-app.js';
import { UsageError } from './options.js';
import type { CeleryEvent } from '../events/event-message.js';

/** Flags of `celeriac events`. */
export interface EventsFlags extends ConnectionFlags {
  dump?: boolean;
  /** Stop after this many seconds (tests, scripts). */
  duration?: string;
}

const COLOURS: Record<string, string> = {
  'task-succeeded': '\x1b[32m',
  'task-failed': '\x1b[31m',
  'task-retried': '\x1b[33m',
  'task-revoked': '\x1b[35m',
  'task-rejected': '\x1b[35m',
  'worker-offline': '\x1b[31m',
  'worker-online': '\x1b[32m',
};

/** One readable line for an event. */
export function formatEvent(e: CeleryEvent, colour: boolean): string {
  const time = new Date(e.timestamp * 1000).toISOString().replace('T', ' ').replace('Z', '');
  const details: string[] = [];
  if (e.uuid) details.push(`${typeof e.name === 'string' ? e.name : ''}[${e.uuid}]`);
  for (const key of ['args', 'kwargs', 'result', 'runtime', 'exception', 'active', 'processed']) {
    if (e[key] !== undefined && e[key] !== null) details.push(`${key}=${typeof e[key] === 'string' ? e[key] : JSON.stringify(e[key])}`);
  }
  const type = colour ? `${COLOURS[e.type] ?? '\x1b[36m'}${e.type}\x1b[0m` : e.type;
  return `${time} ${e.hostname} ${type} ${details.join(' ')}`.trimEnd();
}

/** Run `celeriac events` until SIGINT/SIGTERM (or `--duration`). */
export async function eventsCommand(flags: EventsFlags): Promise<void> {
  const app = await appFor(flags);
  if (app.settings.brokerUrl.startsWith('memory://')) throw new UsageError('celeriac events has no broker (memory:// lives inside one process): pass -b redis://127.0.0.1:6379/0 or set CELERIAC_BROKER_URL.');
  const colour = !flags.dump && process.stdout.isTTY === true && !process.env.NO_COLOR;
  const receiver = app.events.receiver();
  receiver.on('*', (e) => process.stdout.write((flags.dump ? JSON.stringify(e) : formatEvent(e, colour)) + '\n'));
  await receiver.start();
  process.stderr.write(`-> celeriac events: listening on ${(await app.getBroker()).displayUrl}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    if (flags.duration) setTimeout(resolve, Number(flags.duration) * 1000);
  });
  await receiver.stop();
  await app.close();
}
