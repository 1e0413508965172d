#!/bin/sh
":" //; case " $NODE_OPTIONS " in *--max-semi-space-size*|*--heap-growing-percent*) exec node "$0" "$@";; esac; exec node ${CELERIAC_NODE_FLAGS---max-semi-space-size=4 --heap-growing-percent=50} "$0" "$@"
// The `celeriac` command. This file is committed (not built) so that `npm ci` on a
// fresh clone links node_modules/.bin/celeriac before anything is compiled; it only
// hands over to the compiled CLI in ../dist/esm/cli/main.js.
//
// The first two lines are read by /bin/sh when the file is run as a command
// (`npx celeriac`, node_modules/.bin/celeriac, an npm script): the shell replaces
// itself with `node <memory flags> <this file>` (exec: same process, so signals, exit
// code and stdio are node's own). Node skips the `#!` line and reads the second as a
// string and a comment. The flags cap V8's young generation at 4 MB semi-spaces and
// grow the old generation by 50 % instead of up to 4x: a worker draining a backlog
// otherwise grows its heap to ~120 MB RSS for ~11 MB of live objects
// (bench/results/perf-findings.md §4, §8). Opt out or choose others with
// CELERIAC_NODE_FLAGS (empty: none); flags for the heap in NODE_OPTIONS win too.
// `node path/to/celeriac.js` runs without them (the shell lines are not read).
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
