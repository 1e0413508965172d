// Copies the Redis transport's Lua scripts (src/brokers/redis-lua/**/*.lua) next to
// the compiled JavaScript (dist/brokers/redis-lua/), where redis-scripts.js loads them.
import { cpSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
cpSync(`${root}src/brokers/redis-lua`, `${root}dist/brokers/redis-lua`, { recursive: true });
