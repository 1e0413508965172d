import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigurationError, createApp, defaultSettings, fromObject, resolveSettings } from '../packages/core/src/index.ts';

test('defaults are Celery 5.2 defaults', () => {
  const s = defaultSettings();
  assert.equal(s.brokerUrl, 'memory://');
  assert.equal(s.taskDefaultQueue, 'celery');
  assert.equal(s.resultExpires, 86_400);
  assert.equal(s.workerPrefetchMultiplier, 4);
  assert.deepEqual(s.acceptContent, ['json']);
  assert.equal(s.taskDefaultRetryDelay, 180);
  assert.equal(s.taskAcksLate, false);
});

test('fromObject maps namespaced, lowercase and old uppercase names', () => {
  const s = fromObject(
    {
      CELERY_BROKER_URL: 'redis://h:6379/0',
      CELERY_RESULT_BACKEND: 'redis://h:6379/1',
      CELERY_TASK_SERIALIZER: 'json',
      CELERY_ACCEPT_CONTENT: ['json'],
      CELERY_WORKER_PREFETCH_MULTIPLIER: '2',
      CELERYD_CONCURRENCY: '8',
      CELERY_TASK_ACKS_LATE: 'true',
      DEBUG: true, // not ours: ignored silently (outside the namespace)
    },
    { namespace: 'CELERY', onUnknown: 'throw' },
  );
  assert.deepEqual(s, {
    brokerUrl: 'redis://h:6379/0',
    resultBackend: 'redis://h:6379/1',
    taskSerializer: 'json',
    acceptContent: ['json'],
    workerPrefetchMultiplier: 2,
    workerConcurrency: 8,
    taskAcksLate: true,
  });
  assert.deepEqual(fromObject({ broker_url: 'redis://x', task_routes: { 'a.*': { queue: 'q', routing_key: 'q' } } }, { onUnknown: 'throw' }), {
    brokerUrl: 'redis://x',
    taskRoutes: { 'a.*': { queue: 'q', routingKey: 'q' } },
  });
  assert.deepEqual(fromObject({ BROKER_URL: 'redis://old', CELERY_DEFAULT_QUEUE: 'jobs' }, { onUnknown: 'throw' }), {
    brokerUrl: 'redis://old',
    taskDefaultQueue: 'jobs',
  });
});

test('unknown keys in the namespace are reported, never silently dropped', () => {
  let reported: string[] = [];
  fromObject({ CELERY_BROKER_URL: 'redis://x', CELERY_BORKER_URL: 'typo', OTHER: 1 }, { namespace: 'CELERY', onUnknown: (keys) => (reported = keys) });
  assert.deepEqual(reported, ['CELERY_BORKER_URL']);
  assert.throws(() => fromObject({ CELERY_BORKER_URL: 'typo' }, { namespace: 'CELERY', onUnknown: 'throw' }), (err: Error) => {
    assert.ok(err instanceof ConfigurationError);
    assert.match(err.message, /CELERY_BORKER_URL/);
    return true;
  });
});

test('bad values name the setting', () => {
  assert.throws(() => fromObject({ CELERYD_CONCURRENCY: 'lots' }), /CELERYD_CONCURRENCY must be a number/);
});

test('configure() binds settings later; changing the broker after connecting throws', async () => {
  const app = createApp('late', {});
  app.task('late.noop', () => null);
  app.configure({ brokerUrl: 'memory://late', taskDefaultQueue: 'q1' });
  assert.equal(app.settings.taskDefaultQueue, 'q1');
  await app.getBroker();
  assert.throws(() => app.configure({ brokerUrl: 'memory://other' }), ConfigurationError);
  await app.getBackend();
  assert.throws(() => app.configure({ resultBackend: 'memory://elsewhere' }), /cannot change resultBackend/);
  await assert.rejects(app.sendTask('late.noop', [], {}, { countdown: Number.NaN }), /countdown must be a finite number of seconds, got NaN/);
  await assert.rejects(app.sendTask('late.noop', [], {}, { eta: 'tomorrow' }), /Invalid date/);
  await app.close();
});

test('results are disabled (with a clear error) when a server broker has no backend', async () => {
  const app = createApp('nobackend', { brokerUrl: 'redis://127.0.0.1:1/0' });
  await assert.rejects(app.getBackend(), /No result backend configured: set resultBackend/);
});

test('workerHangTimeout: Celery-style name, 5 min default, must exceed the hard time limits', async () => {
  assert.equal(defaultSettings().workerHangTimeout, 300);
  assert.equal(defaultSettings().taskRejectOnWorkerLost, false);
  assert.deepEqual(fromObject({ CELERY_WORKER_HANG_TIMEOUT: '600', CELERY_TASK_REJECT_ON_WORKER_LOST: 'true' }, { namespace: 'CELERY' }), {
    workerHangTimeout: 600,
    taskRejectOnWorkerLost: true,
  });
  assert.throws(() => createApp('t', { taskTimeLimit: 300 }).settings, (err: Error) => err instanceof ConfigurationError && /workerHangTimeout \(300 s\) must be greater than taskTimeLimit \(300 s\)/.test(err.message));
  assert.throws(() => createApp('t', { workerHangTimeout: -1 }).settings, /workerHangTimeout must be a number of seconds ≥ 0/);
  assert.doesNotThrow(() => createApp('t', { taskTimeLimit: 300, workerHangTimeout: 0 }).settings);
  // A task's own hard limit is checked when a worker starts, before it connects.
  const app = createApp('t', { brokerUrl: 'redis://127.0.0.1:1/0', workerHangTimeout: 60 });
  app.task('long.one', () => 1, { timeLimit: 120 });
  const { Worker } = await import('../packages/core/src/worker/worker.ts');
  await assert.rejects(new Worker(app).start(), /workerHangTimeout \(60 s\) must be greater than the timeLimit of task long\.one \(120 s\)/);
});

test('resultBackendRetryWindow: 60 s by default; a negative or non-number window is refused, naming the setting', () => {
  assert.equal(resolveSettings({}).resultBackendRetryWindow, 60);
  assert.equal(resolveSettings({ resultBackendRetryWindow: 0 }).resultBackendRetryWindow, 0);
  assert.throws(() => resolveSettings({ resultBackendRetryWindow: -1 }), /resultBackendRetryWindow must be a number of seconds ≥ 0/);
  assert.throws(() => resolveSettings({ resultBackendRetryWindow: '60' as unknown as number }), /resultBackendRetryWindow must be/);
});

test('workerMaxRedeliveries: 3 by default; anything but an integer ≥ 0 is refused, naming the setting', () => {
  assert.equal(resolveSettings({}).workerMaxRedeliveries, 3);
  assert.equal(resolveSettings({ workerMaxRedeliveries: 0 }).workerMaxRedeliveries, 0);
  for (const bad of [-1, 1.5, Number.NaN, '3' as unknown as number]) {
    assert.throws(() => resolveSettings({ workerMaxRedeliveries: bad }), /workerMaxRedeliveries must be an integer ≥ 0/);
  }
});
