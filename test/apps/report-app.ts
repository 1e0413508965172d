/** An app with secrets in its settings, for `celeriac report` (they must come out masked). */
import { createApp } from '../../packages/core/src/index.ts';

export const app = createApp('report-app', {
  brokerUrl: 'redis://:br0ker-pw@127.0.0.1:6379/0',
  resultBackend: 'redis://:back3nd-pw@127.0.0.1:6379/1',
  workerConcurrency: 3,
  brokerTransportOptions: { visibilityTimeout: 120, password: 'tr4nsport-pw' },
  resultBackendTransportOptions: { redis: { password: 'nested-pw', db: 1 } },
});

export const ping = app.task('report.ping', () => 'pong');
