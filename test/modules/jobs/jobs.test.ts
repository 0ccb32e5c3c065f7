import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { UpstreamFailed, ValidationError } from '../../../src/errors.ts';
import type { AnyBusEvent } from '../../../src/platform/bus/events.ts';
import { FinalJobError } from '../../../src/platform/queue/queue.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { observeEvents } from '../../support/bus.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

for (const backend of backends()) {
  describe(`jobs [${backend}]`, () => {
    let t: TestApp;
    let u: TestUser;
    let admin: TestUser;
    let progress: Array<AnyBusEvent<'job.progress'>>;
    let failures: Array<AnyBusEvent<'job.failed'>>;
    let failUntil = 0;
    let gate: { open: boolean; held: Promise<void> } = { open: false, held: Promise.resolve() };
    let closeObserver: () => Promise<void>;

    before(async () => {
      t = await startApp({ backend });
      u = await createUser(t);
      admin = await createUser(t, { admin: true });
      // Real handlers on queues of the test's own, run by the app's worker like any module's.
      t.services.jobs.define<{ steps: number }>('test.report', async ({ steps }, ctx) => {
        for (let i = 1; i <= steps; i++) await ctx.progress(Math.round((i / steps) * 100));
        return { pages: steps };
      });
      t.services.jobs.define('test.gated', async () => {
        if (!gate.open) throw new Error('the gate is shut');
        await gate.held;
        return { ok: true };
      }, { concurrency: 10 });
      t.services.jobs.define('test.flaky', async (_data, ctx) => {
        if (ctx.attempt <= failUntil) throw new Error(`flaky failure on attempt ${ctx.attempt}`);
        return { ok: true, attempt: ctx.attempt };
      });
      // Each attempt throws the error its job's data names: a driver's words, or Parley's own errors.
      const errors: Record<string, (attempt: number) => unknown> = {
        driver: () => new Error('connect ECONNREFUSED 10.0.3.7:5432'),
        upstream: () => UpstreamFailed('The export service refused the file', 'export_refused'),
        validation: () => ValidationError('The export names no collection'),
        'final-upstream': () => new FinalJobError('The export service refused the file', { cause: UpstreamFailed('The export service refused the file', 'export_refused') }),
        'final-driver': () => new FinalJobError('relation "exports" does not exist at character 15'),
        'upstream-then-driver': (attempt) => (attempt === 1 ? UpstreamFailed('The export service refused the file', 'export_refused') : new Error('connect ECONNREFUSED 10.0.3.7:5432')),
      };
      t.services.jobs.define<{ error: string }>('test.failing', async ({ error }, ctx) => {
        throw errors[error]!(ctx.attempt);
      });
      // Stuck: only its timeout ends it.
      t.services.jobs.define('test.slow', () => new Promise(() => {}), { timeoutMs: 100 });
      const observer = await observeEvents(t.deps.bus, ['job.progress']);
      const failed = await observeEvents(t.deps.bus, ['job.failed']);
      progress = observer.events;
      failures = failed.events;
      closeObserver = async () => {
        await observer.close();
        await failed.close();
      };
    });
    after(async () => {
      await closeObserver();
      await t.close();
    });

    const jobAs = (token: string, id: string) => t.api('GET', `/v1/jobs/${id}`, { token });

    const INTERNAL = 'The job failed because of an internal error. Quote the job id when reporting it.';
    const RAW = 'connect ECONNREFUSED 10.0.3.7:5432';

    /** A job of `queue` run to its death, as its owner (the API, the job.failed event, the notification) and an admin see it. */
    async function died(queue: string, data: unknown, attempts = 1) {
      const job = await t.services.jobs.enqueue(queue, data, { userId: u.id, attempts, backoffMs: 10 });
      const owner = await eventually(async () => {
        const res = await jobAs(u.accessToken, job.id);
        assert.equal(res.status, 200, res.text);
        assert.equal(res.body.state, 'dead');
        return res.body;
      }, 15_000);
      const event = await eventually(() => {
        const found = failures.find((e) => e.payload.jobId === job.id);
        assert.ok(found, 'job.failed announced');
        return found.payload;
      });
      const note = await eventually(async () => {
        const notes = (await t.api('GET', '/v1/notifications?limit=100', { token: u.accessToken })).body.data;
        const found = notes.find((n: any) => n.category === 'job.failed' && n.data.jobId === job.id);
        assert.ok(found, 'job.failed notification');
        return found;
      });
      const one = await t.api('GET', `/v1/admin/jobs/${job.id}`, { token: admin.accessToken });
      assert.equal(one.status, 200, one.text);
      const listed = (await t.api('GET', `/v1/admin/jobs?state=dead&queue=${queue}&limit=100`, { token: admin.accessToken })).body.data.find((j: { id: string }) => j.id === job.id);
      return { owner, event, note, admin: one.body, listed };
    }

    test("a job failed by an internal error tells its owner only that it failed; admins see the error's own words", async () => {
      const { owner, event, note, admin: seen, listed } = await died('test.failing', { error: 'driver' });
      assert.equal(owner.error, INTERNAL);
      assert.equal(owner.errorCode, 'internal_error');
      assert.equal(event.error, INTERNAL);
      assert.equal(event.errorCode, 'internal_error');
      assert.equal(note.data.error, INTERNAL);
      assert.equal(note.data.errorCode, 'internal_error');
      for (const told of [owner, event, note]) assert.doesNotMatch(JSON.stringify(told), /10\.0\.3\.7|ECONNREFUSED/);
      assert.equal(seen.error, RAW);
      assert.equal(listed.error, RAW);
    });

    test("a job failed by Parley's own error tells its owner that error, with its code, as a final one does", async () => {
      const upstream = await died('test.failing', { error: 'upstream' }, 2);
      for (const told of [upstream.owner, upstream.event, upstream.note.data]) {
        assert.equal(told.error, 'The export service refused the file');
        assert.equal(told.errorCode, 'export_refused');
      }
      assert.match(upstream.note.body, /The export service refused the file/);
      assert.equal(upstream.admin.error, 'The export service refused the file');
      const validation = await died('test.failing', { error: 'validation' });
      assert.equal(validation.owner.error, 'The export names no collection');
      assert.equal(validation.owner.errorCode, 'validation_failed');
      assert.equal(validation.event.error, 'The export names no collection');
      // A final error is what it wraps: Parley's own error is told, anything else is not.
      const final = await died('test.failing', { error: 'final-upstream' }, 3);
      assert.equal(final.owner.attempts, 1);
      assert.equal(final.owner.error, 'The export service refused the file');
      assert.equal(final.event.errorCode, 'export_refused');
      const finalDriver = await died('test.failing', { error: 'final-driver' }, 3);
      assert.equal(finalDriver.owner.error, INTERNAL);
      assert.equal(finalDriver.event.error, INTERNAL);
      assert.match(finalDriver.admin.error, /relation "exports" does not exist/);
    });

    test("the owner is told the last attempt's error: Parley's own words before it, an internal error's none", async () => {
      const { owner, event, admin: seen } = await died('test.failing', { error: 'upstream-then-driver' }, 2);
      assert.equal(owner.error, INTERNAL);
      assert.equal(owner.errorCode, 'internal_error');
      assert.equal(event.error, INTERNAL);
      assert.equal(seen.error, RAW);
    });

    test('a job that outlives its timeout tells its owner so', async () => {
      const { owner, event, admin: seen } = await died('test.slow', {});
      assert.match(owner.error, /^Job timed out after 100 ms$/);
      assert.equal(owner.errorCode, 'job_timed_out');
      assert.equal(event.error, owner.error);
      assert.match(seen.error, /timed out after 100 ms/);
    });

    test('a job that failed before public errors were kept tells its owner only that it failed', async (c) => {
      // BullMQ's jobs are kept a day at most once done, in Redis: none failed before this release is read back.
      if (t.deps.queue.kind !== 'database') return c.skip('the database queue keeps old rows');
      const { owner } = await died('test.failing', { error: 'upstream' });
      assert.equal(owner.errorCode, 'export_refused');
      // As a row failed by an older release reads: its error, and nothing saying it was meant for users.
      await t.deps.db.execute(sql`update jobs set public_error = null, error_code = null where id = ${owner.id}`);
      const old = await jobAs(u.accessToken, owner.id);
      assert.equal(old.body.error, INTERNAL);
      assert.equal(old.body.errorCode, 'internal_error');
      assert.equal((await t.api('GET', `/v1/admin/jobs/${owner.id}`, { token: admin.accessToken })).body.error, 'The export service refused the file');
    });

    test("the owner follows a job's progress to its result, over the API and as events", async () => {
      const job = await t.services.jobs.enqueue('test.report', { steps: 2 }, { userId: u.id });
      const done = await eventually(async () => {
        const res = await jobAs(u.accessToken, job.id);
        assert.equal(res.status, 200, res.text);
        assert.equal(res.body.state, 'completed');
        return res.body;
      }, 15_000);
      assert.deepEqual(done.result, { pages: 2 });
      assert.equal(done.progress, 100);
      assert.equal(done.error, null);
      assert.equal(done.attempts, 1);
      assert.ok(done.startedAt && done.finishedAt);
      assert.equal('data' in done, false, 'the payload is not shown to users');
      const seen = await eventually(() => {
        const mine = progress.filter((e) => e.payload.jobId === job.id);
        assert.equal(mine.at(-1)?.payload.state, 'completed');
        return mine;
      });
      assert.deepEqual(
        seen.map((e) => [e.payload.state, e.payload.progress]),
        [
          ['active', null],
          ['active', 50],
          ['active', 100],
          ['completed', 100],
        ],
      );
      assert.ok(seen.every((e) => e.payload.userId === u.id && e.payload.queue === 'test.report'));
    });

    test('a job that keeps failing ends dead with its error; an admin retries it, then discards it', async () => {
      failUntil = 2;
      const job = await t.services.jobs.enqueue('test.flaky', {}, { userId: u.id, attempts: 2, backoffMs: 10 });
      const dead = await eventually(async () => {
        const res = await jobAs(u.accessToken, job.id);
        assert.equal(res.body.state, 'dead');
        return res.body;
      }, 15_000);
      // A plain Error's words are the admin's: its owner is told it failed.
      assert.equal(dead.error, INTERNAL);
      assert.equal(dead.errorCode, 'internal_error');
      assert.match((await t.api('GET', `/v1/admin/jobs/${job.id}`, { token: admin.accessToken })).body.error, /flaky failure on attempt 2/);
      assert.equal(dead.attempts, 2);
      await eventually(() => assert.equal(progress.filter((e) => e.payload.jobId === job.id).at(-1)?.payload.state, 'dead'));

      const list = await t.api('GET', '/v1/admin/jobs?state=dead&queue=test.flaky', { token: admin.accessToken });
      assert.equal(list.status, 200, list.text);
      assert.deepEqual(list.body.data.map((j: { id: string }) => j.id), [job.id]);
      assert.equal(list.body.data[0].userId, u.id);

      failUntil = 0;
      assert.equal((await t.api('POST', `/v1/admin/jobs/${job.id}/retry`, { token: admin.accessToken })).status, 200);
      const done = await eventually(async () => {
        const res = await jobAs(u.accessToken, job.id);
        assert.equal(res.body.state, 'completed');
        return res.body;
      }, 15_000);
      assert.deepEqual(done.result, { ok: true, attempt: 1 }, 'attempts start again from one');

      const again = await t.api('POST', `/v1/admin/jobs/${job.id}/retry`, { token: admin.accessToken });
      assert.equal(again.status, 409);
      assert.equal(again.body.code, 'job_not_dead');
      assert.equal((await t.api('DELETE', `/v1/admin/jobs/${job.id}`, { token: admin.accessToken })).status, 204);
      assert.equal((await jobAs(u.accessToken, job.id)).status, 404);
      assert.equal((await t.api('DELETE', `/v1/admin/jobs/${job.id}`, { token: admin.accessToken })).body.code, 'job_not_found');
    });

    test('admins retrying one dead job at once: one 200, the others 409; a retry racing its discard: 200, 404 or 409, never a 500', async () => {
      // Retried jobs wait on the gate, so one retried is not dead again by the next retry.
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      gate = { open: false, held };
      const deadJob = async () => {
        gate.open = false;
        const job = await t.services.jobs.enqueue('test.gated', {}, { userId: u.id, attempts: 1 });
        await eventually(async () => assert.equal((await jobAs(u.accessToken, job.id)).body.state, 'dead'), 15_000);
        gate.open = true;
        return job.id;
      };
      const retry = (id: string) => t.api('POST', `/v1/admin/jobs/${id}/retry`, { token: admin.accessToken });
      try {
        for (let round = 0; round < 3; round++) {
          const id = await deadJob();
          const all = await Promise.all(Array.from({ length: 6 }, () => retry(id)));
          assert.deepEqual(all.map((r) => `${r.status} ${r.body.code ?? ''}`.trim()).sort(), ['200', ...Array(5).fill('409 job_not_dead')], `round ${round}`);
          const other = await deadJob();
          const [retried, discarded] = await Promise.all([retry(other), t.api('DELETE', `/v1/admin/jobs/${other}`, { token: admin.accessToken })]);
          assert.ok([200, 404, 409].includes(retried.status), `round ${round}: retry ${retried.status} ${retried.text}`);
          assert.ok([204, 409].includes(discarded.status), `round ${round}: discard ${discarded.status} ${discarded.text}`);
        }
      } finally {
        release();
      }
    });

    test('an API key needs the jobs:read scope; bad ids and filters are 400s', async () => {
      const job = await t.services.jobs.enqueue('test.report', { steps: 1 }, { userId: u.id });
      const scoped = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'jobs', scopes: ['jobs:read'] } });
      const other = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'chat only', scopes: ['chat'] } });
      assert.equal((await jobAs(scoped.body.key, job.id)).status, 200);
      const refused = await jobAs(other.body.key, job.id);
      assert.equal(refused.status, 403);
      assert.equal(refused.body.code, 'insufficient_scope');
      for (const path of ['/v1/jobs/has%20space', `/v1/jobs/${'x'.repeat(300)}`]) {
        const res = await t.api('GET', path, { token: u.accessToken });
        assert.ok(res.status === 400 || res.status === 414, `${path}: ${res.status}`);
        assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      }
      assert.equal((await t.api('GET', '/v1/admin/jobs?state=exploded', { token: admin.accessToken })).status, 400);
      assert.equal((await t.api('GET', '/v1/admin/jobs?limit=0', { token: admin.accessToken })).status, 400);
    });

    test('an id that is no job, whatever its shape, is a 404 problem on every job route', async () => {
      // Raw requests: fetch would resolve `..` in the path before sending it.
      const raw = (method: string, path: string, token: string) =>
        new Promise<{ status: number; type: string; body: any }>((resolve, reject) => {
          const req = request(`${t.url}${path}`, { method, headers: { authorization: `Bearer ${token}` } }, (res) => {
            let text = '';
            res.setEncoding('utf8').on('data', (c) => (text += c));
            res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'] ?? '', body: JSON.parse(text) }));
          });
          req.on('error', reject).end();
        });
      for (const id of ['not-a-uuid', '..', '__proto__', 'constructor', '99999999999999999999', '0', 'repeat:x:1']) {
        for (const [method, path, token] of [
          ['GET', `/v1/jobs/${id}`, u.accessToken],
          ['GET', `/v1/admin/jobs/${id}`, admin.accessToken],
          ['DELETE', `/v1/admin/jobs/${id}`, admin.accessToken],
          ['POST', `/v1/admin/jobs/${id}/retry`, admin.accessToken],
        ] as const) {
          const res = await raw(method, path, token);
          assert.equal(res.status, 404, `${method} ${path}: ${JSON.stringify(res.body)}`);
          assert.equal(res.type, 'application/problem+json; charset=utf-8');
          // The router itself may refuse a `..` segment: a 404 all the same.
          assert.equal(res.body.code, id === '..' && res.body.code === 'route_not_found' ? 'route_not_found' : 'job_not_found', `${method} ${path}`);
        }
      }
    });

    test('a list cursor the list never made is a 400, never a 500 or the first page again', async () => {
      const cursor = (p: unknown) => Buffer.from(JSON.stringify(p)).toString('base64url');
      // Made as a list's are (a position and the list's filters, none here), with positions no list gives.
      const at = (p: unknown) => cursor({ at: p, f: [null, null] });
      for (const c of ['zzz', at({ s: 0, o: 1e300 }), at({ s: 1e300, o: 0 }), at({ s: 0, o: 2 ** 53 }), at('not a position'), at({ s: -1, o: 0 }), at(null), cursor({ s: 0, o: 1 })]) {
        const res = await t.api('GET', `/v1/admin/jobs?cursor=${c}`, { token: admin.accessToken });
        assert.equal(res.status, 400, `${c}: ${res.text}`);
        assert.equal(res.body.code, 'validation_failed');
        assert.equal(res.body.errors[0].path, 'cursor');
      }
    });

    test("a list's cursor used with other filters than its list's is a 400, not a page of another list", async () => {
      const tag = randomBytes(3).toString('hex');
      const [a, b] = [`test.cursor-a-${tag}`, `test.cursor-b-${tag}`];
      for (let i = 0; i < 3; i++) {
        await t.services.jobs.enqueue(a, { i }, { delayMs: 3_600_000 });
        await t.services.jobs.enqueue(b, { i }, { delayMs: 3_600_000 });
      }
      const list = (query: string) => t.api('GET', `/v1/admin/jobs?${query}`, { token: admin.accessToken });
      const first = await list(`queue=${a}&state=delayed&limit=1`);
      assert.equal(first.status, 200, first.text);
      const cursor = first.body.nextCursor;
      assert.ok(cursor);
      const same = await list(`queue=${a}&state=delayed&limit=1&cursor=${cursor}`);
      assert.equal(same.status, 200, same.text);
      assert.equal(same.body.data.length, 1);
      assert.notEqual(same.body.data[0].id, first.body.data[0].id);
      for (const other of [`queue=${b}&state=delayed`, `queue=${a}`, `state=delayed`, `queue=${a}&state=waiting`, '']) {
        const res = await list(`${other}&limit=1&cursor=${cursor}`);
        assert.equal(res.status, 400, `${other}: ${res.text}`);
        assert.equal(res.body.code, 'validation_failed');
        assert.equal(res.body.errors[0].path, 'cursor');
      }
    });

    test('admins page through jobs newest first', async () => {
      const queue = `test.page-${randomBytes(3).toString('hex')}`;
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await t.services.jobs.enqueue(queue, { i }, { userId: u.id })).id);
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res = await t.api('GET', `/v1/admin/jobs?queue=${queue}&limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token: admin.accessToken });
        assert.equal(res.status, 200, res.text);
        assert.ok(res.body.data.length <= 2);
        seen.push(...res.body.data.map((j: { id: string }) => j.id));
        cursor = res.body.nextCursor;
      } while (cursor);
      assert.deepEqual(seen, [...ids].reverse());
    });

    if (backend === 'embedded') {
      test("the embedded database's upkeep runs as its schedule's job: a table that churned is vacuumed", async () => {
        await t.deps.db.execute(sql`create table churn (id int, note text)`);
        await t.deps.db.execute(sql`insert into churn select g, 'a' from generate_series(1, 5000) g`);
        await t.deps.db.execute(sql`update churn set note = 'b'`);
        // What the schedule enqueues when it fires, now.
        const job = await t.services.jobs.enqueue('database.tidy', {});
        let done: any;
        await eventually(async () => {
          done = await t.services.jobs.get(job.id);
          assert.equal(done?.state, 'completed', JSON.stringify(done));
        });
        assert.ok(done.result.vacuumed.includes('public.churn'), JSON.stringify(done.result));
        const dead = (await t.deps.db.execute(sql`select n_dead_tup::int as n from pg_stat_user_tables where relname = 'churn'`)) as unknown as { rows: Array<{ n: number }> };
        assert.equal(dead.rows[0]!.n, 0);
      });
    }

    test('admins see the schedules defined in code with their next firing', async () => {
      const res = await t.api('GET', '/v1/admin/schedules', { token: admin.accessToken });
      assert.equal(res.status, 200, res.text);
      const names = res.body.data.map((s: { name: string }) => s.name).sort();
      // The embedded database's upkeep: a PostgreSQL server runs its own autovacuum.
      const tidy = backend === 'embedded' ? ['database.tidy'] : [];
      assert.deepEqual(names, ['ai-jobs.purge-results', 'ai.purge-responses', 'auth.purge-expired', 'chat.fail-abandoned', 'chat.purge-shares', ...tidy, 'documents.purge-links', 'documents.purge-presence', 'files.expire-uploads', 'http.purge-idempotency-keys', 'jobs.purge-finished', 'limits.purge-bans', 'notifications.digest', 'usage.abuse-check', 'usage.purge-budget-alerts', 'usage.rollup', 'usage.storage']);
      for (const s of res.body.data) assert.ok(Date.parse(s.nextRunAt) > Date.now(), s.name);
      const dead = await t.api('GET', '/v1/admin/events/dead-letters', { token: admin.accessToken });
      assert.equal(dead.status, 200);
      assert.ok(Array.isArray(dead.body.data));
    });

    // Last: the schedule it defines would be listed by the test above.
    test("a schedule's run that has not started cannot be discarded: 409 job_scheduled, naming the setting that stops it", async () => {
      // No handler anywhere for its queue: its runs wait (BullMQ's next run, delayed; the database queue's firings, waiting).
      const name = `test.ticker-${randomBytes(3).toString('hex')}`;
      t.services.jobs.schedule({ name, cron: '* * * * * *', queue: name });
      const run = await eventually(async () => {
        const res = await t.api('GET', `/v1/admin/jobs?queue=${name}`, { token: admin.accessToken });
        assert.equal(res.status, 200, res.text);
        const found = res.body.data.find((j: { state: string }) => j.state === 'waiting' || j.state === 'delayed');
        assert.ok(found, JSON.stringify(res.body.data));
        return found;
      }, 15_000);
      const res = await t.api('DELETE', `/v1/admin/jobs/${encodeURIComponent(run.id)}`, { token: admin.accessToken });
      assert.equal(res.status, 409, res.text);
      assert.equal(res.body.code, 'job_scheduled');
      assert.match(res.body.detail, new RegExp(`SCHEDULES \\("${name.replace('.', '\\.')}=off"\\)`));
      assert.doesNotMatch(res.body.detail, /removeJob|running/);
      assert.equal((await t.api('GET', `/v1/admin/jobs/${encodeURIComponent(run.id)}`, { token: admin.accessToken })).status, 200, 'the run is still there');
    });
  });
}

for (const backend of backends()) {
  describe(`jobs that must run [${backend}]`, () => {
    let t: TestApp;
    // No worker: the erasure a deletion queues waits, as it does while the workers are busy or away.
    before(async () => (t = await startApp({ backend, worker: false })));
    after(() => t.close());

    test("a deleted account's erasure cannot be discarded before it ran: 409 job_must_run, and the job stays", async () => {
      const admin = await createUser(t, { admin: true });
      const leaving = await createUser(t);
      assert.equal((await t.api('DELETE', '/v1/users/me', { token: leaving.accessToken, body: { password: leaving.password } })).status, 204);
      // Queued in the deletion's transaction: with BullMQ it reaches the queue through the outbox, moments later.
      const erase = await eventually(async () => {
        const listed = await t.api('GET', '/v1/admin/jobs?queue=users.erase', { token: admin.accessToken });
        assert.equal(listed.status, 200, listed.text);
        const found = listed.body.data.find((j: { data: { userId: string } }) => j.data.userId === leaving.id);
        assert.ok(found, listed.text);
        return found;
      });
      assert.equal(erase.state, 'waiting');
      const res = await t.api('DELETE', `/v1/admin/jobs/${erase.id}`, { token: admin.accessToken });
      assert.equal(res.status, 409, res.text);
      assert.equal(res.body.code, 'job_must_run');
      const kept = await t.api('GET', `/v1/admin/jobs/${erase.id}`, { token: admin.accessToken });
      assert.equal(kept.status, 200, 'the erasure is still queued');
      assert.deepEqual(kept.body.data, { userId: leaving.id });
    });

    test('nor can the job that announces a committed change (an outbox event: document.unshared)', async () => {
      const admin = await createUser(t, { admin: true });
      const [owner, reader] = [await createUser(t), await createUser(t)];
      const doc = await t.api('POST', '/v1/documents', { token: owner.accessToken, body: { title: 'Shared' } });
      assert.equal(doc.status, 201, doc.text);
      assert.equal((await t.api('POST', `/v1/documents/${doc.body.id}/shares`, { token: owner.accessToken, body: { email: reader.email, role: 'viewer' } })).status, 201);
      assert.equal((await t.api('DELETE', `/v1/documents/${doc.body.id}/shares/${reader.id}`, { token: owner.accessToken })).status, 204);
      const job = await eventually(async () => {
        const listed = await t.api('GET', '/v1/admin/jobs?queue=documents.unshared', { token: admin.accessToken });
        const found = listed.body.data.find((j: { data: { documentId: string } }) => j.data.documentId === doc.body.id);
        assert.ok(found, listed.text);
        return found;
      });
      const res = await t.api('DELETE', `/v1/admin/jobs/${job.id}`, { token: admin.accessToken });
      assert.equal(res.status, 409, res.text);
      assert.equal(res.body.code, 'job_must_run');
    });
  });
}
