// After `tsc -b`: every package's dist/cjs/ gets a package.json saying {"type": "commonjs"},
// so Node (and TypeScript) read the CommonJS build as CommonJS although the package
// itself is "type": "module" (dist/esm/ is ESM by that).
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const packages = process.argv.length > 2 ? process.argv.slice(2) : ['core', 'express', 'fastify', 'nest'];
for (const pkg of packages) {
  const dir = `${root}packages/${pkg}/dist/cjs`;
  if (!existsSync(dir)) throw new Error(`${dir} is missing: the CommonJS build of @celeriac/${pkg} did not run`);
  writeFileSync(`${dir}/package.json`, '{\n  "type": "commonjs"\n}\n');
}
