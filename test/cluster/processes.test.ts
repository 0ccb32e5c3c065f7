import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { get } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { freshPostgresDatabase } from '../support/app.ts';
import { eventually } from '../support/eventually.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';
import { uniqueEmail } from '../support/factories.ts';
import { call, clusterEnv, runCli, startServer, tempDataDir, type ServerProcess } from '../support/process.ts';

const skip = !process.env.DATABASE_URL || !process.env.REDIS_URL ? 'needs PostgreSQL and Redis (DATABASE_URL and REDIS_URL)' : false;

/** The pid of the process that answered GET /metrics?process=self on a new connection (the cluster hands out connections, not requests). */
function answeringPid(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(`${url}/metrics?process=self`, { agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        const pid = /^parley_process_info\{pid="(\d+)"\} 1$/m.exec(text)?.[1];
        if (res.statusCode === 200 && pid) resolve(Number(pid));
        else reject(new Error(`GET /metrics answered ${res.statusCode} without parley_process_info`));
      });
    }).on('error', reject);
  });
}

async function pidsAnswering(url: string, requests = 12): Promise<Set<number>> {
  const pids = new Set<number>();
  for (let i = 0; i < requests; i++) pids.add(await answeringPid(url));
  return pids;
}

const parentOf = (pid: number) => Number(execFileSync('ps', ['-o', 'ppid=', '-p', String(pid)], { encoding: 'utf8' }).trim());

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('--processes on the command line', () => {
  test('a bad count is a usage error (64) that says what is wrong', async () => {
    const data = tempDataDir();
    try {
      for (const args of [['--processes', '0'], ['--processes', 'abc'], ['--processes'], ['--processes=-2'], ['--proceses', '2']]) {
        const r = await runCli(['serve', ...args], { PARLEY_DATA_DIR: data.dir });
        assert.equal(r.code, 64, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, args[0] === '--proceses' ? /Unknown option "--proceses"/ : /--processes needs a whole number from 1/);
        assert.match(r.stderr, /Usage: parley/);
      }
    } finally {
      data.remove();
    }
  });

  test('on the embedded database, more than one process is refused before anything starts', async () => {
    const data = tempDataDir();
    try {
      const flag = await runCli(['start', '--processes', '2'], { PARLEY_DATA_DIR: data.dir });
      assert.equal(flag.code, 64, flag.stderr);
      assert.match(flag.stderr, /--processes 2 needs DATABASE_URL and REDIS_URL: the embedded database \(PGlite\) lives in one process/);
      const env = await runCli(['start'], { PARLEY_DATA_DIR: data.dir, PROCESSES: '3' });
      assert.equal(env.code, 78, env.stderr);
      assert.match(env.stderr, /PROCESSES=3 needs DATABASE_URL and REDIS_URL/);
      const bad = await runCli(['start'], { PARLEY_DATA_DIR: data.dir, PROCESSES: 'abc' });
      assert.equal(bad.code, 78, bad.stderr);
      assert.match(bad.stderr, /PROCESSES/);
    } finally {
      data.remove();
    }
  });

  test('embedded, the default is one process, which says so', async () => {
    const data = tempDataDir();
    const server = await startServer({ PARLEY_DATA_DIR: data.dir, LOG_LEVEL: 'info', PROCESSES: '' }, 'serve');
    try {
      assert.equal(await answeringPid(server.url), server.child.pid);
      assert.match(server.output(), /"processes":1,"msg":"one process: the embedded database \(PGlite\) lives in one process/);
    } finally {
      assert.equal((await server.stop()).code, 0);
      data.remove();
    }
  });
});

/**
 * `parley serve --processes 2` as a real process on PostgreSQL and Redis: a
 * primary and two workers behind one port.
 */
describe('serve --processes 2', { skip, timeout: 300_000 }, () => {
  let openai: FakeOpenAI;
  let db: Awaited<ReturnType<typeof freshPostgresDatabase>>;
  let env: Record<string, string>;
  let server: ServerProcess;
  let token: string;
  let workers: Set<number>;

  before(async () => {
    openai = await startFakeOpenAI();
    db = await freshPostgresDatabase();
    env = clusterEnv(db.url, { ...openai.env, LOG_LEVEL: 'info' });
    server = await startServer(env, 'serve', ['--processes', '2']);
    const reg = await call(server.url, 'POST', '/v1/auth/register', { body: { email: uniqueEmail('processes'), password: 'correct horse battery staple' } });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    token = reg.body.accessToken;
  });
  after(async () => {
    await server?.stop();
    await openai?.close();
    await db?.drop();
  });

  test('two worker processes, children of the one started, answer on its port', async () => {
    // The first worker answers /ready before the second has started.
    workers = await eventually(async () => {
      const pids = await pidsAnswering(server.url);
      assert.equal(pids.size, 2, `answered by ${[...pids]}`);
      return pids;
    }, 60_000);
    assert.ok(!workers.has(server.child.pid!), 'the primary serves nothing itself');
    for (const pid of workers) assert.equal(parentOf(pid), server.child.pid);
  });

  test("a scrape of /metrics, whichever worker takes it, has every worker's metrics, counted together", async () => {
    const scrape = async () => {
      const res = await fetch(`${server.url}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /^text\/plain/);
      return res.text();
    };
    const pidsIn = (text: string) => new Set([...text.matchAll(/^parley_process_info\{pid="(\d+)"\} 1$/gm)].map((m) => Number(m[1])));
    const meCount = (text: string) =>
      [...text.matchAll(/^parley_http_request_duration_seconds_count\{method="GET",route="\/v1\/users\/me",status="200"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    assert.deepEqual(pidsIn(await scrape()), workers);
    const before = meCount(await scrape());
    // A new connection each: the cluster hands them to both workers in turn.
    const me = () =>
      new Promise<number>((resolve, reject) => {
        get(`${server.url}/v1/users/me`, { agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        }).on('error', reject);
      });
    for (let i = 0; i < 10; i++) assert.equal(await me(), 200);
    // Counted once each response has gone out: soon after, not always before the client has read it.
    await eventually(async () => assert.equal(meCount(await scrape()) - before, 10, 'the requests of both workers'));
    const own = await (await fetch(`${server.url}/metrics?process=self`)).text();
    assert.equal(pidsIn(own).size, 1, 'process=self: the answering worker alone');
  });

  test('a worker killed with SIGKILL is replaced, and the port keeps answering', async () => {
    const [victim, survivor] = [...workers] as [number, number];
    process.kill(victim, 'SIGKILL');
    await eventually(() => assert.match(server.output(), new RegExp(`"worker":${victim},"code":null,"signal":"SIGKILL","restartInMs":\\d+,"msg":"worker exited unexpectedly; starting another"`)), 10_000);
    // Meanwhile every new connection goes to the survivor.
    for (let i = 0; i < 5; i++) assert.equal((await call(server.url, 'GET', '/v1/users/me', { token })).status, 200);
    workers = await eventually(async () => {
      const pids = await pidsAnswering(server.url);
      assert.equal(pids.size, 2, `answered by ${[...pids]}`);
      return pids;
    }, 60_000);
    assert.ok(workers.has(survivor) && !workers.has(victim));
    const replacement = [...workers].find((pid) => pid !== survivor)!;
    assert.equal(parentOf(replacement), server.child.pid);
  });

  test('SIGTERM to the primary lets a streaming completion finish, then every process exits with 0', async () => {
    // The OpenAI-compatible gateway: its stream is a plain in-flight request, which a draining worker lets end.
    // (A conversation's answer is stopped at shutdown instead, marked server_shutdown.)
    const key = await call(server.url, 'POST', '/v1/api-keys', { token, body: { name: 'drain', scopes: ['chat'] } });
    assert.equal(key.status, 201, JSON.stringify(key.body));
    openai.state.defaults = { chunks: ['one ', 'two ', 'three ', 'four ', 'five ', 'six'], delayMs: 300 };
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.body.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'openai:gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'Count slowly' }] }),
    });
    assert.equal(res.status, 200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let body = '';
    while (!body.includes('"one "')) body += (await reader.read()).value ?? '';

    server.child.kill('SIGTERM');
    for (let r = await reader.read(); !r.done; r = await reader.read()) body += r.value;
    const text = [...body.matchAll(/^data: (\{.*\})$/gm)].map((m) => JSON.parse(m[1]!).choices[0]?.delta?.content ?? '').join('');
    assert.equal(text, 'one two three four five six');
    assert.match(body, /data: \[DONE\]\n\n$/);

    assert.deepEqual(await server.exited, { code: 0, signal: null });
    assert.match(server.output(), /"msg":"all workers exited"/);
    for (const pid of workers) assert.ok(!alive(pid), `worker ${pid} has exited`);
  });
});

describe('serve --processes 1', { skip, timeout: 120_000 }, () => {
  test('runs the role in the one process started: no primary, no fork', async () => {
    const db = await freshPostgresDatabase();
    // PROCESSES unset (empty): the flag alone decides.
    const server = await startServer(clusterEnv(db.url, { LOG_LEVEL: 'info', PROCESSES: '' }), 'serve', ['--processes', '1']);
    try {
      for (let i = 0; i < 4; i++) assert.equal(await answeringPid(server.url), server.child.pid);
      assert.doesNotMatch(server.output(), /primary/);
    } finally {
      assert.equal((await server.stop()).code, 0);
      await db.drop();
    }
  });
});
