/** An -A module that throws while it loads (the CLI must show where). */
import { createApp } from '../../packages/core/src/index.ts';

export const app = createApp('broken');
const settings = JSON.parse('{not json') as Record<string, unknown>;
app.configure(settings);
