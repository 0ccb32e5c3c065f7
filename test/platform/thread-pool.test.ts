import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { createThreadPool, ThreadTimeout } from '../../src/platform/thread-pool.ts';

const WORKER = new URL('./thread-pool-worker.ts', import.meta.url);
type Task = { spin?: true; fail?: string; word?: string };

test('a task past its time is stopped (ThreadTimeout, its thread replaced); the clock starts when a thread takes a task, so one queued behind two that time out still runs', async () => {
  const pool = createThreadPool<Task, string>({ worker: WORKER, threads: 1, timeoutMs: 300 });
  try {
    const results = await Promise.allSettled([pool.run({ spin: true }), pool.run({ spin: true }), pool.run({ word: 'otter' }), pool.run({ fail: 'no such page' })]);
    assert.ok(results[0].status === 'rejected' && results[0].reason instanceof ThreadTimeout);
    assert.ok(results[1].status === 'rejected' && results[1].reason instanceof ThreadTimeout);
    assert.deepEqual(results[2], { status: 'fulfilled', value: 'otter' });
    assert.ok(results[3].status === 'rejected' && /no such page/.test(results[3].reason.message), 'what the task throws');
  } finally {
    await pool.close();
  }
  await assert.rejects(pool.run({ word: 'late' }), /closed/);
});

test("a signal stops its task, waiting or running (its thread ended), with the signal's reason; the others go on", async () => {
  const pool = createThreadPool<Task, string>({ worker: WORKER, threads: 1, timeoutMs: 600_000 });
  try {
    const running = new AbortController();
    const waiting = new AbortController();
    const first = pool.run({ spin: true }, running.signal);
    const second = pool.run({ word: 'never' }, waiting.signal);
    const third = pool.run({ word: 'otter' });
    waiting.abort(new Error('gave up waiting'));
    await assert.rejects(second, /gave up waiting/);
    running.abort(new Error('gave up running'));
    await assert.rejects(first, /gave up running/);
    assert.equal(await third, 'otter');
    await assert.rejects(pool.run({ word: 'x' }, AbortSignal.abort(new Error('already gone'))), /already gone/);
  } finally {
    await pool.close();
  }
});

test('a thread file that cannot load fails the tasks waiting for it, rather than leaving them waiting; the next task tries again', async () => {
  const pool = createThreadPool<Task, string>({ worker: new URL('./no-such-worker.ts', import.meta.url), threads: 2, timeoutMs: 600_000 });
  try {
    const results = await Promise.allSettled([pool.run({ word: 'a' }), pool.run({ word: 'b' }), pool.run({ word: 'c' })]);
    for (const result of results) assert.ok(result.status === 'rejected' && result.reason.code === 'ERR_MODULE_NOT_FOUND', String(result.status));
    await assert.rejects(pool.run({ word: 'd' }), { code: 'ERR_MODULE_NOT_FOUND' });
  } finally {
    await pool.close();
  }
});

test('threads do not keep the process alive once their tasks are done, even left open: neither a task stopped running nor one that gave up waiting', async () => {
  // The guard only ends a process that never exits (the failure); it is not a measure of time.
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { createThreadPool } from ${JSON.stringify(new URL('../../src/platform/thread-pool.ts', import.meta.url).href)};
       const pool = createThreadPool({ worker: new URL(${JSON.stringify(WORKER.href)}), threads: 1, timeoutMs: 300 });
       const waiting = new AbortController();
       const stopped = pool.run({ spin: true }).catch((err) => err.name);
       const gone = pool.run({ word: 'never' }, waiting.signal).catch((err) => err.message);
       waiting.abort(new Error('gave up'));
       console.log(await stopped, await gone, await pool.run({ word: 'done' }));`,
    ],
    { timeout: 120_000 },
  );
  assert.equal(stdout.trim(), 'ThreadTimeout gave up done');
});
