/** Types of cpu-tasks.mjs for bench/cpu-pools.ts. */
import type { Celeriac } from '../../../packages/core/dist/esm/index.js';
export declare const app: Celeriac;
/** SHA-256 over `blocks` × 64 KiB (OpenSSL's, as in the Python task). */
export declare function hashLoop(blocks: number): string;
