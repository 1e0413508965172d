/** Read the captured Celery 5.2 golden messages in ../shared/reference. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const candidates = [join(here, '../../../shared/reference/fixtures/celery-5.2'), join(here, '../../shared/reference/fixtures/celery-5.2')];

/** Folder of the golden fixtures (shared/ sits beside the checkout). */
export const FIXTURES_DIR = candidates.find((p) => existsSync(p)) ?? candidates[0]!;

/** Parse one fixture file, e.g. `producer-redis/01_delay.json`. */
export function fixture<T = Record<string, unknown>>(relative: string): T {
  return JSON.parse(readFileSync(join(FIXTURES_DIR, relative), 'utf8')) as T;
}

/** All fixture file names in a folder. */
export function fixtureNames(folder: string): string[] {
  return readdirSync(join(FIXTURES_DIR, folder)).filter((f) => f.endsWith('.json')).sort();
}
