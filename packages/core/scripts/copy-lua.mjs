// Copies the Lua scripts of the Redis transport (src/brokers/redis-lua/) and of the Redis
// result backend (src/backends/redis-lua/) and of beat (src/beat/redis-lua/) next to the compiled JavaScript of both builds
// (dist/esm/... and dist/cjs/...), where redis-scripts.js loads them.
import { cpSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
for (const format of ['esm', 'cjs']) {
  for (const dir of ['brokers/redis-lua', 'backends/redis-lua', 'beat/redis-lua']) {
    cpSync(`${root}src/${dir}`, `${root}dist/${format}/${dir}`, { recursive: true });
  }
}
