/**
 * Where each task's result goes under `rpc://`: the `reply_to` of the task message
 * (the sender's reply queue), remembered per task id by the AMQP consumer when it
 * receives the message and read by the rpc backend when the worker stores a state.
 * Process-wide and bounded (oldest entries dropped first); a ready state forgets it.
 * Only kept once an rpc backend exists in this process (`trackReplyTo`): with any other
 * backend nothing reads it, and every received message would pay for a map entry.
 */

const MAX_ENTRIES = 100_000;
const replyToByTask = new Map<string, string>();
let tracking = false;

/** Start remembering reply queues (an rpc backend was created in this process). */
export function trackReplyTo(): void {
  tracking = true;
}

/** Whether `rememberReplyTo` keeps anything (an rpc backend exists in this process). */
export function replyToTracked(): boolean {
  return tracking;
}

/** Remember where results of `taskId` go (called for every received task message with a `reply_to`). */
export function rememberReplyTo(taskId: string, replyTo: string): void {
  if (!tracking) return;
  replyToByTask.delete(taskId);
  replyToByTask.set(taskId, replyTo);
  if (replyToByTask.size > MAX_ENTRIES) replyToByTask.delete(replyToByTask.keys().next().value as string);
}

/** The reply queue of `taskId`, if a message for it was received in this process. */
export function replyToFor(taskId: string): string | undefined {
  return replyToByTask.get(taskId);
}

/** Drop the entry (the task reached a ready state). */
export function forgetReplyTo(taskId: string): void {
  replyToByTask.delete(taskId);
}
