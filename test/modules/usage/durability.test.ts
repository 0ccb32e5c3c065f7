import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';
import { uniqueEmail } from '../../support/factories.ts';
import { call, freePort, startServer, tempDataDir } from '../../support/process.ts';

// Parley as real processes on PGlite: what metering keeps through a graceful stop and through a crash.
describe('metering across stops and crashes', { timeout: 300_000 }, () => {
  const data = tempDataDir();
  let openai: FakeOpenAI;
  let env: Record<string, string>;
  let key: string;
  let token: string;

  before(async () => {
    openai = await startFakeOpenAI();
    openai.state.defaults = { reply: 'ok', usage: { input: 10, output: 5 } };
    env = { PARLEY_DATA_DIR: data.dir, PORT: String(await freePort()), ...openai.env, DEFAULT_MODEL: 'openai:gpt-4o-mini', LOG_LEVEL: 'warn' };
    const server = await startServer(env);
    try {
      const reg = await call(server.url, 'POST', '/v1/auth/register', { body: { email: uniqueEmail('meter'), password: 'correct horse battery staple' } });
      assert.equal(reg.status, 201);
      token = reg.body.accessToken;
      const k = await call(server.url, 'POST', '/v1/api-keys', { token, body: { name: 'k', scopes: ['chat', 'usage:read'] } });
      key = k.body.key;
    } finally {
      await server.stop();
    }
  });
  after(async () => {
    await openai.close();
    data.remove();
  });

  async function calls(url: string, n: number) {
    for (let i = 0; i < n; i++) {
      const res = await call(url, 'POST', '/v1/chat/completions', { token: key, body: { model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] } });
      assert.equal(res.status, 200);
    }
  }

  async function requestsOnRecord(): Promise<number> {
    const server = await startServer(env);
    try {
      const usage = await call(server.url, 'GET', '/v1/usage', { token: key });
      assert.equal(usage.status, 200);
      return usage.body.totals.requests;
    } finally {
      await server.stop();
    }
  }

  test('a graceful stop writes every pending event, however long the flush interval', async () => {
    const before = 0;
    const server = await startServer({ ...env, USAGE_FLUSH_INTERVAL_MS: '60000' });
    await calls(server.url, 5);
    assert.deepEqual(await server.stop(), { code: 0, signal: null });
    assert.equal(await requestsOnRecord(), before + 5);
  });

  test('a crash loses at most the last flush interval', async () => {
    const before = 5; // the graceful test's calls
    // Killed a second after its calls, with a 200 ms interval: everything was already written.
    let server = await startServer({ ...env, USAGE_FLUSH_INTERVAL_MS: '200' });
    await calls(server.url, 3);
    await new Promise((r) => setTimeout(r, 1_000));
    server.child.kill('SIGKILL');
    await server.exited;
    assert.equal(await requestsOnRecord(), before + 3);
    // Killed right after its calls, with a 60 s interval: those calls were still in memory, and are lost.
    server = await startServer({ ...env, USAGE_FLUSH_INTERVAL_MS: '60000' });
    await calls(server.url, 2);
    server.child.kill('SIGKILL');
    await server.exited;
    assert.equal(await requestsOnRecord(), before + 3, 'the documented bound: what had not been flushed');
  });
});
