/**
 * Compile-time checks, enforced by `npm run typecheck:tests` (part of `npm test`):
 * types flow from the task function to delay / applyAsync / get / signatures.
 *
 * - `expectType<Equal<Actual, Expected>>()` fails to compile unless the inferred
 *   type is exactly `Expected` (so `any` or `unknown` leaking in fails too).
 * - Each `@ts-expect-error` line fails the type check if the call it marks ever
 *   compiles. They use values straight from inference, never a variable annotated
 *   with the expected type (an annotation would make the check vacuous).
 *
 * The runtime test below checks the same calls' values through a memory worker.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createApp, Task, Worker, type AsyncResult, type RemoteTaskError, type Signature, type TaskContext } from '../packages/core/src/index.ts';

/** Exactly equal types (distinguishes `any`, `unknown` and optional members). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** Compiles only when given `true`. */
function expectType<T extends true>(): T | void {}

const app = createApp('types', { brokerUrl: 'memory://types' });
const add = app.task('types.add', (x: number, y: number) => x + y);
const greet = app.task('types.greet', async function (this: TaskContext, name: string) {
  return `hello ${name} from ${this.id}`;
});
const nothing = app.task('types.nothing', () => undefined);

class MathTasks {
  @Task('types.mul')
  mul(x: number, y: number): number {
    return x * y;
  }
  @Task('types.shout')
  async shout(text: string): Promise<string> {
    return text.toUpperCase();
  }
}
const math = app.registerTasks(new MathTasks());

type Sent<T extends (...args: never[]) => unknown> = Awaited<ReturnType<T>>;

// Direct calls keep the function's own type.
expectType<Equal<ReturnType<typeof add>, number>>();
expectType<Equal<ReturnType<typeof greet>, Promise<string>>>();
expectType<Equal<Parameters<typeof add>, [x: number, y: number]>>();
// delay / applyAsync: the result type is the awaited return type.
expectType<Equal<Sent<typeof add.delay>, AsyncResult<number>>>();
expectType<Equal<Sent<typeof greet.delay>, AsyncResult<string>>>();
expectType<Equal<Sent<typeof nothing.delay>, AsyncResult<undefined>>>();
expectType<Equal<Sent<typeof add.applyAsync>, AsyncResult<number>>>();
expectType<Equal<Parameters<typeof add.delay>, [x: number, y: number]>>();
expectType<Equal<Sent<typeof add.s>, Signature<number>>>();
// Decorated methods become typed tasks.
expectType<Equal<Sent<typeof math.mul.delay>, AsyncResult<number>>>();
expectType<Equal<Sent<typeof math.shout.delay>, AsyncResult<string>>>();
expectType<Equal<ReturnType<typeof math.mul>, number>>();

async function inferredCalls(): Promise<void> {
  const r = await add.delay(2, 2);
  // get(): the value, or with propagate: false the value or the remote error.
  const value = await r.get({ timeout: 1000 });
  expectType<Equal<typeof value, number>>();
  const either = await r.get({ propagate: false });
  expectType<Equal<typeof either, number | RemoteTaskError>>();
  // @ts-expect-error a string is not a number
  await add.delay('x', 2);
  // @ts-expect-error too few arguments
  await add.delay(2);
  // @ts-expect-error too many arguments
  await add.delay(1, 2, 3);
  // @ts-expect-error get() of a number task is not a string (r comes from inference)
  const wrong: string = await (await add.delay(1, 1)).get();
  // @ts-expect-error applyAsync args are typed too
  await add.applyAsync(['x', 'y']);
  // @ts-expect-error decorated methods keep their types
  await math.mul.delay('a', 'b');
  // @ts-expect-error a Promise-returning task's result is the awaited value, not a Promise
  const notAPromise: Promise<string> = await (await greet.delay('x')).get();
  void [wrong, notAPromise];
}

let worker: Worker | undefined;
after(async () => {
  await worker?.stop();
  await app.close();
});

test('the typed calls return what their types say, through a worker', async () => {
  assert.equal(add(2, 3), 5);
  assert.match(await greet('ann'), /^hello ann from [0-9a-f-]{36}$/);
  assert.equal(math.mul(4, 5), 20);
  worker = new Worker(app, { concurrency: 2, logLevel: 'silent' });
  await worker.start();
  assert.equal(await (await add.delay(2, 2)).get({ timeout: 2000 }), 4);
  assert.equal(await (await math.shout.delay('hi')).get({ timeout: 2000 }), 'HI');
  assert.equal(await (await nothing.delay()).get({ timeout: 2000 }), null, 'undefined is stored as None (null)');
  void inferredCalls; // compile-time only: its @ts-expect-error calls would send bad messages
});
