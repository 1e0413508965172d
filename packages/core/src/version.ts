/** This package's version, read once from its package.json (found upwards from the running build). */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { moduleRoot } from './module-root.cjs';

function ownVersion(): string {
  for (let dir = moduleRoot; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === '@celeriac/core' && pkg.version) return pkg.version;
    }
    if (dirname(dir) === dir) return '?';
  }
}

/** `@celeriac/core`'s version (`?` when its package.json cannot be found). */
export const VERSION: string = ownVersion();
