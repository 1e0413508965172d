/**
 * `setTimeout` for any delay. Node's timers hold at most 2^31 − 1 ms (24.8 days);
 * a longer delay fires after 1 ms instead (with only a warning), so a task whose
 * time limit is 30 days would fail at once. This re-arms the timer in chunks.
 */

/** The longest delay one `setTimeout` can wait. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Call `fn` once after `ms` milliseconds (`Infinity` never fires). Returns a
 * function that cancels it.
 */
export function longTimeout(fn: () => void, ms: number): () => void {
  if (ms === Infinity) return () => {};
  const due = Date.now() + ms;
  let timer: NodeJS.Timeout;
  const arm = (remaining: number) => {
    timer = setTimeout(() => {
      const left = due - Date.now();
      if (left > 0 && remaining > MAX_TIMER_MS) arm(left);
      else fn();
    }, Math.min(Math.max(0, remaining), MAX_TIMER_MS));
  };
  arm(ms);
  return () => clearTimeout(timer);
}
