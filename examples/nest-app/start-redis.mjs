// One command for the Redis setup: `npm run start:redis` (with CELERY_BROKER_URL and
// CELERY_RESULT_BACKEND set) runs `nest start worker` and `nest start api` side by side,
// their output interleaved with a prefix. Each runs in its own process group (the Nest
// CLI and the app it starts); Ctrl-C or a SIGTERM sent to this process is passed on to
// both groups, as a terminal would (the worker finishes its running tasks first). It
// exits once both have.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

if (!process.env.CELERY_BROKER_URL || process.env.CELERY_BROKER_URL.startsWith('memory://')) {
  console.error('start:redis: set CELERY_BROKER_URL (and CELERY_RESULT_BACKEND) to your Redis, e.g. redis://127.0.0.1:6379/0; for memory:// run `npm run start`.');
  process.exit(2);
}
const cwd = dirname(fileURLToPath(import.meta.url));
// The Nest CLI itself (npx would add a process to each group for nothing).
const nest = createRequire(import.meta.url).resolve('@nestjs/cli/bin/nest.js');
const spawned = [];
const children = ['worker', 'api'].map((project) => {
  const child = spawn(process.execPath, [nest, 'start', project], { cwd, env: process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  spawned.push(child);
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop();
      for (const line of lines) console.log(`[${project}] ${line}`);
    });
  }
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ project, code, signal })));
});
const passOn = (signal) => () => {
  for (const child of spawned) {
    try {
      process.kill(-child.pid, signal); // the CLI and the app it started
    } catch {
      // that group is gone already
    }
  }
};
process.on('SIGINT', passOn('SIGINT'));
process.on('SIGTERM', passOn('SIGTERM'));
const results = await Promise.all(children);
for (const { project, code, signal } of results) console.log(`[${project}] exited (${code ?? signal})`);
