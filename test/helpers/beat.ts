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
 * Run the leader among `beats` until the clock reads `end`: each step waits for the
 * current leader to finish its pass, then sets the clock to its wake-up time.
 */
export async function simulateUntil(beats: Beat[], clock: ManualClock, end: number): Promise<void> {
  while (clock.now() < end) {
    await waitFor(() => beats.some((b) => b.isLeader), 15_000, 'a leader');
    const leader = beats.find((b) => b.isLeader)!;
    await idle(leader, clock);
    clock.set(Math.min(leader.sleepingUntil!, end));
  }
  const leader = beats.find((b) => b.isLeader);
  if (leader) await idle(leader, clock);
}

/** A logger that keeps its lines (message texts) in `lines`. */
export function memoryLogger(level = 'info'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line).msg as string) });
  return { logger, lines };
}
