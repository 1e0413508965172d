import type { ResultTuple } from '../backends/backend.js';
import { ConfigurationError, TimeoutError } from '../errors.js';
import type { RemoteTaskError } from '../errors.js';
import { AsyncResult, type GetOptions, type ResultNode, type ResultSource } from '../result.js';
import { States, type TaskState } from '../states.js';

/**
 * The result of a group: one result per member, in call order (Celery's
 * `GroupResult`). It is an `AsyncResult` of the list, so a chain ending in a
 * group has the same result type as any chain: `get()` gives the list.
 */
export class GroupResult<T = unknown> extends AsyncResult<T[]> implements ResultNode {
  constructor(
    /** The group id (the `group` header of every member). */
    id: string,
    /** Member results in call order (a nested group's result for a group member that is a group). */
    readonly results: (AsyncResult<T> | GroupResult<unknown>)[],
    private readonly groupSource: ResultSource,
    /** The step before this group in a chain, when known. */
    parent: ResultNode | null = null,
  ) {
    super(id, groupSource, parent);
  }

  /** SUCCESS when every member succeeded, FAILURE when one failed, otherwise PENDING. */
  override get state(): Promise<TaskState> {
    return (async () => ((await this.failed()) ? States.FAILURE : (await this.successful()) ? States.SUCCESS : States.PENDING))();
  }

  /** The members' values so far (null for those not ready). */
  override get result(): Promise<unknown> {
    return Promise.all(this.results.map(async (r) => ((await r.ready()) ? r.get({ propagate: false }) : null)));
  }

  /** The members. */
  override get children(): Promise<AsyncResult[]> {
    return Promise.resolve([...this.results] as AsyncResult[]);
  }

  /** Forget every member's result and the saved group. */
  override async forget(): Promise<void> {
    for (const r of this.results) await r.forget();
    await this.delete();
  }

  /** Number of members. */
  get length(): number {
    return this.results.length;
  }

  /**
   * Wait for every member and return their values in call order (Celery's
   * `get` / `join`). A failed member rejects with its error unless
   * `propagate: false`, which puts the error in its place.
   */
  override get(options?: GetOptions & { propagate?: true }): Promise<T[]>;
  /** With `propagate: false` a failed member's error takes its place in the list. */
  override get(options: GetOptions & { propagate: false }): Promise<T[] | RemoteTaskError>;
  override async get(options: GetOptions = {}): Promise<T[] | RemoteTaskError> {
    const deadline = options.timeout === undefined ? undefined : Date.now() + options.timeout;
    const values: unknown[] = [];
    for (const r of this.results) {
      const timeout = deadline === undefined ? undefined : Math.max(0, deadline - Date.now());
      if (deadline !== undefined && timeout === 0 && !(await r.ready())) {
        throw new TimeoutError(`Group ${this.id} was not ready within ${options.timeout} ms.`);
      }
      values.push(await (r as AsyncResult<unknown>).get({ ...options, timeout } as GetOptions & { propagate?: true }));
    }
    return values as T[];
  }

  /** Alias of `get` (Celery's `join`). */
  join(options: GetOptions & { propagate?: true } = {}): Promise<T[]> {
    return this.get(options);
  }

  /** True once every member is ready. */
  override async ready(): Promise<boolean> {
    for (const r of this.results) if (!(await r.ready())) return false;
    return true;
  }

  /** True when every member succeeded. */
  override async successful(): Promise<boolean> {
    for (const r of this.results) if (!(await r.successful())) return false;
    return true;
  }

  /** True when any member failed. */
  override async failed(): Promise<boolean> {
    for (const r of this.results) if (await r.failed()) return true;
    return false;
  }

  /** True while any member is not ready. */
  async waiting(): Promise<boolean> {
    return !(await this.ready());
  }

  /** How many members succeeded. */
  async completedCount(): Promise<number> {
    let n = 0;
    for (const r of this.results) {
      if (r instanceof GroupResult) n += (await r.successful()) ? 1 : 0;
      else if ((await r.state) === States.SUCCESS) n++;
    }
    return n;
  }

  /**
   * Revoke every member (Celery's `ResultSet.revoke`): one remote-control
   * `revoke` broadcast naming all their ids; workers (Python and Celeriac) discard
   * them when they arrive, and with `terminate` stop running ones where they can.
   */
  async revoke(options: { terminate?: boolean; signal?: string } = {}): Promise<void> {
    const control = (this.groupSource as ResultSource & { control?: { revoke(ids: string[], o: { terminate?: boolean; signal?: string }): Promise<unknown> } }).control;
    if (!control) throw new ConfigurationError(`GroupResult.revoke(): group ${this.id} is not bound to an app (restore it with app.restoreGroupResult(id)).`);
    await control.revoke(leafIds(this), options);
  }

  /** Celery's `as_tuple()`: `[[id, parent tuple or null], [member tuples]]`. */
  override asTuple(): ResultTuple {
    return [[this.id, this.parent ? this.parent.asTuple() : null], this.results.map((r) => r.asTuple())];
  }

  /** Store it as Celery does (`celery-taskset-meta-<id>`), so `restore` works here and in Python. */
  async save(): Promise<void> {
    const backend = await this.groupSource.getBackend();
    if (!backend.saveGroup) throw new ConfigurationError(`The result backend ${backend.displayUrl} cannot save group results.`);
    await backend.saveGroup(this.id, this.asTuple());
  }

  /** Delete the saved group (not the members' results). */
  async delete(): Promise<void> {
    const backend = await this.groupSource.getBackend();
    await backend.deleteGroup?.(this.id);
  }

  /** The group saved under `id` (by Celeriac or Python), or null. */
  static async restore<T = unknown>(id: string, source: ResultSource): Promise<GroupResult<T> | null> {
    const backend = await source.getBackend();
    if (!backend.restoreGroup) throw new ConfigurationError(`The result backend ${backend.displayUrl} cannot restore group results.`);
    const tuple = await backend.restoreGroup(id);
    if (!tuple) return null;
    const restored = resultFromTuple(tuple, source);
    if (!(restored instanceof GroupResult)) throw new ConfigurationError(`Saved group ${id} holds a single result, not a group.`);
    return restored as GroupResult<T>;
  }

  override toString(): string {
    return `<GroupResult: ${this.id} [${this.results.map((r) => r.id).join(', ')}]>`;
  }
}

/** Every task id in a (nested) group result. */
function leafIds(result: AsyncResult | GroupResult): string[] {
  return result instanceof GroupResult ? result.results.flatMap((r) => leafIds(r)) : [result.id];
}

/** Celery's `result_from_tuple`: a tuple with a member list is a group, otherwise one task. */
export function resultFromTuple(tuple: ResultTuple | unknown, source: ResultSource): AsyncResult | GroupResult {
  if (!Array.isArray(tuple)) return new AsyncResult(String(tuple), source);
  const [head, nodes] = tuple as [unknown, unknown];
  const [id, parentTuple] = Array.isArray(head) ? (head as [string, unknown]) : [String(head), null];
  const parent = Array.isArray(parentTuple) ? resultFromTuple(parentTuple, source) : null;
  if (Array.isArray(nodes)) return new GroupResult(id, nodes.map((n) => resultFromTuple(n, source)), source, parent);
  return new AsyncResult(id, source, parent);
}
