/**
 * Process-wide state shared by every copy of @celeriac/core loaded in one process.
 *
 * A process can hold two copies of this package: the ESM build and the CommonJS
 * build (an ESM CLI loading a CommonJS NestJS app), or two installed versions.
 * State kept in module scope would then exist twice ("found 0 apps",
 * `currentTask()` undefined in the other copy). Everything that must be one per
 * process lives on `globalThis` under a `Symbol.for('celeriac.<name>')` key, which
 * every copy resolves to the same symbol.
 */

/**
 * The process-wide value named `name`, created by `create` on first use by any
 * copy of the package. Keep the stored shape stable across versions: another copy
 * may have created it.
 */
export function processWide<T>(name: string, create: () => T): T {
  const key = Symbol.for(`celeriac.${name}`);
  const store = globalThis as unknown as Record<symbol, unknown>;
  if (!(key in store)) Object.defineProperty(store, key, { value: create(), enumerable: false, configurable: true, writable: false });
  return store[key] as T;
}

/** The brand every `Celeriac` app carries, whichever copy of the package created it. */
export const APP_BRAND: unique symbol = Symbol.for('celeriac.app') as never;

/**
 * Whether `value` is a Celeriac app, from this copy of @celeriac/core or any other
 * (ESM and CommonJS builds, two installed versions). Use it instead of
 * `instanceof`, which fails across copies.
 */
export function isCeleriacApp(value: unknown): value is import('./app.js').Celeriac {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[APP_BRAND] === true;
}
