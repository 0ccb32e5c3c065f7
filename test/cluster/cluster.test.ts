import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { freshPostgresDatabase } from '../support/app.ts';
import { eventually } from '../support/eventually.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';
import { uniqueEmail } from '../support/factories.ts';
import { nginxAvailable, startNginx } from '../support/nginx.ts';
import { call, clusterEnv, startServer, type ServerProcess } from '../support/process.ts';
import { startS3, type LocalS3 } from '../support/s3.ts';
import { readSse } from '../support/sse.ts';
import WebSocket from 'ws';

const skip = !process.env.DATABASE_URL || !process.env.REDIS_URL ? 'needs PostgreSQL and Redis (DATABASE_URL and REDIS_URL)' : !nginxAvailable() ? 'needs nginx (apt-get install nginx-light)' : false;

/**
 * The distributed setup as real processes: two `parley serve` instances on one
 * PostgreSQL database and Redis prefix, behind Debian's nginx running
 * deploy/nginx/nginx.conf. No sticky sessions anywhere.
 */
describe('a cluster behind nginx', { skip, timeout: 300_000 }, () => {
  let openai: FakeOpenAI;
  let s3: LocalS3;
  let db: Awaited<ReturnType<typeof freshPostgresDatabase>>;
  let a: ServerProcess;
  let b: ServerProcess;
  let nginx: Awaited<ReturnType<typeof startNginx>>;
  let env: Record<string, string>;
  let token: string;

  before(async () => {
    [openai, s3] = await Promise.all([startFakeOpenAI(), startS3()]);
    db = await freshPostgresDatabase();
    env = clusterEnv(db.url, { TRUST_PROXY: 'true', ...openai.env, ...s3.env });
    [a, b] = await Promise.all([startServer(env, 'serve'), startServer(env, 'serve')]);
    nginx = await startNginx([Number(new URL(a.url).port), Number(new URL(b.url).port)]);
    const reg = await call(nginx.url, 'POST', '/v1/auth/register', { body: { email: uniqueEmail('cluster'), password: 'correct horse battery staple' } });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    token = reg.body.accessToken;
  });
  after(async () => {
    await nginx?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
    await openai?.close();
    await s3?.close();
    await db?.drop();
  });

  const handled = async (server: ServerProcess, route: string) => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('parley_http_request_duration_seconds_count') && l.includes(`route="${route}"`));
    return Number(line?.split(' ').pop() ?? 0);
  };

  test('per-IP limits and sessions see the address nginx saw, not an X-Forwarded-For the client wrote', async () => {
    const reg = await fetch(`${nginx.url}/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.7' },
      body: JSON.stringify({ email: uniqueEmail('forged'), password: 'correct horse battery staple' }),
    });
    assert.equal(reg.status, 201);
    const sessions = await call(nginx.url, 'GET', '/v1/auth/sessions', { token: ((await reg.json()) as { accessToken: string }).accessToken });
    assert.deepEqual(sessions.body.data.map((s: { ip: string }) => s.ip), ['127.0.0.1']);
  });

  test('nginx does not serve /metrics to the outside; each instance serves it to its scraper', async () => {
    assert.equal((await fetch(`${nginx.url}/metrics`)).status, 404);
    assert.match(await (await fetch(`${a.url}/metrics`)).text(), /parley_process_info/);
  });

  test('nginx spreads requests over both instances, any of which serves any request', async () => {
    for (let i = 0; i < 20; i++) {
      const me = await call(nginx.url, 'GET', '/v1/users/me', { token });
      assert.equal(me.status, 200);
    }
    assert.ok((await handled(a, '/v1/users/me')) > 0, 'A served some');
    assert.ok((await handled(b, '/v1/users/me')) > 0, 'B served some');
  });

  test('an answer streams through nginx token by token, and resumes on the other instance', async () => {
    const conversation = await call(nginx.url, 'POST', '/v1/conversations', { token, body: { title: 'cluster' } });
    assert.equal(conversation.status, 201);
    const id = conversation.body.id;
    openai.state.defaults = { chunks: ['one ', 'two ', 'three ', 'four ', 'five'], delayMs: 150 };
    try {
      const res = await fetch(`${nginx.url}/v1/conversations/${id}/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'content-type': 'application/json' },
        body: JSON.stringify({ content: 'Count' }),
      });
      assert.equal(res.status, 200);
      const events = readSse(res);
      const created = (await events.next()).value!;
      const firstDelta = (await events.next()).value!;
      assert.equal(firstDelta.event, 'delta');
      // Had nginx buffered the response, the first token would arrive only with the whole answer.
      const listed = await call(a.url, 'GET', `/v1/conversations/${id}/messages`, { token });
      const reply = listed.body.data.find((m: { id: string }) => m.id === created.data.assistantMessageId);
      assert.equal(reply?.status, 'streaming', 'the first token was not held back by nginx');
      await events.return(undefined);

      // Resumed from each instance directly, from offset 2: both replay the same rest of the answer.
      for (const server of [a, b]) {
        const resumed = await fetch(`${server.url}/v1/conversations/${id}/messages/${created.data.assistantMessageId}/stream?offset=2`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
        assert.equal(resumed.status, 200);
        const rest = [];
        for await (const e of readSse(resumed)) rest.push(e);
        assert.deepEqual(rest.map((e) => e.id), ['2', '3', '4', '5', '6']);
        assert.equal(rest.at(-1)!.event, 'message.completed');
      }
    } finally {
      openai.state.defaults = { reply: 'Hello from fake-openai.' };
    }
  });

  test('WebSockets pass through nginx, and get the events of a message posted on either instance', async () => {
    const conversation = await call(nginx.url, 'POST', '/v1/conversations', { token, body: { title: 'ws' } });
    const id = conversation.body.id;
    const ws = new WebSocket(`${nginx.url.replace('http', 'ws')}/v1/ws`, ['parley.v1', `parley.auth.${token}`]);
    const frames: any[] = [];
    ws.on('message', (raw) => frames.push(JSON.parse(String(raw))));
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      assert.equal(ws.protocol, 'parley.v1');
      await eventually(() => assert.ok(frames.some((f) => f.type === 'ready')));
      ws.send(JSON.stringify({ type: 'subscribe', topic: `conversation:${id}` }));
      await eventually(() => assert.ok(frames.some((f) => f.type === 'subscribed')));
      for (const server of [a, b]) {
        const posted = await call(server.url, 'POST', `/v1/conversations/${id}/messages`, { token, body: { content: 'Hello' } });
        assert.equal(posted.status, 201);
        await eventually(() => assert.ok(frames.some((f) => f.type === 'event' && f.event.type === 'message.stream.finished' && f.event.payload.messageId === posted.body.id)), 10_000);
      }
    } finally {
      ws.close();
    }
  });

  test("a document's save through either instance is one event that reaches its readers' sockets on both instances, once each", async () => {
    const email = uniqueEmail('reader');
    const reader = await call(nginx.url, 'POST', '/v1/auth/register', { body: { email, password: 'correct horse battery staple' } });
    assert.equal(reader.status, 201, JSON.stringify(reader.body));
    const doc = await call(nginx.url, 'POST', '/v1/documents', { token, body: { title: 'Across instances', body: 'text' } });
    assert.equal(doc.status, 201, JSON.stringify(doc.body));
    const shared = await call(nginx.url, 'POST', `/v1/documents/${doc.body.id}/shares`, { token, body: { email, role: 'viewer' } });
    assert.equal(shared.status, 201, JSON.stringify(shared.body));
    // The owner on A, the reader on B, each following the document.
    const follow = async (server: ServerProcess, credential: string) => {
      const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/ws`, ['parley.v1', `parley.auth.${credential}`]);
      const frames: any[] = [];
      ws.on('message', (raw) => frames.push(JSON.parse(String(raw))));
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      await eventually(() => assert.ok(frames.some((f) => f.type === 'ready')));
      ws.send(JSON.stringify({ type: 'subscribe', topic: `document:${doc.body.id}` }));
      await eventually(() => assert.ok(frames.some((f) => f.type === 'subscribed')));
      return { ws, frames };
    };
    const sockets = [await follow(a, token), await follow(b, reader.body.accessToken)];
    try {
      let version = doc.body.version as number;
      for (const server of [a, b]) {
        const saved = await call(server.url, 'PUT', `/v1/documents/${doc.body.id}`, { token, body: { body: `saved through ${server.url}`, baseVersion: version } });
        assert.equal(saved.status, 200, JSON.stringify(saved.body));
        version = saved.body.version;
        for (const { frames } of sockets) {
          await eventually(() => assert.ok(frames.some((f) => f.type === 'event' && f.event.type === 'document.saved' && f.event.payload.version === version)), 10_000);
        }
      }
      for (const { frames } of sockets) {
        const ids = frames.filter((f) => f.type === 'event' && f.event.type === 'document.saved').map((f) => f.event.id);
        assert.equal(ids.length, 2, 'one event per save, each heard once');
        assert.equal(new Set(ids).size, 2);
      }
    } finally {
      for (const { ws } of sockets) ws.close();
    }
  });

  test('a key deleted through one instance is refused by the other at once', async () => {
    const created = await call(a.url, 'POST', '/v1/api-keys', { token, body: { name: 'k' } });
    assert.equal(created.status, 201);
    assert.equal((await call(b.url, 'GET', '/v1/users/me', { token: created.body.key })).status, 200, 'verified and cached on B');
    assert.equal((await call(a.url, 'DELETE', `/v1/api-keys/${created.body.id}`, { token })).status, 204);
    await eventually(async () => assert.equal((await call(b.url, 'GET', '/v1/users/me', { token: created.body.key })).status, 401), 2_000);
  });

  test('a file larger than nginx\'s body limit for JSON streams through it, and either instance serves it from the shared bucket', async () => {
    const bytes = Buffer.alloc(5 * 1024 * 1024, 'parley cluster file\n');
    const form = new FormData();
    form.append('file', new Blob([bytes]), 'big.txt');
    const up = await fetch(`${nginx.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
    assert.equal(up.status, 201, await up.clone().text());
    const { id, size } = (await up.json()) as { id: string; size: number };
    assert.equal(size, bytes.length);
    for (const base of [a.url, b.url, nginx.url]) {
      const res = await fetch(`${base}/v1/files/${id}/content`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 200);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(bytes), `${base} served the same bytes`);
    }
    // JSON bodies keep nginx's small limit.
    const json = await fetch(`${nginx.url}/v1/conversations`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ title: 'x'.repeat(3 * 1024 * 1024) }) });
    assert.equal(json.status, 413);
  });

  test("a model call of several megabytes passes nginx to the gateway, whose own limit answers in the API's format", async () => {
    const long = 'A long conversation with an agent, turn after turn. '.repeat(60_000); // about 3 MB
    openai.state.defaults = { chunks: ['ok'] };
    const res = await fetch(`${nginx.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: long }] }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(((await res.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content, 'ok');
    assert.ok(openai.requests.some((r) => JSON.stringify(r.body).length > long.length), 'the whole body reached the upstream');
  });
});
