// The embedded demo: memory:// broker and backend, an in-process worker.
// Run with `npm run demo` (builds first).
import { createApp, Worker } from '@celeriac/core';

const app = createApp('demo'); // memory:// by default: no server needed

const add = app.task('tasks.add', (x, y) => x + y);
const log = app.task('tasks.log', (value) => {
  console.log(`  [callback] tasks.log received ${JSON.stringify(value)}`);
  return value;
});
const divide = app.task('tasks.divide', (x, y) => {
  if (y === 0) throw new RangeError('division by zero');
  return x / y;
});

const worker = new Worker(app, { concurrency: 4, logLevel: 'silent' });
await worker.start();

const show = async (label, result) => {
  let value;
  try {
    value = await result.get({ timeout: 10_000 });
  } catch (err) {
    value = `${err.name}: ${err.message}`;
  }
  console.log(`${label.padEnd(34)} id=${result.id.slice(0, 8)} state=${await result.state} -> ${value}`);
};

console.log('Celeriac demo on the embedded memory:// broker\n');
await show('add.delay(2, 2)', await add.delay(2, 2));
const started = Date.now();
const later = await add.applyAsync([10, 5], {}, { countdown: 1 });
console.log(`add(10, 5) with countdown=1s       state=${await later.state} (sent)`);
await show('add(10, 5) countdown=1s', later);
console.log(`  ran after ${((Date.now() - started) / 1000).toFixed(2)} s`);
await show('add(4, 4) linked to log', await add.applyAsync([4, 4], {}, { link: log.s() }));
await show('divide(1, 0) (fails)', await divide.delay(1, 0));

await worker.stop();
await app.close();
console.log(`\nworker: processed=${worker.stats.processed} succeeded=${worker.stats.succeeded} failed=${worker.stats.failed}`);
