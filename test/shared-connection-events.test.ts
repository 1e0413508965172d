/**
 * SharedConnectionEvents: several connection groups of one role (a worker's consumer
 * and its app's producer) report an outage once and its recovery once.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRedisClient, dropRedisClient, SharedConnectionEvents, type ConnectionEvents } from '../packages/core/src/redis-client.ts';
import { resolveRedisConnection } from '../packages/core/src/redis-connection.ts';
import { freePort } from './helpers/services.ts';
import { waitFor } from './helpers/worker-process.ts';

function recorder(): { events: ConnectionEvents; lines: string[] } {
  const lines: string[] = [];
  return { lines, events: { onDown: (url, reason) => lines.push(`down ${url} ${reason}`), onRecovered: (url) => lines.push(`up ${url}`) } };
}

const URL = 'redis://127.0.0.1:6379/0';

test('two groups down and back: one down line (the first reason), one recovery line after the last is back; own hooks run for each', () => {
  const { events, lines } = recorder();
  const shared = new SharedConnectionEvents(events);
  const own: string[] = [];
  const consumer = shared.member({ onDown: () => own.push('consumer down'), onRecovered: () => own.push('consumer up') });
  const producer = shared.member({ onDown: (_u, reason) => own.push(`producer down ${reason}`) });
  consumer.onDown(URL, 'Connection refused');
  producer.onDown(URL, 'Connection reset by peer');
  assert.deepEqual(lines, [`down ${URL} Connection refused`]);
  consumer.onRecovered(URL, 10);
  assert.deepEqual(lines, [`down ${URL} Connection refused`], 'the producer is still down');
  producer.onRecovered(URL, 12);
  assert.deepEqual(lines, [`down ${URL} Connection refused`, `up ${URL}`]);
  assert.deepEqual(own, ['consumer down', 'producer down Connection reset by peer', 'consumer up']);
  // The next outage is reported again.
  producer.onDown(URL, 'Connection refused');
  producer.onRecovered(URL, 5);
  assert.equal(lines.length, 4);
});

test('a group closed while down leaves the report: the recovery of the others and the next outage are still logged', () => {
  const { events, lines } = recorder();
  const shared = new SharedConnectionEvents(events);
  const consumer = shared.member();
  const producer = shared.member();
  consumer.onDown(URL, 'Connection refused');
  producer.onDown(URL, 'Connection refused');
  producer.onClosedWhileDown!(URL); // app.close() during the outage
  consumer.onRecovered(URL, 10);
  assert.deepEqual(lines, [`down ${URL} Connection refused`, `up ${URL}`]);
  consumer.onDown(URL, 'Connection refused');
  consumer.onClosedWhileDown!(URL); // the worker stopped during the next outage
  const later = shared.member();
  later.onDown(URL, 'Connection refused');
  assert.deepEqual(lines, [`down ${URL} Connection refused`, `up ${URL}`, `down ${URL} Connection refused`, `down ${URL} Connection refused`]);
});

test('URLs are reported separately', () => {
  const { events, lines } = recorder();
  const shared = new SharedConnectionEvents(events);
  const a = shared.member();
  a.onDown(URL, 'Connection refused');
  a.onDown('redis://127.0.0.1:6380/0', 'Connection refused');
  assert.equal(lines.length, 2);
});

test('a client closed while its server is away reports onClosedWhileDown (real ioredis client, nothing listening)', async () => {
  const port = await freePort();
  const seen: string[] = [];
  const client = createRedisClient(resolveRedisConnection(`redis://127.0.0.1:${port}/0`), {
    events: { onDown: (_u, reason) => seen.push(`down ${reason}`), onRecovered: () => seen.push('up'), onClosedWhileDown: (url) => seen.push(`closed ${url}`) },
  });
  await waitFor(() => seen.length > 0, 5000, 'the outage reported');
  dropRedisClient(client);
  await waitFor(() => seen.length > 1, 5000, 'the close reported');
  assert.deepEqual(seen, ['down Connection refused', `closed redis://127.0.0.1:${port}/0`]);
});
