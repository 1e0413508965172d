/** `-A test/apps/proj` finds this file, as Celery's `-A proj` finds `proj/celery.py`. */
import { createApp } from '../../../packages/core/src/index.ts';

export const celery = createApp('proj');
export const ping = celery.task('proj.ping', () => 'pong');
