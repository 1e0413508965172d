/**
 * Durable providers inside tasks: with a ContextIdStrategy (Nest's multi-tenancy
 * recipe) the task's context goes through ContextIdFactory.getByRequest, so each
 * tenant's runs share one durable instance. Its own file: the strategy is global.
 */
import 'reflect-metadata';
import { CeleriacModule, TaskProducer } from '@celeriac/nest';
import { Module, type INestApplication } from '@nestjs/common';
import { ContextIdFactory } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { TenantCache, TenantStrategy } from './fixtures/tenant.service.js';

let app: INestApplication;

beforeAll(async () => {
  ContextIdFactory.apply(new TenantStrategy());
  @Module({ imports: [CeleriacModule.forRoot({ name: 'nest-durable' })], providers: [TenantCache] })
  class DurableModule {}
  const moduleRef = await Test.createTestingModule({ imports: [DurableModule] }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  await app.init();
});

afterAll(async () => {
  await app?.close();
});

test("a durable provider is shared by one tenant's task runs and separate per tenant", async () => {
  const whoami = app.get(TaskProducer).tasksOf(TenantCache).whoami;
  const run = async (tenant: string) => (await whoami.applyAsync([], {}, { headers: { tenant } })).get({ timeout: 10_000 });
  const [a1, a2, b1] = [await run('acme'), await run('acme'), await run('globex')];
  expect(a1.tenant).toBe('acme');
  expect(b1.tenant).toBe('globex');
  expect(a2.instanceId).toBe(a1.instanceId);
  expect(b1.instanceId).not.toBe(a1.instanceId);
});
