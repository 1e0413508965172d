/**
 * The app `celeriac beat` subprocesses load in the beat CLI tests
 * (`-A test/apps/beat-app.mjs`; plain JavaScript on the built package, like a user's
 * app, so the tests run the built `celeriac` without tsx): one entry every second for a task no process
 * here defines. The broker comes from the command line; CELERIAC_TEST_BEAT_TTL sets
 * the leader lock TTL (s); CELERIAC_TEST_BEAT_BAD adds a malformed entry;
 * CELERIAC_TEST_BEAT_TZ sets the time zone.
 */
import { createApp } from '@celeriac/core';

const env = process.env;
export const app = createApp('beat-app', {
  beatLockTtl: Number(env.CELERIAC_TEST_BEAT_TTL ?? 30),
  ...(env.CELERIAC_TEST_BEAT_TZ ? { timezone: env.CELERIAC_TEST_BEAT_TZ } : {}),
  beatSchedule: {
    'tick-every-second': { task: 'beat.tick', schedule: { seconds: 1 } },
    ...(env.CELERIAC_TEST_BEAT_BAD ? { 'broken-nightly': { task: 'beat.nightly', schedule: { minute: '61', hour: '3' } } } : {}),
  },
});
