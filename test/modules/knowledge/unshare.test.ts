import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { uploadFile } from '../../support/files.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';
import { connectAs, subscribe } from '../../support/ws.ts';

/**
 * A reader may put a document shared with them in their own collections. Once the share ends (the owner removes
 * it, or the reader leaves), it ends there too: their collections let go of it, and nothing of it, nor of what the
 * owner does to it after, reaches them. The owner's collections and other readers' keep it.
 */
for (const backend of backends()) {
  describe(`knowledge: a document's share removed [${backend}]`, () => {
    let t: TestApp;
    let openai: FakeOpenAI;
    let owner: TestUser;

    const post = async (u: TestUser, path: string, body: unknown, status = 201) => {
      const res = await t.api('POST', path, { token: u.accessToken, body });
      assert.equal(res.status, status, `${path}: ${res.text}`);
      return res.body;
    };
    const share = (doc: string, u: TestUser) => post(owner, `/v1/documents/${doc}/shares`, { email: u.email, role: 'viewer' });
    const unshare = async (doc: string, u: TestUser, by = owner) => assert.equal((await t.api('DELETE', `/v1/documents/${doc}/shares/${u.id}`, { token: by.accessToken })).status, 204);
    const collection = async (u: TestUser, name: string) => (await post(u, '/v1/knowledge/collections', { name })).id as string;
    const add = (u: TestUser, collectionId: string, documentId: string) => post(u, `/v1/knowledge/collections/${collectionId}/items`, { documentId }, 202);
    const listed = async (u: TestUser, collectionId: string) => {
      const res = await t.api('GET', `/v1/knowledge/collections/${collectionId}/items`, { token: u.accessToken });
      assert.equal(res.status, 200, res.text);
      return res.body.data.map((i: any) => i.id) as string[];
    };
    const found = async (u: TestUser, q: string) => (await t.api('GET', `/v1/knowledge/search?q=${encodeURIComponent(q)}&kind=document`, { token: u.accessToken })).body.data.map((h: any) => h.refId) as string[];
    const item = (u: TestUser, itemId: string) => t.api('GET', `/v1/knowledge/items/${itemId}`, { token: u.accessToken });
    const ready = (u: TestUser, itemId: string) =>
      eventually(async () => {
        const res = await item(u, itemId);
        assert.equal(res.body.status, 'ready', res.text);
        return res.body;
      }, 15_000);
    /** The rows that put an item in a collection (what a listing reads, besides its read-time check). */
    const links = async (collectionId: string) => {
      const res = (await t.deps.db.execute(sql`select item_id from knowledge_collection_items where collection_id = ${collectionId}`)) as unknown as { rows: Array<{ item_id: string }> };
      return res.rows.map((r) => r.item_id);
    };
    const holder = async (itemId: string) => {
      const res = (await t.deps.db.execute(sql`select user_id from knowledge_items where id = ${itemId}`)) as unknown as { rows: Array<{ user_id: string }> };
      return res.rows[0]?.user_id;
    };

    before(async () => {
      openai = await startFakeOpenAI();
      t = await startApp({ backend, env: { ...openai.env, DEFAULT_MODEL: 'openai:gpt-4o-mini', AI_RETRIES: '0', KNOWLEDGE_INGEST_BACKOFF_MS: '100' } });
      owner = await createUser(t);
    });
    after(async () => {
      await t.close();
      await openai.close();
    });

    test("the former reader's collections let go of it at once, and its answers and search never draw on it; the owner's and other readers' keep it", async () => {
      const [reader, other, linkHolder] = await Promise.all([createUser(t), createUser(t), createUser(t)]);
      const doc = await post(owner, '/v1/documents', { title: 'Pangolins', body: 'Pangolins roll into a ball of scales when threatened.\n' });
      await share(doc.id, reader);
      await share(doc.id, other);
      // The reader adds it first: the item is theirs to hold, for everyone whose collections hold it.
      const theirs = await collection(reader, 'Borrowed');
      const added = await add(reader, theirs, doc.id);
      await ready(reader, added.id);
      const others = await collection(other, 'Also borrowed');
      const mine = await collection(owner, 'Mine');
      assert.equal((await add(other, others, doc.id)).id, added.id);
      assert.equal((await add(owner, mine, doc.id)).id, added.id);
      assert.deepEqual(await found(reader, 'pangolins'), [doc.id]);

      const socket = await connectAs(t, reader.accessToken);
      try {
        assert.equal((await subscribe(socket, 'knowledge')).type, 'subscribed');
        await unshare(doc.id, reader);
        // At once, before `document.unshared` is handled: not listed, not theirs to see, not found.
        assert.deepEqual(await listed(reader, theirs), []);
        assert.equal((await item(reader, added.id)).status, 404);
        assert.deepEqual(await found(reader, 'pangolins'), []);
        // Then the link itself goes, and the item passes to the owner, who may always read it.
        await eventually(async () => {
          assert.deepEqual(await links(theirs), []);
          assert.equal(await holder(added.id), owner.id);
        }, 15_000);
        assert.deepEqual(await listed(owner, mine), [added.id]);
        assert.deepEqual(await listed(other, others), [added.id]);
        assert.deepEqual(await links(others), [added.id]);

        // The owner's changes reach the owner and the other reader; nothing of them the former reader.
        const saved = await t.api('PUT', `/v1/documents/${doc.id}`, { token: owner.accessToken, body: { title: 'Pangolins and aardvarks', body: 'Aardvarks dig burrows at night.\n', baseVersion: doc.version } });
        assert.equal(saved.status, 200, saved.text);
        await eventually(async () => {
          await ready(owner, added.id);
          assert.deepEqual(await found(owner, 'aardvarks burrows'), [doc.id]);
          assert.deepEqual(await found(other, 'aardvarks burrows'), [doc.id]);
        }, 15_000);
        assert.deepEqual(await found(reader, 'aardvarks burrows'), []);
        assert.deepEqual(await listed(reader, theirs), []);
        assert.equal((await item(reader, added.id)).status, 404);
        assert.equal((await t.api('POST', `/v1/knowledge/items/${added.id}/reindex`, { token: reader.accessToken })).status, 404);
        // Every frame sent to the socket before the pong has arrived: none told the former reader of the item.
        socket.send({ type: 'ping' });
        await socket.next((f) => f.type === 'pong');
        const told = socket.frames.filter((f) => f.type === 'event' && f.event?.payload?.itemId === added.id);
        assert.deepEqual(told.map((f) => f.event.payload.status), []);
      } finally {
        await socket.close();
      }

      // Grounded answers: the other reader's draw on it; the former reader's have no sources at all.
      const ask = async (u: TestUser, collectionId: string) => {
        const conv = await post(u, '/v1/conversations', { model: 'openai:gpt-4o-mini' });
        assert.equal((await t.api('PUT', `/v1/conversations/${conv.id}/collections`, { token: u.accessToken, body: { collectionIds: [collectionId] } })).status, 200);
        openai.reset();
        openai.script({ reply: 'They dig.' });
        await post(u, `/v1/conversations/${conv.id}/messages`, { content: 'Where do aardvarks dig burrows?' });
        await t.services.generation.idle();
        return openai.requests.find((r) => r.path === '/v1/chat/completions')!.body.messages as Array<{ role: string; content: string }>;
      };
      assert.match((await ask(other, others))[0]!.content, /Aardvarks dig burrows/);
      const asked = await ask(reader, theirs);
      assert.deepEqual(asked.map((m) => m.role), ['user']);
      assert.ok(!JSON.stringify(asked).includes('Aardvarks dig'));
      const tool = await t.services.grounding.find(reader.id, { query: 'aardvarks burrows pangolins', limit: 10, projectId: null, conversationId: null });
      assert.deepEqual(tool.passages, []);

      // A share link reads the document on its own routes only: it gives no way into knowledge.
      const link = await post(owner, `/v1/documents/${doc.id}/links`, { role: 'viewer' });
      assert.equal((await t.api('GET', '/v1/documents/shared', { token: linkHolder.accessToken, headers: { 'x-share-token': link.token } })).status, 200);
      const theirsToo = await collection(linkHolder, 'Linked');
      assert.equal((await t.api('POST', `/v1/knowledge/collections/${theirsToo}/items`, { token: linkHolder.accessToken, body: { documentId: doc.id } })).status, 404);
    });

    test('a reader who leaves lets go of it too; shared again, they may add it again, and a late event leaves what they added since', async () => {
      const reader = await createUser(t);
      const doc = await post(owner, '/v1/documents', { title: 'Quokkas', body: 'Quokkas carry their young in a pouch.\n' });
      await share(doc.id, reader);
      const theirs = await collection(reader, 'Marsupials');
      const first = await add(reader, theirs, doc.id);
      await unshare(doc.id, reader, reader);
      // No other collection held it: it goes, with its passages.
      await eventually(async () => {
        assert.deepEqual(await links(theirs), []);
        assert.equal(await holder(first.id), undefined);
      }, 15_000);

      await share(doc.id, reader);
      const again = await add(reader, theirs, doc.id);
      await ready(reader, again.id);
      assert.deepEqual(await listed(reader, theirs), [again.id]);
      assert.deepEqual(await found(reader, 'quokkas pouch'), [doc.id]);

      // The removal's event comes again, late (delivery is at least once): the reader reads the document again now.
      await t.deps.bus.publish('document.unshared', { userId: reader.id, documentId: doc.id });
      // Another removal, published after it and seen handled: the late one was handled before it.
      const later = await post(owner, '/v1/documents', { title: 'Wombats', body: 'Wombats leave cube-shaped droppings.\n' });
      await share(later.id, reader);
      const wombats = await add(reader, theirs, later.id);
      await unshare(later.id, reader);
      await eventually(async () => assert.deepEqual(await links(theirs), [again.id]), 15_000);
      assert.equal(await holder(wombats.id), undefined);
      assert.deepEqual(await listed(reader, theirs), [again.id]);
      assert.equal(await holder(again.id), reader.id);
    });

    // Two connections at once: PostgreSQL's (PGlite runs one statement at a time, so its add cannot be caught half-way).
    test('a share removed while the reader adds the document: whichever comes first, the link does not stay', { skip: backend !== 'postgres' && 'needs a second connection' }, async () => {
      const reader = await createUser(t);
      const doc = await post(owner, '/v1/documents', { title: 'Tapirs', body: 'Tapirs use their snouts as snorkels.\n' });
      await share(doc.id, reader);
      const mine = await collection(owner, 'Mine too');
      const held = await add(owner, mine, doc.id);
      await ready(owner, held.id);
      const theirs = await collection(reader, 'Borrowed too');

      // Another connection holds the item's row: the reader's add, past its check that they may read the document,
      // waits to link it; the share is removed meanwhile, and its event's handler waits too.
      const [holding, watching] = [new pg.Client({ connectionString: t.deps.config.databaseUrl }), new pg.Client({ connectionString: t.deps.config.databaseUrl })];
      await Promise.all([holding.connect(), watching.connect()]);
      /** Statements of the app waiting for a lock: the add's insert of the item, the handler's hold of it. */
      const waiting = async () => {
        const { rows } = await watching.query("select query from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'");
        return { adding: rows.filter((r) => /^insert into "knowledge_items"/i.test(r.query)).length, releasing: rows.filter((r) => /for update$/i.test(r.query.trim())).length };
      };
      let adding: Promise<{ status: number; text: string }> | undefined;
      try {
        await holding.query('begin');
        await holding.query('select id from knowledge_items where id = $1 for update', [held.id]);
        adding = t.api('POST', `/v1/knowledge/collections/${theirs}/items`, { token: reader.accessToken, body: { documentId: doc.id } });
        await eventually(async () => assert.deepEqual(await waiting(), { adding: 1, releasing: 0 }), 15_000);
        await unshare(doc.id, reader);
        await eventually(async () => assert.deepEqual(await waiting(), { adding: 1, releasing: 1 }), 15_000);
      } finally {
        await holding.query('commit').catch(() => undefined);
        await Promise.all([holding.end(), watching.end()]);
      }
      const res = await adding!;
      assert.equal(res.status, 404, res.text);
      assert.deepEqual(await links(theirs), []);
      assert.deepEqual(await listed(reader, theirs), []);
      assert.deepEqual(await listed(owner, mine), [held.id]);
      assert.equal(await holder(held.id), owner.id);
    });
  });

  describe(`knowledge: a document's share removed, before its event is handled [${backend}]`, () => {
    let t: TestApp;
    // No worker: the removal's job (and so `document.unshared`) waits, as it may for a while when the bus is down.
    before(async () => {
      t = await startApp({ backend, worker: false });
    });
    after(() => t.close());

    test('the former reader no longer sees it listed, nor the item, though the link is still there', async () => {
      const [owner, reader] = await Promise.all([createUser(t), createUser(t)]);
      const as = (u: TestUser, method: string, path: string, body?: unknown) => t.api(method, path, { token: u.accessToken, body });
      const doc = (await as(owner, 'POST', '/v1/documents', { title: 'Okapis', body: 'Okapis clean their ears with their tongues.\n' })).body;
      assert.equal((await as(owner, 'POST', `/v1/documents/${doc.id}/shares`, { email: reader.email, role: 'viewer' })).status, 201);
      const theirs = (await as(reader, 'POST', '/v1/knowledge/collections', { name: 'Borrowed' })).body.id;
      const added = await as(reader, 'POST', `/v1/knowledge/collections/${theirs}/items`, { documentId: doc.id });
      assert.equal(added.status, 202, added.text);
      const file = await uploadFile(t, reader, 'own.md', Buffer.from('Their own notes.'));
      const own = (await as(reader, 'POST', `/v1/knowledge/collections/${theirs}/items`, { fileId: file.id })).body;
      assert.deepEqual((await as(reader, 'GET', `/v1/knowledge/collections/${theirs}/items`)).body.data.map((i: any) => i.id), [own.id, added.body.id]);

      assert.equal((await as(owner, 'DELETE', `/v1/documents/${doc.id}/shares/${reader.id}`)).status, 204);
      assert.deepEqual((await as(reader, 'GET', `/v1/knowledge/collections/${theirs}/items`)).body.data.map((i: any) => i.id), [own.id], 'their own file stays');
      assert.equal((await as(reader, 'GET', `/v1/knowledge/items/${added.body.id}`)).status, 404);
      const linked = (await t.deps.db.execute(sql`select count(*)::int as n from knowledge_collection_items where collection_id = ${theirs}`)) as unknown as { rows: Array<{ n: number }> };
      assert.equal(linked.rows[0]!.n, 2, 'the event that takes the link away has not come yet');
    });
  });
}
