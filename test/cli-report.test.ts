/** `celeriac --version` and `celeriac report` (as `celery report`: versions, then non-default settings, secrets masked). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { test } from 'node:test';
import { runCli } from './helpers/cli.ts';

const { version } = JSON.parse(readFileSync('packages/core/package.json', 'utf8')) as { version: string };

test('celeriac --version prints the package version', async () => {
  const run = await runCli(['--version']);
  assert.equal(run.code, 0);
  assert.equal(run.stdout, `${version}\n`);
});

test('celeriac report: software, platform, app, then the non-default settings with every secret masked', async () => {
  const run = await runCli(['-A', 'test/apps/report-app.ts', 'report']);
  assert.equal(run.code, 0, run.stderr);
  const out = run.stdout;
  assert.match(out, new RegExp(`^software -> celeriac:${version.replace(/\./g, '\\.')} node:${process.version.replace(/\./g, '\\.')}\n {12}ioredis:\\d+\\.\\d+\\.\\d+ pino:\\d+\\.\\d+\\.\\d+ commander:\\d+\\.\\d+\\.\\d+\n`));
  assert.match(out, new RegExp(`\nplatform -> system:${process.platform} arch:${process.arch}\n {12}kernel version:${release().replace(/[.+]/g, '\\$&')}\n`));
  assert.match(out, /\napp      -> report-app \(.*test\/apps\/report-app\.ts\) tasks:1\n/);
  assert.match(out, /\nsettings -> transport:redis results:redis:\/\/:\*\*@127\.0\.0\.1:6379\/1\n\n/);
  assert.match(out, /\nbrokerUrl: "redis:\/\/:\*{8}@127\.0\.0\.1:6379\/0"\n/);
  assert.match(out, /\nresultBackend: "redis:\/\/:\*{8}@127\.0\.0\.1:6379\/1"\n/);
  assert.match(out, /\nworkerConcurrency: 3\n/);
  assert.match(out, /\nbrokerTransportOptions: \{"visibilityTimeout":120,"password":"\*{8}"\}\n/);
  assert.match(out, /\nresultBackendTransportOptions: \{"redis":\{"password":"\*{8}","db":1\}\}\n/);
  assert.doesNotMatch(out, /taskSerializer/, 'defaults are left out, as Celery does');
  for (const secret of ['br0ker-pw', 'back3nd-pw', 'tr4nsport-pw', 'nested-pw']) assert.ok(!out.includes(secret), `${secret} is masked`);
});

test('celeriac report without -A: settings from the flags and the environment, masked', async () => {
  const run = await runCli(['report'], { CELERY_BROKER_URL: 'redis://user:pw1@127.0.0.1:6390/2' });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /\napp      -> celeriac \(no -A\) tasks:0\n/);
  assert.match(run.stdout, /\nbrokerUrl: "redis:\/\/user:\*{8}@127\.0\.0\.1:6390\/2"\n/);
  assert.ok(!run.stdout.includes('pw1'));
});
