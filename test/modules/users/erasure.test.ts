import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';
import { PNG, uploadFile } from '../../support/files.ts';

/** The tables a user fills, and the column that names whose a row is. */
const OWNED = [
  ['messages', 'user_id'],
  ['conversations', 'user_id'],
  ['documents', 'owner_id'],
  ['notifications', 'user_id'],
  ['knowledge_chunks', 'user_id'],
  ['knowledge_items', 'user_id'],
  ['knowledge_collections', 'user_id'],
  ['files', 'user_id'],
  ['budgets', 'user_id'],
  ['projects', 'user_id'],
  ['sessions', 'user_id'],
  ['api_keys', 'user_id'],
] as const;

const GUIDE = ['# Owls', 'Owls hunt at night and fly without a sound.', '## Eyes', 'Their eyes face forward and cannot move in their sockets.', '## Diet', 'They eat mice, insects and fish.'].join('\n\n');

for (const backend of backends()) {
  describe(`users: a deleted account is erased a batch at a time [${backend}]`, () => {
    let t: TestApp;
    let openai: FakeOpenAI;
    let admin: TestUser;

    before(async () => {
      openai = await startFakeOpenAI();
      // Batches of 4: every table below holds more than that, so each takes several rounds.
      t = await startApp({ backend, env: { ...openai.env, DEFAULT_MODEL: 'openai:gpt-4o-mini', EMBEDDING_MODEL: 'openai:text-embedding-3-small', KNOWLEDGE_CHUNK_TOKENS: '50', KNOWLEDGE_CHUNK_OVERLAP: '0', USERS_ERASE_BATCH: '4' } });
      admin = await createUser(t, { admin: true });
    });
    after(async () => {
      await t?.close();
      await openai.close();
    });

    /** How many rows of each table are the user's. */
    async function held(userId: string): Promise<Record<string, number>> {
      const counts: Record<string, number> = {};
      for (const [table, column] of OWNED) {
        const res: any = await t.deps.db.execute(sql`select count(*)::int as n from ${sql.identifier(table)} where ${sql.identifier(column)} = ${userId}::uuid`);
        counts[table] = res.rows[0].n;
      }
      return counts;
    }

    /** A user with some of everything, each table past one batch. */
    async function busyUser(): Promise<TestUser> {
      const u = await createUser(t);
      const api = (method: string, path: string, body?: unknown) => t.api(method, path, { token: u.accessToken, body });
      const project = await api('POST', '/v1/projects', { name: 'Owls' });
      assert.equal(project.status, 201, project.text);
      for (let i = 0; i < 3; i++) {
        const c = await api('POST', '/v1/conversations', { title: `Chat ${i}` });
        // Each answer is the next message's parent: a chain the erasure takes apart from its newest end.
        for (let j = 0; j < 2; j++) assert.equal((await api('POST', `/v1/conversations/${c.body.id}/messages`, { content: `question ${j}` })).status, 201);
      }
      for (let i = 0; i < 6; i++) assert.equal((await api('POST', '/v1/documents', { title: `Note ${i}`, body: `text ${i}` })).status, 201);
      for (let i = 0; i < 6; i++) {
        const sent = await t.api('POST', '/v1/notifications', { token: admin.accessToken, body: { userId: u.id, category: 'system.message', title: `Notice ${i}` } });
        assert.equal(sent.status, 201, sent.text);
      }
      const collection = await api('POST', '/v1/knowledge/collections', { name: 'Birds' });
      for (let i = 0; i < 5; i++) {
        const file = await uploadFile(t, u, `guide-${i}.md`, Buffer.from(GUIDE));
        assert.equal((await api('POST', `/v1/knowledge/collections/${collection.body.id}/items`, { fileId: file.id })).status, 202);
      }
      await uploadFile(t, u, 'dot.png', PNG);
      const key = await api('POST', '/v1/api-keys', { name: 'k' });
      assert.equal((await api('PUT', '/v1/budgets', { scope: 'api_key', subjectId: key.body.id, period: 'day', limitTokens: 1000 })).status, 200);
      assert.equal((await api('PUT', '/v1/budgets', { scope: 'project', subjectId: project.body.id, period: 'month', limitTokens: 1000 })).status, 200);
      const own = await t.api('PUT', '/v1/admin/budgets', { token: admin.accessToken, body: { userId: u.id, period: 'day', limitTokens: 1000 } });
      assert.equal(own.status, 200, own.text);
      await eventually(async () => {
        const counts = await held(u.id);
        assert.ok(counts.knowledge_chunks > 4 && counts.knowledge_items === 5, JSON.stringify(counts));
      }, 20_000);
      return u;
    }

    test('gone to every reader at once; every row erased after, its own row last; nobody else loses anything', async () => {
      const leaving = await busyUser();
      const staying = await busyUser();
      const before = await held(leaving.id);
      for (const [table] of OWNED) assert.ok(before[table] > 0, `${table} holds some of the account's rows`);
      for (const table of ['messages', 'documents', 'notifications', 'knowledge_chunks', 'files']) assert.ok(before[table] > 4, `${table}: more than one batch`);
      const kept = await held(staying.id);

      const del = await t.api('DELETE', '/v1/users/me', { token: leaving.accessToken, body: { password: leaving.password } });
      assert.equal(del.status, 204, del.text);
      // At once: signed out, unknown to the administrators, the address free.
      assert.equal((await t.api('GET', '/v1/users/me', { token: leaving.accessToken })).status, 401);
      assert.equal((await t.api('GET', `/v1/admin/users/${leaving.id}`, { token: admin.accessToken })).status, 404);
      const listed = await t.api('GET', `/v1/admin/users?email=${encodeURIComponent(leaving.email)}`, { token: admin.accessToken });
      assert.deepEqual(listed.body.data, []);
      const sent = await t.api('POST', '/v1/notifications', { token: admin.accessToken, body: { userId: leaving.id, category: 'system.message', title: 'gone' } });
      assert.equal(sent.status, 404, sent.text);

      await eventually(async () => {
        const res: any = await t.deps.db.execute(sql`select count(*)::int as n from users where id = ${leaving.id}::uuid`);
        assert.equal(res.rows[0].n, 0, 'the account row goes last');
      }, 20_000);
      assert.deepEqual(await held(leaving.id), Object.fromEntries(OWNED.map(([table]) => [table, 0])));
      // Nothing of the other account's went (it may have gained a late notice meanwhile).
      const still = await held(staying.id);
      for (const [table] of OWNED) assert.ok(still[table] >= kept[table], `${table}: ${still[table]} of ${kept[table]} left`);
      const again = await t.api('POST', '/v1/auth/register', { body: { email: leaving.email, password: 'a new password' } });
      assert.equal(again.status, 201, again.text);
      assert.notEqual(again.body.user.id, leaving.id);
    });

    test("what others hold of the account lets go of it: their share lists at once, attachments and indexed documents after", async () => {
      const leaving = await createUser(t);
      const other = await createUser(t);
      const as = (u: TestUser) => (method: string, path: string, body?: unknown) => t.api(method, path, { token: u.accessToken, body });
      // The other user's document, shared with the leaving one, who attaches a file of theirs to it.
      const theirs = (await as(other)('POST', '/v1/documents', { title: 'Shared plan', body: 'plan' })).body;
      assert.equal((await as(other)('POST', `/v1/documents/${theirs.id}/shares`, { email: leaving.email, role: 'editor' })).status, 201);
      const file = await uploadFile(t, leaving, 'dot.png', PNG);
      assert.equal((await as(leaving)('POST', `/v1/documents/${theirs.id}/attachments`, { fileId: file.id })).status, 201);
      // The leaving user's document, shared with the other, who indexes it in a collection of theirs.
      const mine = (await as(leaving)('POST', '/v1/documents', { title: 'Owl notes', body: 'Owls hunt at night and fly without a sound.' })).body;
      assert.equal((await as(leaving)('POST', `/v1/documents/${mine.id}/shares`, { email: other.email, role: 'viewer' })).status, 201);
      const collection = (await as(other)('POST', '/v1/knowledge/collections', { name: 'Reading' })).body;
      const item = (await as(other)('POST', `/v1/knowledge/collections/${collection.id}/items`, { documentId: mine.id })).body;
      await eventually(async () => assert.equal((await as(other)('GET', `/v1/knowledge/items/${item.id}`)).body.status, 'ready'), 20_000);

      assert.equal((await t.api('DELETE', '/v1/users/me', { token: leaving.accessToken, body: { password: leaving.password } })).status, 204);
      // At once (here the erasure may already have run: the next test holds it back).
      assert.deepEqual((await as(other)('GET', `/v1/documents/${theirs.id}/shares`)).body.data, []);
      // Once erased: the attachment of its file and the passages of its document are gone from the other user's things.
      await eventually(async () => {
        assert.deepEqual((await as(other)('GET', `/v1/documents/${theirs.id}/attachments`)).body.data, []);
        assert.equal((await as(other)('GET', `/v1/knowledge/items/${item.id}`)).status, 404);
        // The item reads as gone as soon as the share is (the document is left out of reads until its
        // links are dropped); its passages go when the erasure or the unshare event has run.
        const left: any = await t.deps.db.execute(sql`select count(*)::int as n from knowledge_chunks where item_id = ${item.id}::uuid`);
        assert.equal(left.rows[0].n, 0, "none of the deleted account's text is kept in another user's index");
      }, 20_000);
    });

    test('while its erasure waits (no worker runs it): the account is gone to others at once, its shared documents and links with it; digests go on', async () => {
      const idle = await startApp({ backend, worker: false });
      try {
        const leaving = await createUser(idle);
        const other = await createUser(idle);
        const as = (u: TestUser) => (method: string, path: string, body?: unknown) => idle.api(method, path, { token: u.accessToken, body });
        const theirs = (await as(other)('POST', '/v1/documents', { title: 'Shared plan', body: 'plan' })).body;
        assert.equal((await as(other)('POST', `/v1/documents/${theirs.id}/shares`, { email: leaving.email, role: 'editor' })).status, 201);
        const mine = (await as(leaving)('POST', '/v1/documents', { title: 'Owl notes', body: 'Owls hunt at night.' })).body;
        assert.equal((await as(leaving)('POST', `/v1/documents/${mine.id}/shares`, { email: other.email, role: 'viewer' })).status, 201);
        const link = (await as(leaving)('POST', `/v1/documents/${mine.id}/links`, { role: 'viewer' })).body;
        assert.equal((await as(other)('GET', `/v1/documents/${mine.id}`)).status, 200, 'opened: among their recent documents');
        const byLink = () => idle.api('GET', '/v1/documents/shared', { token: other.accessToken, headers: { 'x-share-token': link.token } });
        assert.equal((await byLink()).status, 200);

        const admin = await createUser(idle, { admin: true });
        const budgets = () => idle.api('GET', `/v1/admin/budgets?userId=${leaving.id}`, { token: admin.accessToken });
        assert.equal((await idle.api('PUT', '/v1/admin/budgets', { token: admin.accessToken, body: { userId: leaving.id, period: 'day', limitTokens: 1000 } })).status, 200);
        assert.equal((await budgets()).body.data.length, 1);
        // Both take their emails as a daily digest, and each has one held.
        for (const u of [leaving, other]) {
          assert.equal((await as(u)('PATCH', '/v1/users/me/preferences', { notifications: { digest: 'daily', digestTime: '09:00' } })).status, 200);
          const held = await idle.services.notifications.send({ userId: u.id, category: 'system.message', title: 'Held for a digest' });
          assert.equal(held.channels.email?.status, 'held');
        }

        assert.equal((await idle.api('DELETE', '/v1/users/me', { token: leaving.accessToken, body: { password: leaving.password } })).status, 204);
        const row: any = await idle.deps.db.execute(sql`select count(*)::int as n from documents where id = ${mine.id}::uuid`);
        assert.equal(row.rows[0].n, 1, 'the erasure has not run: the rows are all there');
        assert.deepEqual((await as(other)('GET', `/v1/documents/${theirs.id}/shares`)).body.data, [], 'the deleted reader is no longer listed');
        assert.equal((await as(other)('GET', `/v1/documents/${mine.id}`)).status, 404);
        assert.deepEqual((await as(other)('GET', '/v1/documents?sharedWithMe=true')).body.data, []);
        assert.ok(!(await as(other)('GET', '/v1/documents/recent')).body.data.some((d: any) => d.id === mine.id));
        assert.equal((await byLink()).status, 404);
        assert.deepEqual((await budgets()).body.data, [], 'an administrator sees no budgets of the deleted account');
        // A module's notice to the deleted account (an answer ready, a job failed) is nothing to send, not an error its handler would retry.
        const notice = { userId: leaving.id, category: 'system.message', title: 'Your answer is ready' };
        assert.equal(await idle.services.notifications.notify(notice), undefined);
        await assert.rejects(idle.services.notifications.send(notice), { code: 'user_not_found' });

        // The deleted account's held emails wait for its erasure; the other's digest goes on.
        assert.equal(await idle.services.notifications.sendDueDigests(new Date(Date.now() + 26 * 3600_000)), 1);
      } finally {
        await idle.close();
      }
    });
  });
}
