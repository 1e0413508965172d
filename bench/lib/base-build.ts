/** A second Celeriac build to A/B against (`--base=<dir>`: `dist/` and `package.json` of another commit, inside the repository so its dependencies resolve). */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Writes the bench app for that build (`<dir>/tasks.mjs`, importing its own dist) and returns its CLI and tasks paths. */
export function baseBuild(base: string): { cli: string; tasks: string } {
  const dir = resolve(base);
  const tasks = join(dir, 'tasks.mjs');
  writeFileSync(
    tasks,
    `import { createApp } from './dist/esm/index.js';\nexport const app = createApp('bench', { brokerUrl: process.env.BENCH_BROKER_URL, resultBackend: process.env.BENCH_BACKEND_URL });\nexport const add = app.task('bench.add', (x, y) => x + y);\n`,
  );
  return { cli: join(dir, 'dist/esm/cli/main.js'), tasks };
}
