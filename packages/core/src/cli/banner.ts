import { arch, platform, release } from 'node:os';
import type { Worker } from '../worker/worker.js';
import { maskUrl } from '../mask-url.js';


/** The startup banner, shaped like Celery's (`taskEvents`: -E given). */
export function workerBanner(worker: Worker, version: string, taskEvents = false): string {
  const app = worker.app;
  const s = app.settings;
  const lines = [
    ` -------------- ${worker.hostname} v${version} (celeriac)`,
    `--- ***** ----- Node ${process.version} ${platform()}-${release()}-${arch()} ${new Date().toISOString()}`,
    '-- ******* ---- ',
    '- *** --- * --- ',
    '- ** ---------- [config]',
    `- ** ---------- .> app:         ${app.name}`,
    `- ** ---------- .> transport:   ${maskUrl(s.brokerUrl)}`,
    `- ** ---------- .> results:     ${app.resultBackendUrl ? maskUrl(app.resultBackendUrl) : 'disabled://'}`,
    `- *** --- * --- .> concurrency: ${worker.concurrency} (${worker.poolKind}), prefetch ${worker.prefetchLimit}`,
    `-- ******* ---- .> task events: ${taskEvents || s.workerSendTaskEvents ? 'ON' : 'OFF (enable -E to monitor tasks in this worker)'}`,
    '--- ***** ----- ',
    ' -------------- [queues]',
    ...worker.queues.map((q) => `                .> ${q.padEnd(16)} exchange=${q}(direct) key=${q}`),
    '',
    '[tasks]',
    ...app.taskNames.filter((t) => !t.startsWith('celery.')).map((t) => `  . ${t}`),
    '',
  ];
  return lines.join('\n');
}
