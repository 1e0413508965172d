/** Options of `CeleriacStatusModule.forRoot()`. */
export interface CeleriacStatusOptions {
  /**
   * Whether the caller may see this task: called before both routes; false
   * answers 403. Default: everyone may (task ids are unguessable UUIDs, but put
   * the routes behind your own guard or this hook when results are private).
   */
  authorize?: (request: unknown, taskId: string) => boolean | Promise<boolean>;
  /** Include tracebacks of failed tasks. Default false (they can leak internals). */
  tracebacks?: boolean;
  /** Milliseconds between `ping` events on the SSE route (keeps proxies from closing it). Default 15000. */
  heartbeatMs?: number;
}
