import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { freshPostgresDatabase } from './support/app.ts';
import { uniqueEmail } from './support/factories.ts';
import { bundle, stampFile } from '../src/cli/bundle.ts';
import { countPromptTokens } from '../src/modules/ai/tokens.ts';
import { startFakeOpenAI } from './support/fake-openai.ts';
import { call, freePort, startServer, tempDataDir } from './support/process.ts';

// Parley started as a user starts it: `parley start` (bin/parley.js), a data dir and a port, nothing else.

const password = 'correct horse battery staple';

/**
 * start → register → log in → /users/me → SIGTERM → start again → the old token
 * and the password still work. Same port both times: PUBLIC_URL, the token
 * issuer, defaults to http://localhost:$PORT.
 */
async function survivesRestart(dataEnv: Record<string, string>) {
  const env = { ...dataEnv, PORT: String(await freePort()) };
  const email = uniqueEmail('startup');
  const first = await startServer(env);
  let accessToken: string;
  try {
    const reg = await call(first.url, 'POST', '/v1/auth/register', { body: { email, password } });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    const login = await call(first.url, 'POST', '/v1/auth/login', { body: { email, password } });
    assert.equal(login.status, 200);
    accessToken = login.body.accessToken;
    const me = await call(first.url, 'GET', '/v1/users/me', { token: accessToken });
    assert.equal(me.status, 200);
    assert.equal(me.body.email, email);
  } finally {
    const exit = await first.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, 'SIGTERM is a clean exit');
  }

  const second = await startServer(env);
  try {
    const me = await call(second.url, 'GET', '/v1/users/me', { token: accessToken });
    assert.equal(me.status, 200, 'a token signed before the restart still verifies');
    assert.equal(me.body.email, email);
    const login = await call(second.url, 'POST', '/v1/auth/login', { body: { email, password } });
    assert.equal(login.status, 200, 'the account was persisted');
  } finally {
    assert.deepEqual(await second.stop(), { code: 0, signal: null });
  }
}

describe('npm start on PGlite', { timeout: 300_000 }, () => {
  const data = tempDataDir();
  after(() => data.remove());

  test('register, restart, the user and their token survive', async () => {
    await survivesRestart({ PARLEY_DATA_DIR: data.dir });
  });

  test('SIGTERM lets in-flight requests finish before exiting', async () => {
    const server = await startServer({ PARLEY_DATA_DIR: data.dir });
    const email = uniqueEmail('drain');
    assert.equal((await call(server.url, 'POST', '/v1/auth/register', { body: { email, password } })).status, 201);
    const logins = () => server.output().split('\n').filter((l) => l.includes('"url":"/v1/auth/login"')).length;

    // One login whose body is still uploading when the signal arrives: in flight by construction.
    const slow = slowPost(server.url, '/v1/auth/login', JSON.stringify({ email, password }));
    await until(() => logins() === 1);
    // And a burst of ordinary logins, all received, argon2 busy.
    const n = 12; // under the default per-IP login limit of 30
    const burst = Array.from({ length: n }, () =>
      call(server.url, 'POST', '/v1/auth/login', { body: { email, password } }).then(
        (r) => r.status,
        (err: Error) => `${err.message}: ${(err.cause as Error | undefined)?.message}`,
      ),
    );
    await until(() => logins() === n + 1);
    server.child.kill('SIGTERM');
    await until(() => server.output().includes('"msg":"shutting down"'));
    slow.finish();

    const statuses = [await slow.status, ...(await Promise.all(burst))];
    assert.deepEqual(statuses, Array(n + 1).fill(200), 'no request was cut off');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
  });
});

/** The system's Node, where it is older than 24: bin/parley.js then runs the server under the pinned Node, as a child. */
const olderNode = (() => {
  try {
    return Number(execFileSync('/usr/bin/node', ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' })) < 24 ? '/usr/bin/node' : undefined;
  } catch {
    return undefined;
  }
})();

describe('bin/parley.js under an older Node', { timeout: 300_000, skip: !olderNode && 'no Node older than 24 at /usr/bin/node' }, () => {
  const data = tempDataDir();
  after(() => data.remove());

  test("a terminal's Ctrl-C (SIGINT to the whole process group) drains once: the request in flight finishes, exit 0", async () => {
    const server = await startServer({ PARLEY_DATA_DIR: data.dir }, 'start', [], { node: olderNode, group: true });
    const email = uniqueEmail('ctrl-c');
    assert.equal((await call(server.url, 'POST', '/v1/auth/register', { body: { email, password } })).status, 201);
    const slow = slowPost(server.url, '/v1/auth/login', JSON.stringify({ email, password }));
    await until(() => server.output().includes('"url":"/v1/auth/login"'));
    // The launcher forwarded its SIGINT to the server, which the terminal had signalled too: two signals, and the
    // second one ended the drain at once (the login cut off, exit 1).
    process.kill(-server.child.pid!, 'SIGINT');
    await until(() => server.output().includes('"msg":"shutting down"'));
    slow.finish();
    assert.equal(await slow.status, 200);
    assert.deepEqual(await server.exited, { code: 0, signal: null });
    assert.equal(server.output().split('\n').filter((l) => l.includes('"msg":"shutting down"')).length, 1);
  });

  test('the launcher killed outright (kill -9): the server drains and stops rather than hold the port and data for ever', async () => {
    const server = await startServer({ PARLEY_DATA_DIR: data.dir }, 'start', [], { node: olderNode, group: true });
    assert.equal((await call(server.url, 'GET', '/health')).status, 200);
    process.kill(server.child.pid!, 'SIGKILL');
    await until(() => server.output().includes('"msg":"shutting down"'));
    // Its data directory is free again: the next start gets it.
    const next = await startServer({ PARLEY_DATA_DIR: data.dir }, 'start', [], { node: olderNode, group: true });
    assert.equal((await call(next.url, 'GET', '/health')).status, 200);
    process.kill(-next.child.pid!, 'SIGINT');
    assert.deepEqual(await next.exited, { code: 0, signal: null });
  });
});

/** A POST whose body is sent in two halves; finish() sends the second. */
function slowPost(base: string, pathname: string, body: string) {
  const cut = Math.floor(body.length / 2);
  const req = request(base + pathname, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } });
  const status = new Promise<number>((resolve, reject) => {
    req.once('response', (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode!));
    });
    req.once('error', reject);
  });
  req.write(body.slice(0, cut));
  return { status, finish: () => req.end(body.slice(cut)) };
}

async function until(condition: () => boolean) {
  while (!condition()) await new Promise((r) => setTimeout(r, 5));
}

describe('parley start on PostgreSQL + Redis', { timeout: 300_000, skip: !process.env.DATABASE_URL && 'DATABASE_URL not set' }, () => {
  test('register, restart, the user and their token survive', async () => {
    const pg = await freshPostgresDatabase();
    const data = tempDataDir(); // holds only the generated master key
    try {
      const env: Record<string, string> = { PARLEY_DATA_DIR: data.dir, DATABASE_URL: pg.url };
      if (process.env.REDIS_URL) {
        env.REDIS_URL = process.env.REDIS_URL;
        env.REDIS_PREFIX = `parley:test:${randomBytes(6).toString('hex')}:`;
      }
      await survivesRestart(env);
    } finally {
      data.remove();
      await pg.drop();
    }
  });
});

/**
 * The server bundle npm install makes (src/cli/bundle.ts), as bin/parley.js runs it: built here, so the test
 * holds in a checkout whose sources changed since the install.
 */
describe('the server bundle', { timeout: 300_000 }, () => {
  test('bin/parley.js runs the current bundle: it serves sign-in, the gateway, the API reference and metrics; PARLEY_BUNDLE=off runs the sources', async () => {
    const dir = await bundle();
    // ASCII only: V8 keeps a module's source for as long as the process runs, and one character past Latin-1
    // (a comment's dash, a regular expression's quote) makes it hold the whole file at two bytes a character.
    for (const file of readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js'))) {
      const nonAscii = readFileSync(path.join(dir, file), 'latin1').match(/[^\x00-\x7f].{0,40}/);
      assert.equal(nonAscii, null, `${file} holds a character outside ASCII: ${nonAscii?.[0]}`);
    }
    const openai = await startFakeOpenAI();
    const data = tempDataDir();
    try {
      const rules = { blockedTerms: [], patterns: ['order-\\d{6}'], maxInputChars: null, moderationCategories: [] };
      const server = await startServer({ PARLEY_DATA_DIR: data.dir, LOG_LEVEL: 'info', ...openai.env, SAFETY_RULES: JSON.stringify(rules) });
      try {
        assert.match(server.output(), /"from":"bundle"[^\n]*"msg":"parley started"/);
        const reg = await call(server.url, 'POST', '/v1/auth/register', { body: { email: uniqueEmail('bundle'), password } });
        assert.equal(reg.status, 201, JSON.stringify(reg.body));
        openai.state.defaults = { chunks: ['Hello', ' from', ' the bundle'] };
        const completion = await call(server.url, 'POST', '/v1/chat/completions', { token: reg.body.accessToken, body: { model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] } });
        assert.equal(completion.status, 200, JSON.stringify(completion.body));
        assert.equal(completion.body.choices[0].message.content, 'Hello from the bundle');
        // Safety patterns are searched on a thread (piscina, whose thread entry is a file of its own: not bundled).
        const flagged = await call(server.url, 'POST', '/v1/chat/completions', { token: reg.body.accessToken, body: { model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Where is order-123456?' }] } });
        assert.equal(flagged.status, 422, JSON.stringify(flagged.body));
        assert.match(flagged.body.error.message, /blocked_pattern/);
        // So are long texts' tokens counted (token-count-worker.ts): its count is the one the sources make.
        const long = [{ role: 'user' as const, content: 'All work and no play. '.repeat(1_000) }];
        const counted = await call(server.url, 'POST', '/v1/messages/count_tokens', { token: reg.body.accessToken, body: { model: 'openai:gpt-4o-mini', messages: long } });
        assert.equal(counted.status, 200, JSON.stringify(counted.body));
        assert.equal(counted.body.input_tokens, countPromptTokens('gpt-4o-mini', long));
        const docs = await fetch(`${server.url}/docs/`);
        assert.equal(docs.status, 200);
        assert.match(await docs.text(), /<script/);
        assert.match(await (await fetch(`${server.url}/metrics`)).text(), /parley_http_request_duration_seconds_count\{method="POST",route="\/v1\/chat\/completions",status="200"\} 1/);
      } finally {
        assert.deepEqual(await server.stop(), { code: 0, signal: null });
      }
      const sources = await startServer({ PARLEY_DATA_DIR: data.dir, LOG_LEVEL: 'info', PARLEY_BUNDLE: 'off' });
      try {
        assert.match(sources.output(), /"from":"sources"[^\n]*"msg":"parley started"/);
      } finally {
        assert.deepEqual(await sources.stop(), { code: 0, signal: null });
      }
      // A bundle made in another directory (the checkout moved since) points at sources that are not these: not run.
      const stamp = readFileSync(stampFile, 'utf8');
      writeFileSync(stampFile, JSON.stringify({ ...JSON.parse(stamp), root: '/somewhere/else' }));
      try {
        const moved = await startServer({ PARLEY_DATA_DIR: data.dir, LOG_LEVEL: 'info' });
        assert.match(moved.output(), /"from":"sources"[^\n]*"msg":"parley started"/);
        assert.deepEqual(await moved.stop(), { code: 0, signal: null });
      } finally {
        writeFileSync(stampFile, stamp);
      }
    } finally {
      data.remove();
      await openai.close();
    }
  });
});
