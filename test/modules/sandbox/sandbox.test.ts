import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { eq } from 'drizzle-orm';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { usageEvents } from '../../../src/modules/usage/schema.ts';

interface Run {
  status: 'ok' | 'error';
  result: unknown;
  output: Array<{ level: string; message: string }>;
  truncated: boolean;
  error?: { code: string; message: string };
  cpuMs: number;
  wallMs: number;
}

const runner = (t: () => TestApp, user: () => TestUser) => async (code: string, extra: Record<string, unknown> = {}, token = user().accessToken): Promise<Run> => {
  const res = await t().api('POST', '/v1/sandbox/runs', { token, body: { code, ...extra } });
  assert.equal(res.status, 200, res.text);
  return res.body as Run;
};

for (const backend of backends()) {
  describe(`sandbox route [${backend}]`, () => {
    let t: TestApp;
    let u: TestUser;
    const run = runner(() => t, () => u);

    before(async () => {
      t = await startApp({ backend, worker: false });
      u = await createUser(t);
    });
    after(() => t.close());

    test('a script gives the value of its last expression, with its console output', async () => {
      const r = await run('console.log("hello", { a: 1 }, [2]); console.warn("careful"); console.error(new TypeError("bad")); const x = 20; x + 22');
      assert.equal(r.status, 'ok');
      assert.equal(r.result, 42);
      assert.equal(r.truncated, false);
      assert.deepEqual(r.output.slice(0, 2), [
        { level: 'log', message: 'hello {"a":1} [2]' },
        { level: 'warn', message: 'careful' },
      ]);
      assert.equal(r.output[2]!.level, 'error');
      assert.match(r.output[2]!.message, /^TypeError: bad/);
      assert.ok(r.cpuMs >= 0 && r.wallMs >= r.cpuMs, JSON.stringify(r));
    });

    test('input goes in as JSON and comes back through a top-level return (async function body)', async () => {
      const input = { name: 'Ada', tags: ['x', 'y'], nested: { n: 1.5, ok: true, none: null } };
      const r = await run('const copy = { ...input }; await null; return { echoed: copy, count: input.tags.length };', { input });
      assert.equal(r.status, 'ok', JSON.stringify(r));
      assert.deepEqual(r.result, { echoed: input, count: 2 });
      assert.equal((await run('input')).result, null, 'no input is null');
      assert.equal((await run('let y = 1')).result, null, 'no value is null');
    });

    test('errors of the script are a result: thrown, syntax, not JSON, over the result size', async () => {
      const thrown = await run('function f() { throw new RangeError("out of range") } f()');
      assert.equal(thrown.status, 'error');
      assert.deepEqual(thrown.error, { code: 'script_error', message: 'RangeError: out of range' });
      assert.equal(thrown.result, null);
      assert.equal((await run('this is not javascript(')).error?.code, 'syntax_error');
      assert.equal((await run('(() => 1)')).error?.code, 'result_not_json');
      assert.equal((await run('const o = {}; o.o = o; o')).error?.code, 'result_not_json');
      assert.equal((await run('10n')).error?.code, 'result_not_json');
      const big = await run('"x".repeat(2 * 1024 * 1024)', { memoryMb: 64 });
      assert.equal(big.error?.code, 'result_too_large');
      // A script that replaces the Promise the harness hands its result back through: not JSON, not a 500.
      for (const code of ['globalThis.Promise = { resolve: () => ({ then: () => "not json{" }) }; 1', 'Promise.prototype.then = function () { return \'{"a":\' }; 1']) {
        const forged = await run(code);
        assert.equal(forged.status, 'error', code);
        assert.equal(forged.error?.code, 'result_not_json', code);
        assert.equal(forged.result, null);
      }
      // An error message of any length is cut, as output is.
      const long = await run('throw new Error("x".repeat(5_000_000))', { memoryMb: 128 });
      assert.equal(long.error?.code, 'script_error');
      assert.equal(long.error!.message.length, 10_000);
    });

    test('a result nested deeper than 128 levels is refused as too large, not a 500', async () => {
      // 8,000 levels the isolate serializes and the server could not; the forged text any depth at all.
      for (const code of ['let a = []; for (let i = 0; i < 8000; i++) a = [a]; a', `Promise.prototype.then = function () { return '['.repeat(100000) + ']'.repeat(100000) }; 1`]) {
        const deep = await run(code);
        assert.equal(deep.status, 'error', code);
        assert.deepEqual(deep.error, { code: 'result_too_large', message: 'The result is nested more than 128 levels deep' });
        assert.equal(deep.result, null);
      }
      // 128 levels, with brackets inside strings that do not count.
      const ok = await run('let a = ["[[[{{{"]; for (let i = 1; i < 128; i++) a = [a]; a');
      assert.equal(ok.status, 'ok', JSON.stringify(ok.error));
      assert.equal(JSON.stringify(ok.result).length, 128 * 2 + 8);
    });

    test('a run is metered: usage source sandbox, its CPU milliseconds as the latency, no cost', async () => {
      const owner = await createUser(t);
      const r = await run('let s = 0; for (let i = 0; i < 1e5; i++) s += i; s', {}, owner.accessToken);
      assert.equal(r.result, 4999950000);
      await t.services.usage.recorder.flush();
      const rows = await t.deps.db.select().from(usageEvents).where(eq(usageEvents.userId, owner.id));
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.source, 'sandbox');
      assert.equal(rows[0]!.provider, 'sandbox');
      assert.equal(rows[0]!.model, 'javascript');
      assert.equal(rows[0]!.latencyMs, r.cpuMs);
      assert.equal(rows[0]!.costMicros, 0);
      assert.equal(rows[0]!.status, 'ok');
    });

    test('runs are held to budgets: a used-up budget of the key refuses them with 402', async () => {
      const owner = await createUser(t);
      const created = await t.api('POST', '/v1/api-keys', { token: owner.accessToken, body: { name: 'spent', scopes: ['sandbox'] } });
      assert.equal(created.status, 201, created.text);
      // The key already spent 10 tokens elsewhere; its budget allows 5.
      t.services.usage.recorder.record({ userId: owner.id, apiKeyId: created.body.id, source: 'chat', provider: 'openai', model: 'gpt', inputTokens: 10, latencyMs: 1, status: 'ok', costMicros: 0 });
      await t.services.usage.recorder.flush();
      const budget = await t.api('PUT', '/v1/budgets', { token: owner.accessToken, body: { scope: 'api_key', subjectId: created.body.id, period: 'total', limitTokens: 5 } });
      assert.ok(budget.status < 300, budget.text);
      const refused = await t.api('POST', '/v1/sandbox/runs', { token: created.body.key, body: { code: '1' } });
      assert.equal(refused.status, 402, refused.text);
      assert.equal(refused.body.code, 'budget_exceeded');
      assert.equal((await run('1', {}, owner.accessToken)).result, 1, 'the session, outside that budget, still runs');
    });

    test('API keys need the sandbox scope; anonymous callers are refused', async () => {
      const key = async (scopes: string[]) => (await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'k', scopes } })).body.key as string;
      const body = { code: '1 + 1' };
      const without = await t.api('POST', '/v1/sandbox/runs', { token: await key(['chat']), body });
      assert.equal(without.status, 403);
      assert.equal(without.body.code, 'insufficient_scope');
      const withScope = await t.api('POST', '/v1/sandbox/runs', { token: await key(['sandbox']), body });
      assert.equal(withScope.status, 200, withScope.text);
      assert.equal(withScope.body.result, 2);
      assert.equal((await t.api('POST', '/v1/sandbox/runs', { body })).status, 401);
    });

    test('bad input: a 10 MB script, one over the script cap, limits over the caps, no code', async () => {
      const huge = await t.api('POST', '/v1/sandbox/runs', { token: u.accessToken, body: { code: `/*${'x'.repeat(10 * 1024 * 1024)}*/ 1` } });
      assert.equal(huge.status, 413);
      assert.match(huge.headers.get('content-type') ?? '', /application\/problem\+json/);
      const overCap = await t.api('POST', '/v1/sandbox/runs', { token: u.accessToken, body: { code: `/*${'x'.repeat(70_000)}*/ 1` } });
      assert.equal(overCap.status, 413);
      assert.equal(overCap.body.code, 'script_too_large');
      const cpu = await t.api('POST', '/v1/sandbox/runs', { token: u.accessToken, body: { code: '1', timeoutMs: 60_000 } });
      assert.equal(cpu.status, 400);
      assert.equal(cpu.body.code, 'sandbox_limit_exceeded');
      const memory = await t.api('POST', '/v1/sandbox/runs', { token: u.accessToken, body: { code: '1', memoryMb: 100_000 } });
      assert.equal(memory.status, 400);
      assert.equal(memory.body.code, 'sandbox_limit_exceeded');
      assert.equal((await t.api('POST', '/v1/sandbox/runs', { token: u.accessToken, body: { input: 1 } })).status, 400);
      assert.equal((await t.api('POST', '/v1/sandbox/runs', { token: u.accessToken, body: { code: '1', timeoutMs: 'soon' } })).status, 400);
    });
  });
}

describe('sandbox isolation and supervision [embedded]', () => {
  let t: TestApp;
  let u: TestUser;
  const run = runner(() => t, () => u);
  const SECRET = 'sandbox-test-secret-do-not-leak';

  before(async () => {
    // Secrets in this process's own environment, where an inheriting child would find them.
    process.env.PARLEY_MASTER_KEY = SECRET;
    process.env.OPENAI_API_KEY = SECRET;
    t = await startApp({ worker: false, env: { SANDBOX_HEARTBEAT_MS: '200', SANDBOX_WORKERS: '2', SANDBOX_MAX_RUNS_PER_USER: '50' } });
    u = await createUser(t);
  });
  after(async () => {
    delete process.env.PARLEY_MASTER_KEY;
    delete process.env.OPENAI_API_KEY;
    await t.close();
  });

  /** The pid of the worker running a script, once one is. */
  const busyWorker = () =>
    eventually(() => {
      const busy = t.services.sandbox.workers().processes.find((p) => p.busy);
      assert.ok(busy, 'no worker is running a script yet');
      return busy.pid;
    });

  test('no host object is reachable: process, require, timers, and the constructor tricks', async () => {
    const kinds = await run('[typeof process, typeof require, typeof setTimeout, typeof setInterval, typeof fetch, typeof module, typeof Buffer, typeof globalThis.process, typeof WebAssembly]');
    assert.deepEqual(kinds.result, Array(9).fill('undefined'), 'WebAssembly too: its memories are outside the heap limit');
    const ctor = await run('constructor.constructor("return process")()');
    assert.equal(ctor.status, 'error');
    assert.match(ctor.error!.message, /process is not defined/);
    const viaThis = await run('this.constructor.constructor("return typeof process + typeof require")()');
    assert.equal(viaThis.result, 'undefinedundefined');
    const viaFunction = await run('(function () { return this })().constructor.constructor("try { return process.env } catch (e) { return String(e) }")()');
    assert.match(String(viaFunction.result), /ReferenceError: process is not defined/);
    const viaConsole = await run('console.log.constructor("return typeof process")()');
    assert.equal(viaConsole.result, 'undefined');
    const viaError = await run('try { null.x } catch (e) { e.constructor.constructor("return typeof process")() }');
    assert.equal(viaError.result, 'undefined');
    // Each run has a fresh isolate: nothing one leaves behind is seen by the next.
    await run('globalThis.leftover = 42; Object.prototype.polluted = true; 1');
    assert.deepEqual((await run('[typeof leftover, ({}).polluted]')).result, ['undefined', null]);
  });

  test("the worker processes' environment holds no server secret", async () => {
    await run('1');
    const { processes } = t.services.sandbox.workers();
    assert.ok(processes.length >= 1);
    for (const { pid } of processes) {
      const environ = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0').filter(Boolean);
      const names = environ.map((entry) => entry.slice(0, entry.indexOf('=')));
      // NODE_CHANNEL_* are set by fork itself for the IPC channel.
      assert.deepEqual(names.filter((n) => !n.startsWith('NODE_CHANNEL_')).sort(), ['NODE_ENV']);
      assert.ok(!environ.some((entry) => entry.includes(SECRET)), 'a secret reached the worker');
    }
  });

  test('an infinite loop ends with a timeout error at its CPU limit', async () => {
    const r = await run('let i = 0; for (;;) i++', { timeoutMs: 300 });
    assert.equal(r.status, 'error');
    assert.equal(r.error?.code, 'timeout');
    assert.match(r.error!.message, /more than 300 ms of CPU/, 'ended by the CPU limit, not the wall clock');
    assert.ok(r.wallMs < 300 + 1_000, `ended after ${r.wallMs} ms`);
    const idle = await run('await new Promise(() => {})', { timeoutMs: 100 });
    assert.equal(idle.error?.code, 'timeout', 'a promise that never settles is ended by the wall-clock limit');
    assert.match(idle.error!.message, /did not finish within 1100 ms/);
    assert.equal((await run('"still fine"')).result, 'still fine');
  });

  test('a memory bomb ends with a memory error, and the pool goes on', async () => {
    const r = await run('const a = []; for (;;) a.push(new Array(1000).fill(Math.random()))', { timeoutMs: 5_000 });
    assert.equal(r.status, 'error');
    assert.equal(r.error?.code, 'memory_limit', JSON.stringify(r));
    assert.equal((await run('2 + 2')).result, 4);
  });

  test('a huge ArrayBuffer fails cleanly, and the pool goes on', async () => {
    const one = await run('new ArrayBuffer(2 ** 31).byteLength');
    assert.equal(one.status, 'error');
    assert.equal(one.error?.code, 'memory_limit', JSON.stringify(one));
    const many = await run('const keep = []; for (let i = 0; i < 64; i++) keep.push(new Uint8Array(2 ** 26).fill(1)); keep.length');
    assert.equal(many.status, 'error');
    assert.ok(['memory_limit', 'sandbox_crashed'].includes(many.error!.code), JSON.stringify(many));
    assert.equal((await run('[1, 2, 3].length')).result, 3);
  });

  test('100 MB of console output is cut at the output cap and marked truncated', async () => {
    const r = await run('const line = "y".repeat(1024); for (let i = 0; i < 100 * 1024; i++) console.log(line); "done"', { timeoutMs: 5_000 });
    assert.equal(r.status, 'ok', JSON.stringify(r.error));
    assert.equal(r.result, 'done');
    assert.equal(r.truncated, true);
    const bytes = r.output.reduce((n, line) => n + Buffer.byteLength(line.message), 0);
    assert.equal(bytes, 65_536);
    assert.equal(r.output[0]!.message, 'y'.repeat(1024));
    // Multi-byte characters are cut at a character boundary, never into a broken one.
    const wide = await run('for (let i = 0; i < 1000; i++) console.log("€".repeat(100))', { timeoutMs: 5_000 });
    assert.equal(wide.status, 'ok', JSON.stringify(wide.error));
    assert.equal(wide.truncated, true);
    assert.equal(wide.output.at(-1)!.message, '€'.repeat(45), 'the 136 bytes left hold 45 whole characters');
    assert.ok(!wide.output.some((line) => line.message.includes('\uFFFD')));
  });

  test('a worker killed mid-run fails that run as sandbox_crashed, and the next run succeeds', async () => {
    const pending = run('for (;;) {}', { timeoutMs: 5_000 });
    process.kill(await busyWorker(), 'SIGKILL');
    const r = await pending;
    assert.equal(r.status, 'error');
    assert.equal(r.error?.code, 'sandbox_crashed');
    assert.equal((await run('"after"')).result, 'after');
  });

  test('a worker that stops answering pings is replaced; its run fails cleanly', async () => {
    const pending = run('for (;;) {}', { timeoutMs: 5_000 });
    const pid = await busyWorker();
    process.kill(pid, 'SIGSTOP');
    const r = await pending;
    assert.equal(r.error?.code, 'sandbox_crashed');
    assert.match(r.error!.message, /stopped answering/);
    assert.ok(!t.services.sandbox.workers().processes.some((p) => p.pid === pid));
    assert.equal((await run('"replaced"')).result, 'replaced');
  });

  test('50 concurrent runs all complete while the server keeps answering', async () => {
    let settled = 0;
    const runs = Array.from({ length: 50 }, (_, i) =>
      run('const end = Date.now() + 50; while (Date.now() < end) {} input * 2', { input: i }).then((r) => {
        settled++;
        return r;
      }),
    );
    // Health checks answered while the runs are still queued: the sandbox never holds up the server.
    const during: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await t.api('GET', '/health');
      assert.equal(res.status, 200);
      during.push(settled);
    }
    assert.ok(during.at(-1)! < 50, `health answered only after the runs: ${during}`);
    const results = await Promise.all(runs);
    assert.deepEqual(
      results.map((r) => r.result),
      results.map((_, i) => i * 2),
    );
    assert.ok(results.every((r) => r.status === 'ok'));
  });
});

describe('sandbox queue [embedded]', () => {
  let t: TestApp;
  let u: TestUser;

  before(async () => {
    t = await startApp({ worker: false, env: { SANDBOX_WORKERS: '1', SANDBOX_QUEUE_SIZE: '1' } });
    u = await createUser(t);
  });
  after(() => t.close());

  test('runs beyond the pool and its queue are refused with 503 sandbox_busy', async () => {
    const post = () => t.api('POST', '/v1/sandbox/runs', { token: u.accessToken, body: { code: 'const end = Date.now() + 1500; while (Date.now() < end) {} 1', timeoutMs: 3_000 } });
    const first = post();
    await eventually(() => assert.equal(t.services.sandbox.workers().running + t.services.sandbox.workers().queued, 1));
    const second = post();
    await eventually(() => assert.equal(t.services.sandbox.workers().running + t.services.sandbox.workers().queued, 2));
    const third = await post();
    assert.equal(third.status, 503);
    assert.equal(third.body.code, 'sandbox_busy');
    assert.equal(third.headers.get('retry-after'), '1');
    assert.equal((await first).status, 200);
    assert.equal((await second).status, 200);
    assert.equal((await post()).status, 200);
  });
});

describe('sandbox runs per user [embedded]', () => {
  let t: TestApp;
  let u: TestUser;
  let v: TestUser;

  before(async () => {
    t = await startApp({ worker: false, env: { SANDBOX_WORKERS: '1', SANDBOX_MAX_RUNS_PER_USER: '2' } });
    u = await createUser(t);
    v = await createUser(t);
  });
  after(() => t.close());

  // Without it one user's burst of long runs fills the whole queue, and every other user waits minutes or gets 503s.
  test("one user's runs beyond SANDBOX_MAX_RUNS_PER_USER are refused with 429; another user's still queue", async () => {
    const post = (who: TestUser, code = 'await new Promise(() => {})') => t.api('POST', '/v1/sandbox/runs', { token: who.accessToken, body: { code } });
    const held = [post(u), post(u)];
    await eventually(() => assert.equal(t.services.sandbox.workers().running + t.services.sandbox.workers().queued, 2));
    const third = await post(u);
    assert.equal(third.status, 429, third.text);
    assert.equal(third.body.code, 'too_many_runs');
    assert.equal(third.headers.get('retry-after'), '1');
    const other = post(v, '1');
    for (const res of await Promise.all(held)) assert.equal(res.body.error?.code, 'timeout');
    assert.equal((await other).body.result, 1);
    assert.equal((await post(u, '2')).body.result, 2, 'ended runs no longer count');
  });
});
