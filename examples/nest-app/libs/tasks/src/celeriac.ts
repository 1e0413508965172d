import { createApp } from '@celeriac/core';

/** The process's app, declared before any config exists; the api and the worker bind it (CeleriacModule's `config`). */
export const celeriac = createApp('nest-app');

/** Celery-style settings from the environment; memory:// (one process, zero servers) when none are set. */
export function celeriacConfig(): Record<string, string | undefined> {
  return { CELERY_BROKER_URL: process.env.CELERY_BROKER_URL || 'memory://', CELERY_RESULT_BACKEND: process.env.CELERY_RESULT_BACKEND || undefined };
}
