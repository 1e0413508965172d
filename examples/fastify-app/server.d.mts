import type { FastifyInstance } from 'fastify';
/** Build the example app; `overrides` (tests) win over the environment. */
export function buildServer(overrides?: { env?: Record<string, string>; worker?: boolean | 'embedded'; logger?: boolean }): Promise<FastifyInstance>;
