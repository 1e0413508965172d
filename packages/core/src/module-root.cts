/**
 * Where this build of the package lives: `dist/esm`, `dist/cjs`, or `src` when run
 * through tsx. A CommonJS file in both builds (a `.cts` compiles to `.cjs`), so
 * ESM and CommonJS code find run-time assets (the Lua scripts, the heartbeat
 * thread's module) without `import.meta`, which a CommonJS build cannot contain.
 */
export const moduleRoot: string = __dirname;
