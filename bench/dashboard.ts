/**
 * The dashboard's own cost, without a broker: events folded into its model per
 * second, and the time to render the overview and a 200-row task list with the
 * model full (10,000 tasks, 20 workers). `node --import tsx bench/dashboard.ts`.
 */
import { cpus, loadavg } from 'node:os';
import { createApp } from '../packages/core/src/index.ts';
import { DashboardModel } from '../packages/core/src/dashboard/dashboard-model.ts';
import { fragments } from '../packages/core/src/dashboard/pages.ts';
import type { CeleryEvent } from '../packages/core/src/events/event-message.ts';

const app = createApp('bench-dashboard', { brokerUrl: 'memory://bench-dashboard' });
const model = new DashboardModel(app);
const feed = (e: CeleryEvent) => (model.receiver as unknown as { dispatch(e: CeleryEvent): void }).dispatch(e);

const N = 10_000;
const events: CeleryEvent[] = [];
const t0 = Date.now() / 1000;
for (let i = 0; i < N; i++) {
  const uuid = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
  const hostname = `w${i % 20}@bench`;
  const at = t0 + i / 1000;
  events.push({ type: 'task-received', uuid, hostname, timestamp: at, name: `bench.t${i % 7}`, args: `(${i},)`, kwargs: '{}', retries: 0, root_id: uuid, parent_id: null });
  events.push({ type: 'task-started', uuid, hostname, timestamp: at + 0.0001 });
  events.push(i % 10 === 3 ? { type: 'task-failed', uuid, hostname, timestamp: at + 0.001, exception: "ValueError('x')", traceback: 'Traceback...' } : { type: 'task-succeeded', uuid, hostname, timestamp: at + 0.001, result: String(i), runtime: 0.001 });
  if (i % 500 === 0) events.push({ type: 'worker-heartbeat', hostname, timestamp: at, freq: 2, active: 1, processed: i, loadavg: [0.1, 0.2, 0.3] });
}
const cpu0 = process.cpuUsage();
const start = performance.now();
for (const e of events) feed(e);
const foldMs = performance.now() - start;
const cpu = process.cpuUsage(cpu0);
const ctx = { model, base: '', actions: true };
const time = (f: () => unknown, runs = 20) => {
  f();
  const s = performance.now();
  for (let i = 0; i < runs; i++) f();
  return (performance.now() - s) / runs;
};
const home = time(() => fragments(ctx, { kind: 'home' }));
const list = time(() => fragments(ctx, { kind: 'tasks', filter: { limit: 200 } }));
const failed = time(() => fragments(ctx, { kind: 'tasks', filter: { state: 'FAILURE', limit: 200 } }));
console.log(JSON.stringify({
  events: events.length,
  eventsPerSecond: Math.round(events.length / (foldMs / 1000)),
  cpuMicrosPerEvent: +((cpu.user + cpu.system) / events.length).toFixed(2),
  renderOverviewMs: +home.toFixed(2),
  renderTaskList200Ms: +list.toFixed(2),
  renderFailedList200Ms: +failed.toFixed(2),
  loadavg: loadavg().map((l) => +l.toFixed(2)),
  cores: cpus().length,
}));
await model.close();
await app.close();
