// Periodic tasks, the Celery way:
//   celeriac worker -B -A examples/periodic/tasks.mjs          one process: worker + embedded beat
//   celeriac beat -A examples/periodic/tasks.mjs                beat alone (with a worker elsewhere)
//   celeriac beat list -A examples/periodic/tasks.mjs           the entries, and dynamic ones in Redis
// The broker comes from CELERIAC_BROKER_URL / CELERY_BROKER_URL; without one it is
// memory:// (worker -B only: beat and the worker share the process).
import { appendFileSync } from 'node:fs';
import { createApp, crontab } from '@celeriac/core';

const env = process.env;
export const app = createApp('periodic', {
  brokerUrl: env.CELERIAC_BROKER_URL ?? env.CELERY_BROKER_URL ?? 'memory://',
  timezone: env.PERIODIC_TIMEZONE ?? 'Europe/Berlin',
  beatSchedule: {
    // Celery: 'heartbeat': {'task': 'periodic.heartbeat', 'schedule': 2.0, 'args': ('beat',)}
    heartbeat: { task: 'periodic.heartbeat', schedule: { seconds: 2 }, args: ['beat'] },
  },
});

// Celery: @app.on_after_configure.connect ... sender.add_periodic_task(crontab(hour=7, minute=30, day_of_week=1), ...)
app.beat.add('monday-report', { task: 'periodic.report', schedule: crontab({ hour: 7, minute: 30, dayOfWeek: 'mon' }), kwargs: { week: true } });

export const heartbeat = app.task('periodic.heartbeat', (source) => {
  const line = `heartbeat from ${source} at ${new Date().toISOString()}`;
  if (env.PERIODIC_LOG) appendFileSync(env.PERIODIC_LOG, line + '\n');
  return line;
});

export const report = app.task('periodic.report', ({ week } = {}) => `report (week=${week})`);
