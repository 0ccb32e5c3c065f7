import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import type { SearchHit } from '../../../src/modules/chat/search.ts';


for (const backend of backends()) {
  describe(`search [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend });
    });
    after(() => t.close());

    const conversation = async (u: TestUser, title: string | null) => (await t.api('POST', '/v1/conversations', { token: u.accessToken, body: { title } })).body;
    const say = (u: TestUser, conversationId: string, content: string) => t.services.messages.appendUserMessage(u.id, conversationId, { content });
    const answer = async (conversationId: string, parentId: string, text: string) => {
      const p = await t.services.messages.createAssistantPlaceholder(conversationId, { parentId });
      return t.services.messages.completeAssistant(p.id, { text, provider: 'openai', model: 'm', tokensIn: 1, tokensOut: 1, costMicros: 1, latencyMs: 1, ttftMs: 1, finishReason: 'stop' });
    };
    const search = async (u: TestUser, query: string) => {
      const res = await t.api('GET', `/v1/search?${query}`, { token: u.accessToken });
      assert.equal(res.status, 200, res.text);
      return res.body as { data: SearchHit[]; nextCursor: string | null };
    };

    test('finds titles and messages with stemming, best match first, with highlighted snippets', async () => {
      const u = await createUser(t);
      const trip = await conversation(u, 'Planning a trip to Lisbon');
      const q = await say(u, trip.id, 'Which neighbourhoods in Lisbon are best for walking?');
      const a = await answer(trip.id, q.id, 'Alfama and Baixa are great for walking; Lisbon is hilly, so bring good shoes.');
      const other = await conversation(u, 'Sourdough');
      await say(u, other.id, 'My starter smells of nail polish');

      const { data, nextCursor } = await search(u, `q=${encodeURIComponent('walks lisbon')}`);
      assert.equal(nextCursor, null);
      assert.deepEqual(data.map((h) => [h.type, h.messageId]).sort(), [['message', a.id], ['message', q.id]].sort());
      assert.ok(data[0]!.rank >= data[1]!.rank);
      for (const hit of data) {
        assert.equal(hit.conversationId, trip.id);
        assert.equal(hit.title, 'Planning a trip to Lisbon');
        assert.match(hit.snippet, /<mark>Lisbon<\/mark>/);
        assert.match(hit.snippet, /<mark>walking<\/mark>/);
        assert.ok(Date.parse(hit.createdAt));
      }

      const titles = await search(u, 'q=planning');
      assert.deepEqual(titles.data.map((h) => [h.type, h.conversationId, h.messageId]), [['conversation', trip.id, null]]);
      assert.equal(titles.data[0]!.snippet, '<mark>Planning</mark> a trip to Lisbon');
    });

    test('web-search syntax: phrases, or, exclusion', async () => {
      const u = await createUser(t);
      const c = await conversation(u, null);
      const red = await say(u, c.id, 'the red fox jumps');
      const blue = await say(u, c.id, 'a fox that is blue');
      const cat = await say(u, c.id, 'the red cat sleeps');
      const ids = async (q: string) => (await search(u, `q=${encodeURIComponent(q)}`)).data.map((h) => h.messageId).sort();
      assert.deepEqual(await ids('"red fox"'), [red.id]);
      assert.deepEqual(await ids('fox -red'), [blue.id]);
      assert.deepEqual(await ids('blue or cat'), [blue.id, cat.id].sort());
      assert.deepEqual(await ids('the'), [], 'stop words alone match nothing');
      assert.deepEqual(await ids('"unbalanced'), [], 'no syntax errors');
    });

    test('snippets are HTML-escaped; only <mark> is markup', async () => {
      const u = await createUser(t);
      const c = await conversation(u, '<b>bold</b> & title');
      await say(u, c.id, 'try <script>alert("xss")</script> if a<b && c>d then xss');
      const hits = (await search(u, 'q=xss')).data;
      assert.equal(hits.length, 1);
      const snippet = hits[0]!.snippet;
      assert.ok(!snippet.includes('<script'), snippet);
      assert.match(snippet, /&lt;script&gt;/);
      assert.match(snippet, /a&lt;b &amp;&amp; c&gt;d/);
      assert.equal(snippet.replace(/<\/?mark>/g, '').includes('<'), false);
      const title = (await search(u, 'q=bold')).data[0]!;
      assert.equal(title.title, '<b>bold</b> & title', 'title is plain text');
      assert.equal(title.snippet, '&lt;b&gt;<mark>bold</mark>&lt;/b&gt; &amp; title');
    });

    test("never returns another user's rows", async () => {
      const alice = await createUser(t);
      const bob = await createUser(t);
      const c = await conversation(alice, 'Zanzibar secrets');
      await say(alice, c.id, 'my zanzibar passport number');
      assert.equal((await search(alice, 'q=zanzibar')).data.length, 2);
      assert.deepEqual((await search(bob, 'q=zanzibar')).data, []);
    });

    test('pages with a cursor', async () => {
      const u = await createUser(t);
      const c = await conversation(u, null);
      for (let i = 0; i < 5; i++) await say(u, c.id, `kumquat number ${i}`);
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: { data: SearchHit[]; nextCursor: string | null } = await search(u, `q=kumquat&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        seen.push(...page.data.map((h) => h.messageId!));
        cursor = page.nextCursor;
        pages++;
      } while (cursor);
      assert.equal(pages, 3);
      assert.equal(new Set(seen).size, 5);
    });

    test('empty, too long or malformed queries are a 400', async () => {
      const u = await createUser(t);
      for (const query of ['', 'q=', 'q=%20%20', `q=${'a'.repeat(257)}`, 'q=x&limit=0', 'q=x&limit=51', 'q=x&cursor=%%%', `q=x&cursor=${Buffer.from('-1').toString('base64url')}`]) {
        const res = await t.api('GET', `/v1/search?${query}`, { token: u.accessToken });
        assert.equal(res.status, 400, query.slice(0, 40));
        assert.equal(res.body.code, 'validation_failed');
      }
      assert.equal((await t.api('GET', '/v1/search?q=x')).status, 401);
    });
  });
}
