/** Types of cpu-tasks.mjs for bench/cpu-pools.ts. */
import type { Celeriac } from '../../../packages/core/dist/index.js';
export declare const app: Celeriac;
/** `iterations` SHA-256 digests of 64 bytes. */
export declare function hashLoop(iterations: number): string;
