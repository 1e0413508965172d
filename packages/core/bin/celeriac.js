#!/usr/bin/env node
// The `celeriac` command. This file is committed (not built) so that `npm ci` on a
// fresh clone links node_modules/.bin/celeriac before anything is compiled; it only
// hands over to the compiled CLI in ../dist/esm/cli/main.js.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/esm/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(
    `celeriac: the CLI is not built yet (${fileURLToPath(main)} is missing): run npm run build\n`,
  );
  process.exit(1);
}
await import(main.href);
