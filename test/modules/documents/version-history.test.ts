import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

const KEEP = 3;

for (const backend of backends()) {
  describe(`version history [${backend}]`, () => {
    let t: TestApp;
    let u: TestUser;
    before(async () => {
      t = await startApp({ backend, env: { DOCUMENTS_MAX_VERSIONS: String(KEEP) } });
      u = await createUser(t);
    });
    after(() => t.close());

    const create = async () => {
      const res = await t.api('POST', '/v1/documents', { token: u.accessToken, body: { title: 'Plan', body: 'v1\n' } });
      assert.equal(res.status, 201, res.text);
      return res.body.id as string;
    };
    const save = async (id: string, baseVersion: number, body: string) => {
      const res = await t.api('PUT', `/v1/documents/${id}`, { token: u.accessToken, body: { body, baseVersion } });
      assert.equal(res.status, 200, res.text);
      return res.body as { version: number };
    };
    const listed = async (id: string) => {
      const res = await t.api('GET', `/v1/documents/${id}/versions`, { token: u.accessToken });
      assert.equal(res.status, 200, res.text);
      return res.body.data as Array<{ number: number; restoredFrom: number | null }>;
    };
    /** What the table holds, whatever the routes show. */
    const stored = async (id: string) => {
      const { rows } = (await t.deps.db.execute(sql`select number from document_versions where document_id = ${id} order by number`)) as unknown as { rows: Array<{ number: number }> };
      return rows.map((r) => Number(r.number));
    };

    test('DOCUMENTS_MAX_VERSIONS (3 here): each save past it deletes the oldest, so the newest 3 stay, the current one among them', async () => {
      const id = await create();
      for (let n = 1; n < 8; n++) {
        assert.equal((await save(id, n, `v${n + 1}\n`)).version, n + 1);
        const newest = Array.from({ length: Math.min(n + 1, KEEP) }, (_, i) => n + 1 - i);
        assert.deepEqual(await stored(id), [...newest].reverse(), `after version ${n + 1}`);
      }
      assert.deepEqual((await listed(id)).map((v) => v.number), [8, 7, 6]);
      // A save that changes nothing makes no version and deletes none.
      assert.equal((await save(id, 8, 'v8\n')).version, 8);
      assert.deepEqual(await stored(id), [6, 7, 8]);
      assert.equal((await t.api('GET', `/v1/documents/${id}/versions/6`, { token: u.accessToken })).body.body, 'v6\n');

      const usage = await t.api('GET', '/v1/usage/storage', { token: u.accessToken });
      assert.equal(usage.status, 200, usage.text);
      assert.match(JSON.stringify(usage.body), /document_versions/, 'the footprint report still has the source');
    });

    test('a version no longer kept is a clear 404 to read, diff or restore, and restoring it changes nothing; one kept restores', async () => {
      const id = await create();
      for (let n = 1; n < 5; n++) await save(id, n, `v${n + 1}\n`);
      assert.deepEqual(await stored(id), [3, 4, 5]);

      for (const [method, path] of [
        ['GET', `/v1/documents/${id}/versions/2`],
        ['GET', `/v1/documents/${id}/diff?from=2&to=5`],
        ['POST', `/v1/documents/${id}/versions/2/restore`],
      ] as const) {
        const res = await t.api(method, path, { token: u.accessToken });
        assert.equal(res.status, 404, `${method} ${path}: ${res.text}`);
        assert.equal(res.body.code, 'version_not_found');
        assert.match(res.body.detail, /Version 2 is no longer kept: a document keeps its newest 3 versions/);
        assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
      }
      const never = await t.api('GET', `/v1/documents/${id}/versions/9`, { token: u.accessToken });
      assert.equal(never.status, 404);
      assert.equal(never.body.code, 'version_not_found');
      assert.equal(never.body.detail, 'Version not found', 'a version not made yet is not called pruned');
      assert.equal((await t.api('GET', `/v1/documents/${id}`, { token: u.accessToken })).body.version, 5, 'the refused restore wrote nothing');

      const restored = await t.api('POST', `/v1/documents/${id}/versions/3/restore`, { token: u.accessToken });
      assert.equal(restored.status, 200, restored.text);
      assert.equal(restored.body.version, 6);
      assert.equal(restored.body.body, 'v3\n');
      assert.deepEqual(await stored(id), [4, 5, 6], 'the restore is a save: it deleted version 3, which it restored');
      assert.equal((await listed(id))[0]!.restoredFrom, 3, 'restoredFrom still names the version, kept or not');
    });

    test('a document holding more versions than the setting (it was lowered) is trimmed to the newest by its next save', async () => {
      const id = await create();
      await t.deps.db.execute(sql`insert into document_versions (document_id, number, title, body) select ${id}, n, 'Plan', 'old' from generate_series(2, 40) n`);
      await t.deps.db.execute(sql`update documents set version = 40 where id = ${id}`);
      assert.equal((await stored(id)).length, 40);
      await save(id, 40, 'v41\n');
      assert.deepEqual(await stored(id), [39, 40, 41]);
    });

    test('saves side by side from one base: one wins, and the history stays the newest 3', async () => {
      const id = await create();
      for (let n = 1; n < 4; n++) await save(id, n, `v${n + 1}\n`);
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => t.api('PUT', `/v1/documents/${id}`, { token: u.accessToken, body: { body: `race ${i}\n`, baseVersion: 4 } })));
      assert.deepEqual(results.map((r) => r.status).sort(), [200, 409, 409, 409, 409, 409]);
      assert.deepEqual(await stored(id), [3, 4, 5]);
    });
  });
}
