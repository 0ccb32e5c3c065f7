import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { freshPostgresDatabase } from '../support/app.ts';
import { eventually } from '../support/eventually.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';
import { uniqueEmail } from '../support/factories.ts';
import { call, clusterEnv, runCli, startServer, type ServerProcess } from '../support/process.ts';

const skip = !process.env.DATABASE_URL || !process.env.REDIS_URL ? 'needs PostgreSQL and Redis (DATABASE_URL and REDIS_URL)' : false;

/** A WebSocket client on one instance, authenticated by subprotocol, that keeps every event frame. */
async function socket(url: string, token: string) {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/ws`, ['parley.v1', `parley.auth.${token}`]);
  const frames: any[] = [];
  ws.on('message', (raw) => frames.push(JSON.parse(String(raw))));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  await eventually(() => assert.ok(frames.some((f) => f.type === 'ready'), 'authenticated'));
  return {
    frames,
    async subscribe(topic: string) {
      ws.send(JSON.stringify({ type: 'subscribe', topic }));
      await eventually(() => assert.ok(frames.some((f) => f.type === 'subscribed' && f.topic === topic), `subscribed to ${topic}`));
    },
    events: (topic: string) => frames.filter((f) => f.type === 'event' && f.topic === topic).map((f) => f.event),
    close: () => ws.close(),
  };
}

/**
 * The processes of a real deployment on the machine's PostgreSQL and Redis:
 * two `parley serve` (HTTP and WebSocket only) and `parley worker`s (queues and
 * schedules), as child processes that share nothing but the database and Redis.
 */
describe('API instances and workers as separate processes', { skip, timeout: 300_000 }, () => {
  let openai: FakeOpenAI;
  let db: Awaited<ReturnType<typeof freshPostgresDatabase>>;
  let env: Record<string, string>;
  let a: ServerProcess;
  let b: ServerProcess;
  const workers: ServerProcess[] = [];
  let token: string;
  let adminToken: string;

  before(async () => {
    openai = await startFakeOpenAI();
    db = await freshPostgresDatabase();
    env = clusterEnv(db.url, {
      // A worker that dies holding a job loses it to another this soon.
      JOB_LOCK_MS: '1500',
      // A task that fires every second, to see it fire once per second however many workers run.
      SCHEDULES: 'usage.rollup=* * * * * *',
      // The checks poll one user's conversation every 20 ms until a worker's job shows: request limits (120 a
      // minute, then a ban after 20 refusals) would answer 403 banned whenever a job took a few seconds longer.
      RATE_LIMIT_ENABLED: 'false',
      ...openai.env,
    });
    [a, b] = await Promise.all([startServer(env, 'serve'), startServer(env, 'serve')]);
    workers.push(await startServer(env, 'worker'));
    const reg = await call(a.url, 'POST', '/v1/auth/register', { body: { email: uniqueEmail('workers'), password: 'correct horse battery staple' } });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    token = reg.body.accessToken;
    const adminEmail = uniqueEmail('admin');
    const created = await runCli(['admin', 'create-user', '--email', adminEmail, '--password', 'admin password 1234', '--admin'], env);
    assert.equal(created.code, 0, created.stderr);
    adminToken = (await call(b.url, 'POST', '/v1/auth/login', { body: { email: adminEmail, password: 'admin password 1234' } })).body.accessToken;
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop(), ...workers.map((w) => w.stop())]);
    await openai?.close();
    await db?.drop();
  });

  const conversation = async () => {
    const res = await call(a.url, 'POST', '/v1/conversations', { token, body: {} });
    assert.equal(res.status, 201);
    return res.body.id as string;
  };
  const titleOf = async (id: string) => (await call(b.url, 'GET', `/v1/conversations/${id}`, { token })).body.title;

  test('a socket on B sees the answer to a message posted on A; its title is made on the worker', async () => {
    const id = await conversation();
    const ws = await socket(b.url, token);
    try {
      await ws.subscribe(`conversation:${id}`);
      openai.script({ reply: 'Porto, then Lisbon.' }, { reply: 'Portugal trip' });
      const posted = await call(a.url, 'POST', `/v1/conversations/${id}/messages`, { token, body: { content: 'Where in Portugal?' } });
      assert.equal(posted.status, 201, JSON.stringify(posted.body));
      await eventually(() => assert.equal(ws.events(`conversation:${id}`).length, 3), 10_000);
      const events = ws.events(`conversation:${id}`);
      assert.deepEqual(events.map((e: any) => e.type), ['message.created', 'message.stream.started', 'message.stream.finished']);
      assert.equal(events[2].payload.messageId, posted.body.id);
      assert.equal(events[2].payload.status, 'complete');
      // Neither API instance runs jobs: the title can only come from the worker.
      await eventually(async () => assert.equal(await titleOf(id), 'Portugal trip'), 15_000);
    } finally {
      ws.close();
    }
  });

  test('a worker killed in the middle of a job: another worker runs it again', async () => {
    const id = await conversation();
    openai.script({ reply: 'An answer.' }, { hang: true });
    const posted = await call(a.url, 'POST', `/v1/conversations/${id}/messages`, { token, body: { content: 'Name this' } });
    assert.equal(posted.status, 201);
    // The title request reached the upstream and hangs there: the worker is in the middle of the job.
    await eventually(() => assert.equal(openai.requests.filter((r) => JSON.stringify(r.body).includes('Name this')).length, 2), 10_000);
    workers[0]!.child.kill('SIGKILL');
    await workers[0]!.exited;
    assert.equal(await titleOf(id), null);
    workers.push(await startServer(env, 'worker'));
    await eventually(async () => assert.equal(await titleOf(id), 'Hello from fake-openai'), 30_000);
    assert.equal(openai.requests.filter((r) => JSON.stringify(r.body).includes('Name this')).length, 3, 'the title was asked for again');
  });

  test('a scheduled task fires once per firing with two workers running', async () => {
    workers.push(await startServer(env, 'worker'));
    const from = Date.now();
    await new Promise((r) => setTimeout(r, 5_000));
    const to = Date.now();
    const res = await call(a.url, 'GET', '/v1/admin/jobs?queue=usage.rollup&limit=100', { token: adminToken });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    // A job scheduler's job id ends with the firing it was made for ("repeat:<key>:<ms>").
    const firings = res.body.data.map((j: any) => Number(/:(\d+)$/.exec(j.id)?.[1]));
    assert.ok(firings.every((ms: number) => Number.isFinite(ms) && ms % 1000 === 0), JSON.stringify(res.body.data.map((j: any) => j.id)));
    const inWindow = firings.filter((ms: number) => ms >= from && ms <= to);
    assert.ok(inWindow.length >= 2, `it fired (${inWindow.length})`);
    assert.equal(new Set(firings).size, firings.length, `one job per firing: ${JSON.stringify(res.body.data.map((j: any) => j.id))}`);
    assert.ok(inWindow.length <= Math.ceil((to - from) / 1000) + 1, `no more jobs than firings: ${inWindow.length} in ${to - from} ms`);
    const schedules = await call(b.url, 'GET', '/v1/admin/schedules', { token: adminToken });
    const rollup = schedules.body.data.find((s: any) => s.name === 'usage.rollup');
    assert.equal(rollup.cron, '* * * * * *');
    assert.ok(Date.parse(rollup.lastRunAt) >= from, 'the last firing is recorded');
  });
});
