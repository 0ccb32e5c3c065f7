import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startApp, type TestApp } from '../support/app.ts';
import { startS3, type LocalS3 } from '../support/s3.ts';

describe('Parley on S3-compatible storage', () => {
  let s3: LocalS3;
  let t: TestApp;
  before(async () => {
    s3 = await startS3();
    t = await startApp({ env: s3.env });
  });
  after(async () => {
    await t.close();
    await s3.close();
  });

  test('the configured bucket is the store, and /ready reports it', async () => {
    assert.equal(t.deps.storage.kind, 's3');
    const ready = await t.api('GET', '/ready');
    assert.equal(ready.status, 200, ready.text);
    assert.equal(ready.body.checks.storage, 'ok');
  });

  test('with the S3 service gone, /ready says so at once: 503, storage down', async () => {
    await s3.close();
    const started = Date.now();
    const ready = await t.api('GET', '/ready');
    assert.equal(ready.status, 503, ready.text);
    assert.equal(ready.body.checks.storage, 'down');
    assert.ok(Date.now() - started < 10_000, 'the probe is bounded, not held by SDK retries');
  });
});
