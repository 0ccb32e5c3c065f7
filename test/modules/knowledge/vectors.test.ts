import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { createVectorIndex } from '../../../src/modules/knowledge/vectors.ts';
import { FAKE_EMBEDDING_DIMS, fakeEmbedding } from '../../support/fake-embeddings.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';
import { uploadFile } from '../../support/files.ts';

const NOTES = ['# Garden', 'Water the roots early in the morning.', 'Loam drains well and holds food.'].join('\n\n');
/** How many passages the search's vector list asks for (search.ts CANDIDATES). */
const CANDIDATES = 50;

/**
 * `items` ready file items of this user, each with `per` passages with their own dense embeddings (`fn` of row and
 * dimension), as ingestion would store them; in the collection when one is named. Returns nothing.
 */
async function seedItems(t: TestApp, userId: string, items: number, per: number, fn: 'sin' | 'cos', collectionId?: string) {
  const link = collectionId ? sql`, linked as (insert into knowledge_collection_items (collection_id, item_id) select ${collectionId}::uuid, id from made)` : sql``;
  await t.deps.db.execute(sql`
    with made as (
      insert into knowledge_items (id, user_id, kind, ref_id, title, status)
      select gen_random_uuid(), ${userId}::uuid, 'file', gen_random_uuid(), 'seeded ' || g, 'ready' from generate_series(1, ${items}) g
      returning id
    ) ${link}
    insert into knowledge_chunks (id, item_id, user_id, index, text, start_offset, end_offset, tokens, hash, embedding, dims)
    select gen_random_uuid(), i.id, ${userId}::uuid, g, 'seeded ' || g, 0, 1, 1, md5(i.id::text || g),
           (select array_agg(${sql.raw(fn)}(g * 7.3 + i.ord + d)::real) from generate_series(1, ${FAKE_EMBEDDING_DIMS}) d), ${FAKE_EMBEDDING_DIMS}
      from (select id, row_number() over () as ord from made) i, generate_series(1, ${per}) g`);
}

for (const backend of backends()) {
  describe(`knowledge: vector search among many users' passages [${backend}]`, () => {
    let t: TestApp;
    let openai: FakeOpenAI;
    let u: TestUser;
    let collectionId: string;

    before(async () => {
      openai = await startFakeOpenAI();
      t = await startApp({ backend, env: { ...openai.env, EMBEDDING_MODEL: 'openai:text-embedding-3-small', KNOWLEDGE_MIN_SIMILARITY: '-1' } });
      u = await createUser(t);
      const other = await createUser(t);
      // Another user's passages, 7,200 in 900 items, there before the index is made (it is built over them at once, as after an upgrade).
      await seedItems(t, other.id, 900, 8, 'sin');
      collectionId = (await t.api('POST', '/v1/knowledge/collections', { token: u.accessToken, body: { name: 'Garden' } })).body.id;
      const file = await uploadFile(t, u, 'garden.md', Buffer.from(NOTES));
      const added = await t.api('POST', `/v1/knowledge/collections/${collectionId}/items`, { token: u.accessToken, body: { fileId: file.id } });
      assert.equal(added.status, 202, added.text);
      await eventually(async () => assert.equal((await t.api('GET', `/v1/knowledge/items/${added.body.id}`, { token: u.accessToken })).body.status, 'ready'), 15_000);
      // This user's collection grows to a tenth of all items and passages.
      await seedItems(t, u.id, 99, 8, 'cos', collectionId);
      await t.deps.db.execute(sql`analyze knowledge_chunks`);
    });
    after(async () => {
      await t?.close();
      await openai.close();
    });

    test("a user's passages are found in full though they are a tenth of everyone's", async () => {
      const res = await t.api('GET', `/v1/knowledge/search?q=${encodeURIComponent('when to water the roots')}&collectionId=${collectionId}&limit=50`, { token: u.accessToken });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.mode, 'hybrid');
      // Every passage ranks by similarity here (the minimum is -1), so the vector list is as long as it asks for and
      // fills the page. An HNSW index walked over everyone's passages and filtered after left it at a handful.
      assert.equal(res.body.data.length, CANDIDATES, JSON.stringify(res.body.data.map((h: any) => h.ranks)));
      const ranks = res.body.data.map((h: any) => h.ranks.vector).filter((r: number | null) => r !== null);
      assert.ok(ranks.length >= CANDIDATES - 3, `${ranks.length} ranked by vector`);
    });

    test('the nearest passages under a filter that keeps a tenth of them: as many as asked for, best first', async () => {
      // Filtered by owner alone, the planner walks the HNSW index (the collection's join above it estimates too few rows for that).
      const vectors = createVectorIndex(t.deps.db, t.deps.logger);
      const near = await vectors.nearest(fakeEmbedding('water the roots'), sql`c.user_id = ${u.id}::uuid`, CANDIDATES);
      assert.equal(near.length, CANDIDATES);
      assert.deepEqual(near.map((n) => n.similarity), near.map((n) => n.similarity).sort((a, b) => b - a));
    });
  });
}
