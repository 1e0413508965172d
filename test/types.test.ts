/**
 * Compile-time checks (run by `npm run typecheck:tests`): types flow from the
 * task function to delay/applyAsync/get. The `@ts-expect-error` lines fail the
 * type check if the call they mark ever compiles.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createApp, Task, type AsyncResult, type TaskContext } from '../packages/core/src/index.ts';

const app = createApp('types', { brokerUrl: 'memory://types' });
const add = app.task('types.add', (x: number, y: number) => x + y);
const greet = app.task('types.greet', async function (this: TaskContext, name: string) {
  return `hello ${name} from ${this.id}`;
});

class MathTasks {
  @Task('types.mul')
  mul(x: number, y: number): number {
    return x * y;
  }
}
const math = app.registerTasks(new MathTasks());

async function typeChecks(): Promise<void> {
  const r: AsyncResult<number> = await add.delay(2, 2);
  const v: number = await r.get({ timeout: 1000 });
  const s: AsyncResult<string> = await greet.delay('bob');
  const m: AsyncResult<number> = await math.mul.delay(2, 3);
  // @ts-expect-error a string is not a number
  await add.delay('x', 2);
  // @ts-expect-error too few arguments
  await add.delay(2);
  // @ts-expect-error get() of a number task is not a string
  const wrong: string = await r.get();
  // @ts-expect-error applyAsync args are typed too
  await add.applyAsync(['x', 'y']);
  // @ts-expect-error decorated methods keep their types
  await math.mul.delay('a', 'b');
  void [v, s, m, wrong];
}

test('tasks can be called directly and keep their types', async () => {
  assert.equal(add(2, 3), 5);
  assert.match(await greet('ann'), /^hello ann from [0-9a-f-]{36}$/);
  assert.equal(math.mul(4, 5), 20);
  assert.equal(typeof typeChecks, 'function');
});
