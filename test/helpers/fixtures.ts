/**
 * Read the captured Celery 5.2 golden messages kept in this repository
 * (`test/fixtures/celery-5.2/`; see `test/fixtures/README.md` for how they were captured).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** Folder of the golden fixtures, inside the checkout (never outside it). */
export const FIXTURES_DIR = join(here, '..', 'fixtures', 'celery-5.2');

if (!existsSync(FIXTURES_DIR)) {
  throw new Error(`Celery 5.2 fixtures missing at ${FIXTURES_DIR}: restore test/fixtures/celery-5.2/ from git`);
}

/** Parse one fixture file, e.g. `producer-redis/01_delay.json`. */
export function fixture<T = Record<string, unknown>>(relative: string): T {
  return JSON.parse(readFileSync(join(FIXTURES_DIR, relative), 'utf8')) as T;
}

/** All fixture file names in a folder. */
export function fixtureNames(folder: string): string[] {
  return readdirSync(join(FIXTURES_DIR, folder)).filter((f) => f.endsWith('.json')).sort();
}
