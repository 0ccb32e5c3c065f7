import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { RANKED_PASSAGES } from '../../../src/modules/knowledge/search.ts';

/**
 * Full-text knowledge search where many passages match: what is ranked (the newest items' matches, a
 * bounded number a side), and whose (the user's own, and documents shared with them; nobody else's).
 * Items and passages are written straight into the tables, as indexing leaves them, so that thousands
 * take a statement.
 */
for (const backend of backends()) {
  describe(`knowledge full text at volume [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend });
    });
    after(() => t.close());

    /** A ready item of `owner`'s (made now: newer than those made before it) with `count` passages of `text`. */
    const item = async (owner: TestUser, count: number, text: string, ref: { kind: 'file' | 'document'; refId?: string } = { kind: 'file' }) => {
      const id = uuidv7();
      const refId = ref.refId ?? randomUUID();
      await t.deps.db.execute(sql`
        insert into knowledge_items (id, user_id, kind, ref_id, title, status, chunks, indexed_at)
        values (${id}, ${owner.id}, ${ref.kind}, ${refId}, ${`${ref.kind} ${id.slice(-4)}`}, 'ready', ${count}, now())`);
      await t.deps.db.execute(sql`
        insert into knowledge_chunks (id, item_id, user_id, index, text, start_offset, end_offset, tokens, hash)
        select gen_random_uuid(), ${id}, ${owner.id}, g, ${text}, 0, ${text.length}, 5, md5(g::text) from generate_series(0, ${count - 1}) g`);
      return { id, refId };
    };
    const collection = async (u: TestUser, itemIds: string[]) => {
      const res = await t.api('POST', '/v1/knowledge/collections', { token: u.accessToken, body: { name: 'c' } });
      assert.equal(res.status, 201, res.text);
      for (const itemId of itemIds) await t.deps.db.execute(sql`insert into knowledge_collection_items (collection_id, item_id) values (${res.body.id}, ${itemId})`);
      return res.body.id as string;
    };
    const search = async (u: TestUser, query: string) => {
      const res = await t.api('GET', `/v1/knowledge/search?${query}`, { token: u.accessToken });
      assert.equal(res.status, 200, res.text);
      return res.body as { data: Array<{ kind: string; itemId: string; refId: string; snippet: string; ranks: { fullText: number | null } }>; nextCursor: string | null };
    };

    test("another user's passages never come back, however many of them match", async () => {
      const u = await createUser(t);
      const other = await createUser(t);
      const mine = await item(u, 3, 'the aurora glowed green');
      // Newer than the user's, and more than are ranked.
      await item(other, RANKED_PASSAGES + 10, 'aurora aurora aurora borealis');
      const found = await search(u, 'q=aurora&limit=50');
      assert.equal(found.data.length, 3);
      assert.ok(found.data.every((h) => h.itemId === mine.id));
      assert.deepEqual(found.data.map((h) => h.ranks.fullText), [1, 2, 3]);
      const theirs = await search(other, 'q=aurora&limit=50');
      assert.equal(theirs.data.length, 50);
      assert.ok(theirs.data.every((h) => h.itemId !== mine.id));
    });

    test(`a word in more than ${RANKED_PASSAGES} passages: those of the newest items are ranked; a collection narrows to its own`, async () => {
      const u = await createUser(t);
      // The older item matches best, but the newer one alone fills the ranked passages.
      const older = await item(u, 5, 'tidepool tidepool tidepool tidepool anemones');
      const newer = await item(u, RANKED_PASSAGES, 'a note that mentions a tidepool once, among many other words about the shore');
      const found = await search(u, 'q=tidepool&limit=50');
      assert.equal(found.data.length, 50);
      assert.ok(found.data.every((h) => h.itemId === newer.id), 'the older item is left out');
      // Narrowed to a collection holding the older item, its passages are the ones ranked.
      const only = await search(u, `q=tidepool&limit=50&collectionId=${await collection(u, [older.id])}`);
      assert.deepEqual(new Set(only.data.map((h) => h.itemId)), new Set([older.id]));
      assert.equal(only.data.length, 5);
    });

    test("a document shared with the user, indexed by its owner, is found beside the user's own many matches; revoked, it is not", async () => {
      const owner = await createUser(t);
      const reader = await createUser(t);
      const stranger = await createUser(t);
      const doc = await t.api('POST', '/v1/documents', { token: owner.accessToken, body: { title: 'Moss', body: 'sphagnum' } });
      assert.equal(doc.status, 201, doc.text);
      const shared = await item(owner, 2, 'sphagnum sphagnum sphagnum moss holds water', { kind: 'document', refId: doc.body.id });
      // The reader's own matches are more than are ranked on their side; the shared ones are ranked on theirs.
      await item(reader, RANKED_PASSAGES + 5, 'a bog full of sphagnum and other plants, described at length');
      const share = await t.api('POST', `/v1/documents/${doc.body.id}/shares`, { token: owner.accessToken, body: { email: reader.email, role: 'viewer' } });
      assert.equal(share.status, 201, share.text);

      const found = await search(reader, 'q=sphagnum&limit=50');
      assert.deepEqual(found.data.slice(0, 2).map((h) => h.itemId), [shared.id, shared.id], 'the shared passages rank first');
      assert.equal(found.data.length, 50);
      assert.deepEqual((await search(reader, 'q=sphagnum&kind=document')).data.map((h) => h.refId), [doc.body.id, doc.body.id]);
      assert.deepEqual((await search(stranger, 'q=sphagnum')).data, []);

      const revoked = await t.api('DELETE', `/v1/documents/${doc.body.id}/shares/${reader.id}`, { token: owner.accessToken });
      assert.ok(revoked.status === 204 || revoked.status === 200, revoked.text);
      assert.deepEqual((await search(reader, 'q=sphagnum&kind=document')).data, []);
    });
  });
}
