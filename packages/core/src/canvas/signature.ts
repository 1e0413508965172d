import type { WireSignature } from '../protocol/message.js';
import type { ApplyOptions } from '../apply-options.js';
import type { AsyncResult } from '../result.js';

/** What a Signature needs from its app to be sent. */
export interface SignatureSender {
  sendTask<R>(name: string, args?: readonly unknown[], kwargs?: Record<string, unknown>, options?: ApplyOptions): Promise<AsyncResult<R>>;
}

/**
 * A task call packaged to be sent later or elsewhere: `add.s(16)` for a callback
 * that receives the parent's result first, `add.si(2, 2)` for one that does not.
 * On the wire it is Celery's signature dict.
 */
export class Signature<R = unknown> {
  constructor(
    readonly task: string,
    readonly args: readonly unknown[] = [],
    readonly kwargs: Record<string, unknown> = {},
    /** `apply_async` options, snake_case as on the wire (`task_id`, `queue`, ...). */
    readonly options: Record<string, unknown> = {},
    readonly immutable = false,
    readonly subtaskType: string | null = null,
    private readonly sender?: SignatureSender,
  ) {}

  /** Celery's dict form, field order as Celery writes it. */
  toJSON(): WireSignature {
    return {
      task: this.task,
      args: [...this.args],
      kwargs: { ...this.kwargs },
      options: { ...this.options },
      subtask_type: this.subtaskType,
      immutable: this.immutable,
    };
  }

  /** Rebuild from the wire form. */
  static fromWire(wire: WireSignature, sender?: SignatureSender): Signature {
    return new Signature(wire.task, wire.args ?? [], wire.kwargs ?? {}, wire.options ?? {}, wire.immutable === true, wire.subtask_type ?? null, sender);
  }

  /** A copy with options merged in (`set(queue='lopri')` in Celery). */
  set(options: Record<string, unknown>): Signature<R> {
    return new Signature(this.task, this.args, this.kwargs, { ...this.options, ...options }, this.immutable, this.subtaskType, this.sender);
  }

  /** Send it. `extraArgs` are prepended unless the signature is immutable. */
  applyAsync(extraArgs: readonly unknown[] = [], extraKwargs: Record<string, unknown> = {}, options: ApplyOptions = {}): Promise<AsyncResult<R>> {
    if (!this.sender) throw new Error(`Signature ${this.task} is not bound to an app: create it with task.s(...) or app.signature(...).`);
    const args = this.immutable ? this.args : [...extraArgs, ...this.args];
    return this.sender.sendTask<R>(this.task, args, { ...this.kwargs, ...extraKwargs }, { ...optionsFromWire(this.options), ...options });
  }

  /** `sig.delay(...args)`. */
  delay(...args: unknown[]): Promise<AsyncResult<R>> {
    return this.applyAsync(args);
  }
}

/** Convert wire option names (`task_id`, `routing_key`) to ApplyOptions. */
export function optionsFromWire(options: Record<string, unknown>): ApplyOptions {
  const o: ApplyOptions = {};
  const map: Record<string, keyof ApplyOptions> = {
    task_id: 'taskId',
    countdown: 'countdown',
    eta: 'eta',
    expires: 'expires',
    queue: 'queue',
    routing_key: 'routingKey',
    exchange: 'exchange',
    priority: 'priority',
    headers: 'headers',
    shadow: 'shadow',
    serializer: 'serializer',
    ignore_result: 'ignoreResult',
    group_id: 'groupId',
    group_index: 'groupIndex',
  };
  for (const [k, v] of Object.entries(options)) {
    const key = map[k];
    if (key) (o as Record<string, unknown>)[key] = v;
  }
  if (Array.isArray(options.link)) o.link = (options.link as WireSignature[]).map((w) => Signature.fromWire(w));
  else if (options.link && typeof options.link === 'object') o.link = [Signature.fromWire(options.link as WireSignature)];
  if (Array.isArray(options.link_error)) o.linkError = (options.link_error as WireSignature[]).map((w) => Signature.fromWire(w));
  else if (options.link_error && typeof options.link_error === 'object') o.linkError = [Signature.fromWire(options.link_error as WireSignature)];
  return o;
}
