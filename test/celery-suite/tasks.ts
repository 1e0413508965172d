/**
 * Celery 5.2.6's integration-test tasks (`t.integration.tasks.*`), written for
 * Celeriac from what each one does (their names, arguments, results and errors
 * are what the tests check), so Celery's own `t/integration/test_*.py` can run
 * against a Celeriac worker: `celeriac worker -A test/celery-suite/tasks.ts`
 * (scripts/celery-suite.mjs starts it). Redis for the echo / count tasks comes
 * from the same environment the Python side reads: REDIS_HOST and
 * CELERIAC_SUITE_REDIS_PORT.
 */
import { appendFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import {
  chain,
  chord,
  createApp,
  group,
  Signature,
  type AsyncResult,
  type Celeriac,
  type TaskContext,
  type WireSignature,
} from '../../packages/core/src/index.ts';

const PREFIX = 't.integration.tasks';

export const app: Celeriac = createApp('t.integration');

/** Celery's `t.integration.tasks.ExpectedException`; Python rebuilds it by module and name and compares args. */
export class ExpectedException extends Error {
  static excModule = PREFIX;
  static excType = 'ExpectedException';
  readonly excArgs: unknown[];
  constructor(...args: unknown[]) {
    super(args.map(String).join(', '));
    this.excArgs = args;
  }
}

/** Python's ValueError (written as `builtins.ValueError`). */
class ValueError extends Error {
  override name = 'ValueError';
}

let redis: Redis | undefined;
/** The Redis the tests read (`get_redis_connection()` on the Python side). */
function redisConnection(): Redis {
  redis ??= new Redis({ host: process.env.REDIS_HOST ?? '127.0.0.1', port: Number(process.env.CELERIAC_SUITE_REDIS_PORT ?? 6379) });
  return redis;
}

/** Python's `+` on the values these tasks see: numbers add, lists and strings concatenate. */
function pyAdd(a: unknown, b: unknown): unknown {
  if (Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (typeof a === 'string' && typeof b === 'string') return a + b;
  throw new TypeError(`unsupported operand type(s) for +: ${JSON.stringify(a)} and ${JSON.stringify(b)}`);
}

function pySum(values: unknown): number {
  if (!Array.isArray(values)) throw new TypeError(`'${typeof values}' object is not iterable`);
  return values.reduce((acc: number, v) => {
    if (typeof v !== 'number') throw new TypeError(`unsupported operand type(s) for +: 'int' and ${JSON.stringify(v)}`);
    return acc + v;
  }, 0);
}

const t = (name: string) => `${PREFIX}.${name}`;

export const identity = app.task(t('identity'), (x: unknown) => x, { argNames: ['x'] });

export const add = app.task(t('add'), (x: unknown, y: unknown, z?: unknown) => (z ? pyAdd(pyAdd(x, y), z) : pyAdd(x, y)), {
  argNames: ['x', 'y', 'z'],
});

app.task(t('write_to_file_and_return_int'), (fileName: string, i: number) => {
  appendFileSync(fileName, `${i}\n`);
  return i;
}, { argNames: ['file_name', 'i'] });

app.task(t('add_not_typed'), (x: unknown, y: unknown) => {
  if (y === undefined) throw new TypeError("add_not_typed() missing 1 required positional argument: 'y'");
  return pyAdd(x, y);
}, { argNames: ['x', 'y'] });

app.task(t('add_ignore_result'), (x: unknown, y: unknown) => pyAdd(x, y), { argNames: ['x', 'y'], ignoreResult: true });

export const raiseError = app.task(t('raise_error'), (..._args: unknown[]): never => {
  throw new ValueError('deliberate error');
});

app.task(t('chain_add'), async (x: number, y: number) => {
  await chain(add.s(x, x), add.s(y)).applyAsync();
  return null;
}, { argNames: ['x', 'y'] });

app.task(t('chord_add'), async (x: number, y: number) => {
  await chord([add.s(x, x)], add.s(y)).applyAsync();
  return null;
}, { argNames: ['x', 'y'] });

app.task(t('delayed_sum'), async (numbers: number[], pauseTime: number = 1) => {
  await sleep(pauseTime * 1000);
  return pySum(numbers);
}, { argNames: ['numbers', 'pause_time'] });

app.task(t('delayed_sum_with_soft_guard'), async function (this: TaskContext, numbers: number[], pauseTime: number = 1) {
  try {
    await sleep(pauseTime * 1000, undefined, { signal: this.signal });
    return pySum(numbers);
  } catch (err) {
    // Celery's SoftTimeLimitExceeded, caught by the task: it returns 0 instead.
    if (this.signal.aborted) return 0;
    throw err;
  }
}, { argNames: ['numbers', 'pause_time'] });

export const tsum = app.task(t('tsum'), (nums: unknown) => pySum(nums), { argNames: ['nums'] });

app.task(t('add_replaced'), function (this: TaskContext, x: number, y: number) {
  return this.replace(add.s(x, y));
}, { argNames: ['x', 'y'] });

/** An immutable `redis_echo(linkMsg)`, or a mutable `redis_echo` fed the parent's result. */
function echoLink(linkMsg: unknown): Signature {
  return linkMsg === undefined || linkMsg === null ? redisEcho.s() : redisEcho.si(linkMsg);
}

app.task(t('replace_with_chain'), function (this: TaskContext, ...args: unknown[]) {
  const c = chain(identity.s(...args), identity.s()).link(echoLink(this.kwargs.link_msg));
  return this.replace(c);
}, { acceptKwargs: true });

app.task(t('replace_with_chain_which_raises'), function (this: TaskContext, ...args: unknown[]) {
  const c = chain(identity.s(...args), raiseError.s()).linkError(echoLink(this.kwargs.link_msg));
  return this.replace(c);
}, { acceptKwargs: true });

app.task(t('replace_with_empty_chain'), function (this: TaskContext, ..._args: unknown[]) {
  return this.replace(chain());
});

app.task(t('add_to_all'), function (this: TaskContext, nums: number[], val: number) {
  return this.replace(group(nums.map((n) => add.s(n, val))));
}, { argNames: ['nums', 'val'] });

app.task(t('add_to_all_to_chord'), async function (this: TaskContext, nums: number[], val: number) {
  for (const n of nums) await this.addToChord(add.s(n, val));
  return 0;
}, { argNames: ['nums', 'val'] });

app.task(t('add_chord_to_chord'), async function (this: TaskContext, nums: number[], val: number) {
  await this.addToChord(group(nums.map((n) => add.s(n, val))).pipe(tsum.s()));
  return 0;
}, { argNames: ['nums', 'val'] });

app.task(t('print_unicode'), (logMessage = 'håå®ƒ valmuefrø', printMessage = 'hiöäüß') => {
  console.warn(logMessage);
  console.log(printMessage);
  return null;
}, { argNames: ['log_message', 'print_message'] });

/** An errback (old style: it gets the failed task's id... or here, the exception), returned with `True`. */
app.task(t('return_exception'), (e: unknown) => [e, true], { argNames: ['e'] });

export const sleeping = app.task(t('sleeping'), async (i: number) => {
  await sleep(i * 1000);
  return null;
}, { argNames: ['i'], acceptKwargs: true });

app.task(t('ids'), function (this: TaskContext, i: unknown) {
  return [this.rootId, this.parentId, i];
}, { argNames: ['i'] });

app.task(t('collect_ids'), function (this: TaskContext, res: unknown, i: unknown) {
  return [res, [this.rootId, this.parentId, i]];
}, { argNames: ['res', 'i'] });

/** Celery keeps `attempt` on the task object: one counter per worker process. */
let retryAttempt = 0;
app.task(t('retry'), async function (this: TaskContext, returnValue: unknown = null) {
  if (returnValue) {
    if (retryAttempt >= 3) {
      retryAttempt = 0;
      return returnValue;
    }
    retryAttempt++;
  }
  return this.retry({ exc: new ExpectedException(), countdown: 5 });
}, { argNames: ['return_value'], defaultRetryDelay: 1 });

/** `retry_once` / `retry_once_priority`: fail once (retry), then return what was asked. */
function retryOnce(result: (ctx: TaskContext) => unknown) {
  return async function (this: TaskContext, ..._args: unknown[]) {
    if (this.retries) return result(this);
    const countdown = 'countdown' in this.kwargs ? (this.kwargs.countdown as number | null) : 0.1;
    const maxRetries = 'max_retries' in this.kwargs ? (this.kwargs.max_retries as number | null) : 1;
    return this.retry({ countdown: countdown ?? undefined, maxRetries });
  };
}
app.task(t('retry_once'), retryOnce((ctx) => ctx.retries), { acceptKwargs: true, maxRetries: 1 });
app.task(t('retry_once_priority'), retryOnce((ctx) => ctx.deliveryInfo.priority), { acceptKwargs: true, maxRetries: 1 });

async function redisEchoRun(message: unknown, redisKey = 'redis-echo'): Promise<null> {
  await redisConnection().rpush(redisKey, typeof message === 'string' ? message : JSON.stringify(message));
  return null;
}
export const redisEcho = app.task(t('redis_echo'), redisEchoRun, { argNames: ['message', 'redis_key'] });

async function redisCountRun(redisKey = 'redis-count'): Promise<null> {
  await redisConnection().incr(redisKey);
  return null;
}
app.task(t('redis_count'), redisCountRun, { argNames: ['redis_key'] });

const secondOrderReplace2 = app.task(t('second_order_replace2'), async function (this: TaskContext, state = false): Promise<null> {
  if (!state) {
    await redisConnection().rpush('redis-echo', 'In B');
    return this.replace(chain(redisEcho.s('In/Out C'), secondOrderReplace2.si(true)));
  }
  await redisConnection().rpush('redis-echo', 'Out B');
  return null;
}, { argNames: ['state'] });

const secondOrderReplace1 = app.task(t('second_order_replace1'), async function (this: TaskContext, state = false): Promise<null> {
  if (!state) {
    await redisConnection().rpush('redis-echo', 'In A');
    return this.replace(chain(secondOrderReplace2.s(), secondOrderReplace1.si(true)));
  }
  await redisConnection().rpush('redis-echo', 'Out A');
  return null;
}, { argNames: ['state'] });

app.task(t('build_chain_inside_task'), async () => {
  // Celery stores a returned result handle as its as_tuple() (the backend's prepare_value).
  const result: AsyncResult = await chain(add.s(1, 1), add.s(2), group(add.s(3), add.s(4)), add.s(5)).delay();
  return result;
});

export const fail = app.task(t('fail'), (...args: unknown[]): never => {
  throw new ExpectedException('Task expected to fail', ...args);
});

app.task(t('fail_replaced'), function (this: TaskContext, ...args: unknown[]) {
  return this.replace(fail.si(...args));
});

app.task(t('return_priority'), function (this: TaskContext, ..._args: unknown[]) {
  return `Priority: ${this.deliveryInfo.priority === null ? 'None' : this.deliveryInfo.priority}`;
});

app.task(t('return_properties'), function (this: TaskContext) {
  return this.properties;
});

/** Celery's ClassBasedAutoRetryTask: retried once on ValueError (with backoff), then returns its retry count. */
app.task('auto_retry_class_task', function (this: TaskContext) {
  if (this.retries) return this.retries;
  throw new ValueError();
}, { autoretryFor: [ValueError], maxRetries: 1, retryBackoff: true });

// Tasks returning nested canvases (never run: they only travel through the result backend).
const s = () => add.s();
app.task(t('return_nested_signature_chain_chain'), () => chain(chain(s())));
app.task(t('return_nested_signature_chain_group'), () => chain(group(s())));
app.task(t('return_nested_signature_chain_chord'), () => chain(chord([s()], s())));
app.task(t('return_nested_signature_group_chain'), () => group(chain(s())));
app.task(t('return_nested_signature_group_group'), () => group(group(s())));
app.task(t('return_nested_signature_group_chord'), () => group(chord([s()], s())));
// Celery's chord() takes a chain header as the chain's steps (its _maybe_group), any other signature as a one-member header.
app.task(t('return_nested_signature_chord_chain'), () => chord(chain(s()).tasks, s()));
app.task(t('return_nested_signature_chord_group'), () => chord(group(s()), s()));
app.task(t('return_nested_signature_chord_chord'), () => chord([chord([s()], s())], s()));

/** Rebuild a canvas from its dict and check every part of it is a signature again. */
app.task(t('rebuild_signature'), (sigDict: WireSignature) => {
  const check = (sig: unknown): void => {
    if (!(sig instanceof Signature)) throw new TypeError(`${JSON.stringify(sig)} is not a signature object`);
    const parts = sig as Signature & { tasks?: unknown[]; header?: Signature & { tasks?: unknown[] }; body?: unknown };
    for (const task of parts.tasks ?? parts.header?.tasks ?? []) check(task);
    if (parts.body !== undefined) check(parts.body);
  };
  check(app.signatureFromWire(sigDict));
  return null;
}, { argNames: ['sig_dict'] });

app.task(t('errback_old_style'), async (requestId: string) => {
  await redisCountRun(requestId);
  return requestId;
}, { argNames: ['request_id'] });

app.task(t('errback_new_style'), async (request: { id: string }, _exc: unknown, _tb: unknown) => {
  await redisCountRun(request.id);
  return request.id;
}, { argNames: ['request', 'exc', 'tb'] });
