/**
 * Driving beats on a simulated clock: wait until a beat has finished its pass and
 * sleeps, then move the clock to the moment it sleeps until — an exact, event-by-
 * event simulation of hours in milliseconds, with no real sleeps.
 */
import { pino, type Logger } from 'pino';
import type { Beat, ManualClock } from '../../packages/core/src/index.ts';

/** Poll `check` every millisecond (steps of a simulation are quick) until true, or fail after `timeoutMs`. */
export async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Wait until `beat` sleeps until a moment after now (its pass is over). */
export async function idle(beat: Beat, clock: ManualClock, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => beat.sleepingUntil !== null && beat.sleepingUntil > clock.now(), timeoutMs, 'beat asleep after its pass');
}

/**
 * Run `beats` until the clock reads `end`: each step waits until a beat leads and
 * every beat that believes it leads has finished its pass and sleeps, then sets the
 * clock to the earliest wake-up among them (so a leadership change under load —
 * a stale leader that has not noticed yet — never makes the real leader wake late).
 */
export async function simulateUntil(beats: Beat[], clock: ManualClock, end: number): Promise<void> {
  const settled = () => {
    const leaders = beats.filter((b) => b.isLeader);
    return leaders.length > 0 && leaders.every((b) => b.sleepingUntil !== null && b.sleepingUntil > clock.now());
  };
  for (;;) {
    await waitFor(settled, 15_000, 'a leader asleep after its pass');
    if (clock.now() >= end) return;
    const wake = Math.min(...beats.filter((b) => b.isLeader).map((b) => b.sleepingUntil!));
    clock.set(Math.min(wake, end));
  }
}

/** A logger that keeps its lines (message texts) in `lines`. */
export function memoryLogger(level = 'info'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line).msg as string) });
  return { logger, lines };
}
