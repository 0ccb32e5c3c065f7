import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { inTransaction } from '../../../src/platform/db/database.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { docx, docxOf } from '../../support/docx.ts';
import { eventually } from '../../support/eventually.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';
import { PNG, uploadFile } from '../../support/files.ts';
import { allSse } from '../../support/sse.ts';
import { connectAs, subscribe } from '../../support/ws.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

/** A Markdown guide in sections: each passage is about one animal, so rankings are easy to tell apart. */
const GUIDE = [
  '# Field guide',
  '',
  '## Otters',
  '',
  'Otters float on their backs and crack shellfish with stones. They hold hands while sleeping so they do not drift apart.',
  '',
  '## Falcons',
  '',
  'Falcons dive faster than any other animal. A peregrine falcon stoops at more than three hundred kilometres an hour.',
  '',
  '## Tortoises',
  '',
  'Tortoises live for well over a century. Their shells are part of their skeleton and grow with them.',
].join('\n');

const ready = async (t: TestApp, u: TestUser, itemId: string, status = 'ready', timeoutMs = 15_000) => {
  let item: any;
  await eventually(async () => {
    item = (await t.api('GET', `/v1/knowledge/items/${itemId}`, { token: u.accessToken })).body;
    assert.equal(item.status, status, JSON.stringify(item));
  }, timeoutMs);
  return item;
};

const search = (t: TestApp, u: TestUser, query: string) => t.api('GET', `/v1/knowledge/search?${query}`, { token: u.accessToken });
const embeddedTexts = (openai: FakeOpenAI) => openai.requests.filter((r) => r.path === '/v1/embeddings').flatMap((r) => r.body.input as string[]);

for (const backend of backends()) {
  describe(`knowledge [${backend}]`, () => {
    let t: TestApp;
    let openai: FakeOpenAI;
    let u: TestUser;
    let stranger: TestUser;
    let collectionId: string;

    before(async () => {
      openai = await startFakeOpenAI();
      t = await startApp({
        backend,
        env: { ...openai.env, EMBEDDING_MODEL: 'openai:text-embedding-3-small', AI_RETRIES: '0', KNOWLEDGE_CHUNK_TOKENS: '60', KNOWLEDGE_CHUNK_OVERLAP: '10', KNOWLEDGE_INGEST_BACKOFF_MS: '100', DEFAULT_MODEL: 'openai:gpt-4o-mini' },
      });
      u = await createUser(t);
      stranger = await createUser(t);
      const res = await t.api('POST', '/v1/knowledge/collections', { token: u.accessToken, body: { name: 'Nature', description: 'animals' } });
      assert.equal(res.status, 201, res.text);
      collectionId = res.body.id;
    });
    after(async () => {
      await t.close();
      await openai.close();
    });

    test('the status says hybrid, and whether vectors have an index (PGlite always; this PostgreSQL has no pgvector)', async () => {
      const res = await t.api('GET', '/v1/knowledge/status', { token: u.accessToken });
      assert.equal(res.status, 200);
      const hasPgvector = backend === 'embedded' || (await t.deps.db.execute("select 1 from pg_available_extensions where name = 'vector'" as never).then((r: any) => r.rows.length > 0));
      assert.deepEqual(res.body, { mode: 'hybrid', embeddingModel: 'openai:text-embedding-3-small', vectorIndex: hasPgvector ? 'pgvector' : 'exact' });
    });

    test('a Markdown file is indexed by a job into passages under their headings, embedded, and found by hybrid search', async () => {
      const file = await uploadFile(t, u, 'guide.md', Buffer.from(GUIDE));
      const added = await t.api('POST', `/v1/knowledge/collections/${collectionId}/items`, { token: u.accessToken, body: { fileId: file.id } });
      assert.equal(added.status, 202, added.text);
      assert.equal(added.body.status, 'queued');
      const item = await ready(t, u, added.body.id);
      assert.ok(item.chunks >= 3, `${item.chunks} passages`);
      assert.equal(item.embeddingModel, 'openai:text-embedding-3-small');
      assert.ok(embeddedTexts(openai).some((s) => s.startsWith('Field guide › Falcons')), 'passages are embedded with their heading trail');

      const res = await search(t, u, 'q=falcons+dive');
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.mode, 'hybrid');
      const top = res.body.data[0];
      assert.equal(top.kind, 'file');
      assert.equal(top.refId, file.id);
      assert.deepEqual(top.headings, ['Field guide', 'Falcons']);
      assert.match(top.snippet, /<mark>Falcons<\/mark> <mark>dive<\/mark>/);
      assert.ok(top.ranks.fullText === 1 && top.ranks.vector === 1, JSON.stringify(top.ranks));
      assert.equal(GUIDE.slice(top.start, top.end).includes('peregrine'), true, 'offsets point into the source');
      assert.equal(top.score, 2 / 61);

      const list = await t.api('GET', `/v1/knowledge/collections/${collectionId}/items`, { token: u.accessToken });
      assert.deepEqual(list.body.data.map((i: any) => i.id), [added.body.id]);
      // The stranger finds none of it, and cannot see the collection or the item.
      assert.deepEqual((await search(t, stranger, 'q=falcon')).body.data, []);
      for (const path of [`/v1/knowledge/collections/${collectionId}`, `/v1/knowledge/collections/${collectionId}/items`, `/v1/knowledge/items/${added.body.id}`]) {
        assert.equal((await t.api('GET', path, { token: stranger.accessToken })).status, 404, path);
      }
      const theirs = await t.api('POST', `/v1/knowledge/collections/${collectionId}/items`, { token: stranger.accessToken, body: { fileId: file.id } });
      assert.equal(theirs.status, 404);
      for (const [method, path, body] of [
        ['PATCH', `/v1/knowledge/collections/${collectionId}`, { name: 'mine now' }],
        ['DELETE', `/v1/knowledge/collections/${collectionId}/items/${added.body.id}`, undefined],
        ['POST', `/v1/knowledge/items/${added.body.id}/reindex`, undefined],
        ['DELETE', `/v1/knowledge/collections/${collectionId}`, undefined],
      ] as const) {
        assert.equal((await t.api(method, path, { token: stranger.accessToken, body })).status, 404, `${method} ${path}`);
      }
      const still = await t.api('GET', `/v1/knowledge/collections/${collectionId}`, { token: u.accessToken });
      assert.equal(still.body.name, 'Nature', 'nothing changed');
    });

    test('the owner\'s sockets follow indexing on the knowledge topic; nobody else\'s', async () => {
      const socket = await connectAs(t, u.accessToken);
      const other = await connectAs(t, stranger.accessToken);
      try {
        assert.equal((await subscribe(socket, 'knowledge')).type, 'subscribed');
        assert.equal((await subscribe(other, 'knowledge')).type, 'subscribed');
        const file = await uploadFile(t, u, 'live.md', Buffer.from('# Live\n\nSalamanders breathe through their skin.'));
        const added = await t.api('POST', `/v1/knowledge/collections/${collectionId}/items`, { token: u.accessToken, body: { fileId: file.id } });
        const done = await socket.next((f) => f.type === 'event' && f.event?.type === 'knowledge.item.updated' && f.event.payload.status === 'ready' && f.event.payload.itemId === added.body.id);
        assert.deepEqual(done.event.payload, { userId: u.id, itemId: added.body.id, kind: 'file', refId: file.id, status: 'ready', progress: 100, chunks: 1 });
        await assert.rejects(other.next((f) => f.type === 'event', 300), 'the other user hears nothing');
      } finally {
        await socket.close();
        await other.close();
      }
    });

    test('a document is indexed; a reader it is shared with finds it, nobody else does; an edit re-embeds only the passages that changed', async () => {
      const doc = await t.api('POST', '/v1/documents', { token: u.accessToken, body: { title: 'Bees', body: 'Honeybees dance to show the hive where nectar is.\n\nA queen bee lays two thousand eggs a day.\n\nDrones do not sting.' } });
      assert.equal(doc.status, 201, doc.text);
      const added = await t.api('POST', `/v1/knowledge/collections/${collectionId}/items`, { token: u.accessToken, body: { documentId: doc.body.id } });
      assert.equal(added.status, 202, added.text);
      await ready(t, u, added.body.id);

      const reader = await createUser(t);
      assert.deepEqual((await search(t, reader, 'q=honeybees+dance')).body.data, []);
      const share = await t.api('POST', `/v1/documents/${doc.body.id}/shares`, { token: u.accessToken, body: { email: reader.email, role: 'viewer' } });
      assert.equal(share.status, 201, share.text);
      const found = await search(t, reader, 'q=honeybees+dance&kind=document');
      assert.equal(found.body.data[0]?.refId, doc.body.id);
      assert.deepEqual((await search(t, stranger, 'q=honeybees+dance')).body.data, []);
      // The tag filter keeps documents with the tag.
      assert.deepEqual((await search(t, u, 'q=honeybees&tag=insects')).body.data, []);
      await t.api('PATCH', `/v1/documents/${doc.body.id}`, { token: u.accessToken, body: { tags: ['Insects'] } });
      assert.equal((await search(t, u, 'q=honeybees&tag=insects')).body.data[0]?.refId, doc.body.id);

      const before = embeddedTexts(openai).length;
      const saved = await t.api('PUT', `/v1/documents/${doc.body.id}`, { token: u.accessToken, body: { body: `${'Honeybees dance to show the hive where nectar is.\n\nA queen bee lays two thousand eggs a day.\n\nDrones do not sting.'}\n\n## Wasps\n\nWasps build paper nests.`, baseVersion: doc.body.version } });
      assert.equal(saved.status, 200, saved.text);
      await eventually(async () => {
        const hits = (await search(t, u, 'q=paper+nests')).body.data;
        assert.equal(hits[0]?.refId, doc.body.id);
      }, 15_000);
      // Less what search embedded: the queries.
      const sent = embeddedTexts(openai).slice(before).filter((s) => s !== 'paper nests');
      assert.deepEqual(sent.length, 1, `only the new passage was embedded: ${JSON.stringify(sent)}`);
      assert.match(sent[0]!, /Wasps build paper nests/);
    });

    test("a shared document a reader indexed first stays indexed for its owner once the reader's share is removed", async () => {
      const body = 'Meerkats stand guard on termite mounds.\n';
      const doc = await t.api('POST', '/v1/documents', { token: u.accessToken, body: { title: 'Meerkats', body } });
      const reader = await createUser(t);
      assert.equal((await t.api('POST', `/v1/documents/${doc.body.id}/shares`, { token: u.accessToken, body: { email: reader.email, role: 'viewer' } })).status, 201);
      const theirs = await t.api('POST', '/v1/knowledge/collections', { token: reader.accessToken, body: { name: 'Borrowed' } });
      const added = await t.api('POST', `/v1/knowledge/collections/${theirs.body.id}/items`, { token: reader.accessToken, body: { documentId: doc.body.id } });
      assert.equal(added.status, 202, added.text);
      await ready(t, reader, added.body.id);
      // Indexed once: the owner's collection holds the same item.
      const mine = await t.api('POST', `/v1/knowledge/collections/${collectionId}/items`, { token: u.accessToken, body: { documentId: doc.body.id } });
      assert.equal(mine.body.id, added.body.id);

      assert.equal((await t.api('DELETE', `/v1/documents/${doc.body.id}/shares/${reader.id}`, { token: u.accessToken })).status, 204);
      const saved = await t.api('PUT', `/v1/documents/${doc.body.id}`, { token: u.accessToken, body: { body: `${body}\nHornets hunt them at dusk.\n`, baseVersion: doc.body.version } });
      assert.equal(saved.status, 200, saved.text);
      // The item passed to the owner: indexed again from the new version, theirs to read and to index again.
      await eventually(async () => {
        const item = await t.api('GET', `/v1/knowledge/items/${added.body.id}`, { token: u.accessToken });
        assert.equal(item.status, 200, item.text);
        assert.equal(item.body.status, 'ready', item.text);
        assert.equal((await search(t, u, 'q=hornets+dusk&kind=document')).body.data[0]?.refId, doc.body.id);
      }, 15_000);
      assert.equal((await t.api('POST', `/v1/knowledge/items/${added.body.id}/reindex`, { token: u.accessToken })).status, 202);
      await ready(t, u, added.body.id);
      // The former reader finds nothing of it, and has no item of theirs to reach.
      assert.deepEqual((await search(t, reader, 'q=hornets+dusk')).body.data, []);
      assert.deepEqual((await search(t, reader, 'q=meerkats')).body.data, []);
      assert.equal((await t.api('GET', `/v1/knowledge/items/${added.body.id}`, { token: reader.accessToken })).status, 404);
    });

    test('re-indexes asked at once: one is queued, the others are 409 already_indexing', async () => {
      const doc = await t.api('POST', '/v1/documents', { token: u.accessToken, body: { title: 'Axolotls', body: 'Axolotls regrow their limbs.\n' } });
      const added = await t.api('POST', `/v1/knowledge/collections/${collectionId}/items`, { token: u.accessToken, body: { documentId: doc.body.id } });
      await ready(t, u, added.body.id);
      const reindex = () => t.api('POST', `/v1/knowledge/items/${added.body.id}/reindex`, { token: u.accessToken });
      let answers;
      if (t.backend === 'postgres') {
        // The item's row held until every request has found it ready and waits to mark it queued: then they go at once.
        let release!: () => void;
        const held = new Promise<void>((resolve) => (release = resolve));
        const holding = inTransaction(t.deps.db, async (tx) => {
          await tx.execute(sql`select id from knowledge_items where id = ${added.body.id} for update`);
          await held;
        });
        const pending = Promise.all(Array.from({ length: 6 }, reindex));
        try {
          await eventually(async () => {
            const waiting = await t.deps.db.execute(sql`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`);
            assert.equal((waiting as unknown as { rows: Array<{ n: number }> }).rows[0]!.n, 6, 'every request waits for the item');
          });
        } finally {
          release();
          await holding;
        }
        answers = await pending;
        assert.deepEqual(answers.map((r) => r.status).sort(), [202, 409, 409, 409, 409, 409], answers.map((r) => r.text).join('\n'));
      } else {
        // One connection: the requests take turns, and a small item may be indexed again between two of them.
        answers = await Promise.all(Array.from({ length: 6 }, reindex));
        assert.ok(answers.some((r) => r.status === 202));
      }
      for (const r of answers) assert.ok(r.status === 202 || (r.status === 409 && r.body.code === 'already_indexing'), r.text);
      await ready(t, u, added.body.id);
    });

    test('conversations are searched too; kind and collection filters narrow the results', async () => {
      const conv = await t.api('POST', '/v1/conversations', { token: u.accessToken, body: { title: 'chat' } });
      openai.script({ reply: 'Noted.' });
      const sent = await t.api('POST', `/v1/conversations/${conv.body.id}/messages`, { token: u.accessToken, body: { content: 'My tortoise is named Archimedes' } });
      assert.equal(sent.status, 201, sent.text);
      const all = await search(t, u, 'q=tortoise');
      const kinds = all.body.data.map((h: any) => h.kind).sort();
      assert.deepEqual(kinds, ['conversation', 'file']);
      const conversation = all.body.data.find((h: any) => h.kind === 'conversation');
      assert.equal(conversation.refId, conv.body.id);
      assert.ok(conversation.messageId);
      assert.deepEqual((await search(t, u, 'q=tortoise&kind=conversation')).body.data.map((h: any) => h.kind), ['conversation']);
      // A collection filter keeps its items only (conversations are in no collection).
      assert.deepEqual((await search(t, u, `q=tortoise&collectionId=${collectionId}`)).body.data.map((h: any) => h.kind), ['file']);
      const other = await t.api('POST', '/v1/knowledge/collections', { token: u.accessToken, body: { name: 'Empty' } });
      assert.deepEqual((await search(t, u, `q=tortoise&collectionId=${other.body.id}`)).body.data, []);
    });

    test('pages follow a cursor; bad queries are 400', async () => {
      const first = await search(t, u, 'q=otters+or+falcons&limit=1&kind=file,document');
      assert.equal(first.body.data.length, 1);
      assert.ok(first.body.nextCursor);
      const second = await search(t, u, `q=otters+or+falcons&limit=1&kind=file,document&cursor=${first.body.nextCursor}`);
      assert.equal(second.body.data.length, 1);
      assert.notEqual(second.body.data[0].id, first.body.data[0].id);
      for (const bad of ['q=', 'q=x&kind=spreadsheet', 'q=x&cursor=!!', 'q=x&collectionId=nope', 'q=x&from=2026-13-01', 'q=x&from=0000-01-01', 'q=x&to=2026-02-30', 'q=x&limit=500']) {
        const res = await search(t, u, bad);
        assert.equal(res.status, 400, bad);
        assert.equal(res.body.code, 'validation_failed');
      }
    });

    test('a Word document and a PDF are indexed from their text; a malformed PDF fails with why', async () => {
      const word = await uploadFile(t, u, 'minutes.docx', docx(['Minutes of the beekeepers meeting.', 'The apiary moves to the orchard in spring.']));
      const file = await t.api('GET', `/v1/files/${word.id}`, { token: u.accessToken });
      assert.equal(file.body.mimeType, 'application/vnd.openxmlformats-officedocument.wordprocessingml.document');
      const added = await t.api('POST', `/v1/knowledge/collections/${collectionId}/items`, { token: u.accessToken, body: { fileId: word.id } });
      await ready(t, u, added.body.id);
      assert.equal((await search(t, u, 'q=apiary+orchard')).body.data[0]?.refId, word.id);

      const broken = await uploadFile(t, u, 'broken.pdf', Buffer.from('%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF'));
      const bad = await t.api('POST', `/v1/knowledge/collections/${collectionId}/items`, { token: u.accessToken, body: { fileId: broken.id } });
      const failed = await ready(t, u, bad.body.id, 'failed');
      assert.ok(['unreadable', 'empty'].includes(failed.error.code), JSON.stringify(failed.error));
    });

    test('a Word file that inflates far beyond its size (a zip bomb) fails its indexing with why; the server goes on', async () => {
      // 200 KB that inflate to 68 MB of paragraphs: reading them takes the reader past its heap (it ran the process out of memory).
      const bomb = await uploadFile(t, u, 'bomb.docx', docxOf('<w:p><w:r><w:t>a</w:t></w:r></w:p>'.repeat(2_000_000), { deflate: true }));
      const added = await t.api('POST', `/v1/knowledge/collections/${collectionId}/items`, { token: u.accessToken, body: { fileId: bomb.id } });
      assert.equal(added.status, 202, added.text);
      // Reading until the heap is full takes a while on a busy machine.
      const failed = await ready(t, u, added.body.id, 'failed', 120_000);
      assert.equal(failed.error.code, 'unreadable', JSON.stringify(failed.error));
      assert.match(failed.error.message, /needs more than \d+ MB/);
      assert.equal((await t.api('GET', '/v1/users/me', { token: u.accessToken })).status, 200, 'the server answers');
    });

    test('a file without text fails its indexing with why; an item is added once per collection; bodies are checked', async () => {
      const image = await uploadFile(t, u, 'pixel.png', PNG);
      const added = await t.api('POST', `/v1/knowledge/collections/${collectionId}/items`, { token: u.accessToken, body: { fileId: image.id } });
      const failed = await ready(t, u, added.body.id, 'failed');
      assert.equal(failed.error.code, 'no_text');
      for (const body of [{}, { fileId: image.id, documentId: image.id }, { fileId: 'nope' }]) {
        const res = await t.api('POST', `/v1/knowledge/collections/${collectionId}/items`, { token: u.accessToken, body });
        assert.equal(res.status, 400, JSON.stringify(body));
      }
      assert.equal((await t.api('POST', '/v1/knowledge/collections', { token: u.accessToken, body: { name: '' } })).status, 400);
      assert.equal((await t.api('POST', '/v1/knowledge/collections', { token: u.accessToken, body: { name: 'x', projectId: crypto.randomUUID() } })).status, 404);
    });

    test('an embedding provider failing mid-way: the attempt fails, nothing half-stored is searchable, the retry completes it', async () => {
      const text = Array.from({ length: 400 }, (_, i) => `Glacier fact ${i}: ice moves slowly downhill under its own weight.`).join(' ');
      const file = await uploadFile(t, u, 'glaciers.txt', Buffer.from(text));
      // The first batch of 64 embeds, the second fails: the attempt fails as a whole.
      openai.script({ reply: '' }, { status: 500 });
      const added = await t.api('POST', `/v1/knowledge/collections/${collectionId}/items`, { token: u.accessToken, body: { fileId: file.id } });
      await eventually(async () => assert.ok(openai.requests.filter((r) => r.path === '/v1/embeddings' && r.body.input.some((s: string) => s.includes('Glacier'))).length >= 2), 10_000);
      const item = await ready(t, u, added.body.id);
      assert.ok(item.chunks > 64);
      const glacierCalls = openai.requests.filter((r) => r.path === '/v1/embeddings' && r.body.input.some((s: string) => s.includes('Glacier')));
      assert.equal(glacierCalls.length, 4, 'a batch, a failed batch, then the retry from the start: two batches');
      // Every stored passage has its embedding: the failed attempt stored nothing.
      const stored = await t.deps.db.execute(sql`select count(*)::int as n, count(*) filter (where embedding is null)::int as missing from knowledge_chunks where item_id = ${added.body.id}`);
      assert.deepEqual((stored as any).rows[0], { n: item.chunks, missing: 0 });
      assert.equal((await search(t, u, 'q=glacier&kind=file')).body.data[0].refId, file.id);
    });

    test("answers are grounded in the project's and the conversation's collections, cite their sources, and say them over SSE", async () => {
      const project = await t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'Naturalist', model: 'openai:gpt-4o-mini' } });
      assert.equal(project.status, 201, project.text);
      const shelf = await t.api('POST', '/v1/knowledge/collections', { token: u.accessToken, body: { name: 'Shelf', projectId: project.body.id } });
      const guide = await uploadFile(t, u, 'otters.md', Buffer.from(GUIDE));
      const item = await t.api('POST', `/v1/knowledge/collections/${shelf.body.id}/items`, { token: u.accessToken, body: { fileId: guide.id } });
      await ready(t, u, item.body.id);

      const conv = await t.api('POST', '/v1/conversations', { token: u.accessToken, body: { projectId: project.body.id } });
      openai.reset();
      openai.script({ reply: 'They hold hands [1].' });
      const res = await fetch(`${t.url}/v1/conversations/${conv.body.id}/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${u.accessToken}`, accept: 'text/event-stream', 'content-type': 'application/json' },
        body: JSON.stringify({ content: 'How do otters sleep?' }),
      });
      const events = await allSse(res);
      assert.deepEqual(events.slice(0, 2).map((e) => e.event), ['message.created', 'citations']);
      const [citation] = events[1]!.data.citations;
      // A small file goes in whole.
      assert.deepEqual({ n: citation.n, kind: citation.kind, refId: citation.refId, chunkId: citation.chunkId, version: citation.version }, { n: 1, kind: 'file', refId: guide.id, chunkId: null, version: null });
      const upstream = openai.requests.find((r) => r.path === '/v1/chat/completions')!;
      const system = upstream.body.messages[0];
      assert.equal(system.role, 'system');
      assert.match(system.content, /cite each one you use by its number in square brackets/);
      assert.match(system.content, /\[1\] otters\.md\n# Field guide[\s\S]*hold hands while sleeping[\s\S]*Tortoises live/);
      const messages = await t.api('GET', `/v1/conversations/${conv.body.id}/messages`, { token: u.accessToken });
      const answer = messages.body.data.find((m: any) => m.role === 'assistant');
      assert.deepEqual(answer.citations, events[1]!.data.citations);

      // A conversation without a project draws on the collections it names; a big file gives its best passages.
      const plain = await t.api('POST', '/v1/conversations', { token: u.accessToken, body: { model: 'openai:gpt-4o-mini' } });
      const attached = await t.api('PUT', `/v1/conversations/${plain.body.id}/collections`, { token: u.accessToken, body: { collectionIds: [collectionId] } });
      assert.deepEqual(attached.body, { collectionIds: [collectionId] });
      openai.reset();
      openai.script({ reply: 'Slowly [1].' });
      const sent = await t.api('POST', `/v1/conversations/${plain.body.id}/messages`, { token: u.accessToken, body: { content: 'How does glacier ice move?' } });
      assert.equal(sent.status, 201, sent.text);
      await t.services.generation.idle();
      const grounded = (await t.api('GET', `/v1/conversations/${plain.body.id}/messages`, { token: u.accessToken })).body.data.find((m: any) => m.role === 'assistant');
      assert.ok(grounded.citations.length > 1);
      assert.ok(grounded.citations.every((c: any) => c.chunkId && c.kind === 'file'), 'passages, not the whole file');
      assert.match(openai.requests.find((r) => r.path === '/v1/chat/completions')!.body.messages[0].content, /Glacier fact/);

      // Without collections there are no sources; others' conversations and collections are 404.
      const bare = await t.api('POST', '/v1/conversations', { token: u.accessToken, body: { model: 'openai:gpt-4o-mini' } });
      openai.reset();
      openai.script({ reply: 'Hello.' });
      await t.api('POST', `/v1/conversations/${bare.body.id}/messages`, { token: u.accessToken, body: { content: 'How do otters sleep?' } });
      await t.services.generation.idle();
      assert.equal(openai.requests.find((r) => r.path === '/v1/chat/completions')!.body.messages[0].role, 'user');
      assert.equal((await t.api('PUT', `/v1/conversations/${bare.body.id}/collections`, { token: stranger.accessToken, body: { collectionIds: [] } })).status, 404);
      const theirs = await t.api('POST', '/v1/knowledge/collections', { token: stranger.accessToken, body: { name: 'Theirs' } });
      assert.equal((await t.api('PUT', `/v1/conversations/${bare.body.id}/collections`, { token: u.accessToken, body: { collectionIds: [theirs.body.id] } })).status, 404);
    });

    test('deleting a file or a document removes its passages from search; deleting a collection removes its items', async () => {
      const file = await uploadFile(t, u, 'moths.md', Buffer.from('# Moths\n\nMoths navigate by the moon.'));
      const added = await t.api('POST', `/v1/knowledge/collections/${collectionId}/items`, { token: u.accessToken, body: { fileId: file.id } });
      await ready(t, u, added.body.id);
      assert.equal((await search(t, u, 'q=moths+moon')).body.data[0]?.refId, file.id);
      assert.equal((await t.api('DELETE', `/v1/files/${file.id}`, { token: u.accessToken })).status, 204);
      await eventually(async () => assert.equal((await t.api('GET', `/v1/knowledge/items/${added.body.id}`, { token: u.accessToken })).status, 404));
      assert.deepEqual((await search(t, u, 'q=moths+moon')).body.data, []);

      const temp = await t.api('POST', '/v1/knowledge/collections', { token: u.accessToken, body: { name: 'Temp' } });
      const note = await uploadFile(t, u, 'newts.md', Buffer.from('Newts regrow their limbs.'));
      const item = await t.api('POST', `/v1/knowledge/collections/${temp.body.id}/items`, { token: u.accessToken, body: { fileId: note.id } });
      await ready(t, u, item.body.id);
      assert.equal((await t.api('DELETE', `/v1/knowledge/collections/${temp.body.id}`, { token: u.accessToken })).status, 204);
      assert.equal((await t.api('GET', `/v1/knowledge/items/${item.body.id}`, { token: u.accessToken })).status, 404);
      assert.deepEqual((await search(t, u, 'q=newts')).body.data, []);
    });
  });
}

describe('knowledge without an embedding model', () => {
  let t: TestApp;
  let u: TestUser;
  before(async () => {
    // This deployment takes HTML pages too (the default allow-list does not: active content).
    t = await startApp({ env: { KNOWLEDGE_CHUNK_TOKENS: '8000', KNOWLEDGE_CHUNK_OVERLAP: '0', FILES_ALLOWED_TYPES: 'text/plain,text/markdown,text/html' } });
    u = await createUser(t);
  });
  after(() => t.close());

  test('search runs on full text alone, and says so', async () => {
    assert.deepEqual((await t.api('GET', '/v1/knowledge/status', { token: u.accessToken })).body, { mode: 'full-text', embeddingModel: null, vectorIndex: 'pgvector' });
    const collection = await t.api('POST', '/v1/knowledge/collections', { token: u.accessToken, body: { name: 'Notes' } });
    const file = await uploadFile(t, u, 'notes.txt', Buffer.from('Lichens are a partnership of fungus and alga.'));
    const added = await t.api('POST', `/v1/knowledge/collections/${collection.body.id}/items`, { token: u.accessToken, body: { fileId: file.id } });
    const item = await ready(t, u, added.body.id);
    assert.equal(item.embeddingModel, null);
    const res = await search(t, u, 'q=lichens');
    assert.equal(res.body.mode, 'full-text');
    assert.equal(res.body.data[0].refId, file.id);
    assert.deepEqual(res.body.data[0].ranks, { fullText: 1, vector: null });
  });

  test('an HTML page is indexed from its text: no markup, no script', async () => {
    const collection = await t.api('POST', '/v1/knowledge/collections', { token: u.accessToken, body: { name: 'Pages' } });
    const html = '<!doctype html><html><head><title>Kelp</title><script>var secretToken = "xyzzy";</script></head><body><h1>Kelp forests</h1><p>Kelp grows <b>half a metre</b> a day.</p></body></html>';
    const file = await uploadFile(t, u, 'kelp.html', Buffer.from(html));
    const added = await t.api('POST', `/v1/knowledge/collections/${collection.body.id}/items`, { token: u.accessToken, body: { fileId: file.id } });
    await ready(t, u, added.body.id);
    const hit = (await search(t, u, 'q=kelp+metre')).body.data[0];
    assert.equal(hit.refId, file.id);
    assert.doesNotMatch(hit.snippet, /&lt;|<b>|<p>/);
    assert.deepEqual((await search(t, u, 'q=xyzzy')).body.data, [], 'script contents are not text');
  });

  test('a huge text file is indexed up to its first 2,000,000 characters, and the item says so', async () => {
    const collection = await t.api('POST', '/v1/knowledge/collections', { token: u.accessToken, body: { name: 'Big' } });
    const lines: string[] = [];
    for (let i = 0, n = 0; n < 2_200_000; i++) {
      const line = `Line ${i} tells of rivers and the sea.`;
      lines.push(line);
      n += line.length + 1;
    }
    lines.push('The final line mentions a zeppelin.');
    const file = await uploadFile(t, u, 'huge.txt', Buffer.from(lines.join('\n')));
    const added = await t.api('POST', `/v1/knowledge/collections/${collection.body.id}/items`, { token: u.accessToken, body: { fileId: file.id } });
    const item = await ready(t, u, added.body.id);
    assert.equal(item.truncated, true);
    assert.ok(item.chunks > 50);
    assert.equal((await search(t, u, 'q=rivers')).body.data[0].refId, file.id);
    assert.deepEqual((await search(t, u, 'q=zeppelin')).body.data, [], 'what lies past the cut is not indexed');
  });
});
