// The embedded demo: memory:// broker and backend, an in-process worker; then the Express
// example (examples/express-app) on the same embedded default, one request through it,
// and its URL. Run with `npm run demo` (builds first). On a terminal the Express example
// keeps running until Ctrl-C; otherwise (CI, pipes) the demo exits after the request.
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

// The Express example: the same embedded memory:// default, served over HTTP.
const { start } = await import('./express-app/server.mjs');
const { gracefulShutdown } = await import('@celeriac/express');
let served;
try {
  served = await start(Number(process.env.PORT ?? 3000));
} catch (err) {
  if (err.code !== 'EADDRINUSE') throw err;
  served = await start(0); // port 3000 is taken: any free port
}
const { server, url } = served;
const accepted = await (await fetch(`${url}/long?steps=3&stepMs=100`, { method: 'POST' })).json();
const events = await (await fetch(url + accepted.events)).text();
const states = [...events.matchAll(/^id: \d+\ndata: (.*)$/gm)].map((m) => JSON.parse(m[1]));
console.log(`\nExpress: POST ${url}/long -> 202 ${accepted.status}; SSE ${accepted.events}: ${states.map((s) => s.state + (s.progress ? ` ${s.progress.current}/${s.progress.total}` : '')).join(', ')}`);
console.log(`Open ${url} (the Express example: a long task with progress over SSE)`);
if (process.stdout.isTTY && !process.env.CI) {
  console.log('Ctrl-C to stop.');
  process.once('SIGINT', () => void gracefulShutdown(server).then(() => process.exit(0)));
} else {
  await gracefulShutdown(server);
}
