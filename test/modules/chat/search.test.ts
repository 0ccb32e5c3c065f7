import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { RANKED_MATCHES, type SearchHit } from '../../../src/modules/chat/search.ts';


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

    /** `count` messages of `text` in one statement, written `minutesAgo` minutes ago and one minute apart (all at once without `apart`). */
    const seed = (u: TestUser, conversationId: string, count: number, text: string, minutesAgo: number, apart = true) =>
      t.deps.db.execute(sql`
        insert into messages (id, conversation_id, user_id, role, content, text, created_at)
        select gen_random_uuid(), ${conversationId}, ${u.id}, 'user', '[]'::jsonb, ${text},
               now() - make_interval(mins => ${minutesAgo}) + make_interval(mins => case when ${apart} then g else 0 end)
        from generate_series(1, ${count}) g`);
    const allPages = async (u: TestUser, q: string, limit: number) => {
      const hits: SearchHit[] = [];
      let cursor: string | null = null;
      do {
        const page: { data: SearchHit[]; nextCursor: string | null } = await search(u, `q=${encodeURIComponent(q)}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
        assert.ok(page.data.length <= limit);
        hits.push(...page.data);
        cursor = page.nextCursor;
      } while (cursor);
      return hits;
    };
    const inOrder = (hits: SearchHit[]) =>
      hits.every((h, i) => i === 0 || (() => {
        const p = hits[i - 1]!;
        const [pid, id] = [p.messageId ?? p.conversationId, h.messageId ?? h.conversationId];
        return p.rank > h.rank || (p.rank === h.rank && (p.createdAt > h.createdAt || (p.createdAt === h.createdAt && pid > id)));
      })());

    test('pages follow the order exactly: ties in rank and time go by id, nothing repeats or goes missing, new messages do not shift them', async () => {
      const u = await createUser(t);
      const c = await conversation(u, 'Quince jelly');
      // Seven messages alike in rank and to the microsecond in time; two ranking higher and lower.
      await seed(u, c.id, 7, 'quince jelly sets overnight', 30, false);
      await say(u, c.id, 'quince quince quince jelly');
      await say(u, c.id, 'a long note on marmalade, sugar, pectin, lemons and, once, quince');
      const whole = (await search(u, 'q=quince&limit=50')).data;
      assert.equal(whole.length, 10, 'nine messages and the title');
      assert.ok(inOrder(whole), JSON.stringify(whole.map((h) => [h.rank, h.createdAt, h.messageId])));

      const paged = await allPages(u, 'quince', 3);
      assert.deepEqual(paged.map((h) => h.messageId ?? h.conversationId), whole.map((h) => h.messageId ?? h.conversationId));

      // A page after a new message that ranks above the cursor: the next page goes on where the last one stopped.
      const first = await search(u, 'q=quince&limit=4');
      await say(u, c.id, 'quince quince quince quince quince');
      const next = await search(u, `q=quince&limit=50&cursor=${first.nextCursor}`);
      assert.deepEqual(next.data.map((h) => h.messageId ?? h.conversationId), whole.slice(4).map((h) => h.messageId ?? h.conversationId));
    });

    test(`ranks the newest ${RANKED_MATCHES} matching messages of the user, whatever other users hold`, async () => {
      const u = await createUser(t);
      const other = await createUser(t);
      const mine = await conversation(u, null);
      const theirs = await conversation(other, null);
      // The five oldest of the user's matches rank highest, and are the ones left out.
      await seed(u, mine.id, 5, 'persimmon persimmon persimmon persimmon', 10_000);
      await seed(u, mine.id, RANKED_MATCHES, 'a persimmon in the fruit bowl', 5_000);
      // Another user's matches, newer than all of them: they take none of this user's places.
      await seed(other, theirs.id, RANKED_MATCHES + 5, 'persimmon', 100);

      const hits = await allPages(u, 'persimmon', 50);
      assert.equal(hits.length, RANKED_MATCHES);
      assert.ok(hits.every((h) => h.conversationId === mine.id && h.type === 'message'));
      assert.ok(hits.every((h) => !h.snippet.includes('persimmon</mark> <mark>persimmon')), 'the oldest five are left out');
      assert.equal(new Set(hits.map((h) => h.messageId)).size, RANKED_MATCHES);
      assert.ok(inOrder(hits));
      const theirHits = await allPages(other, 'persimmon', 50);
      assert.equal(theirHits.length, RANKED_MATCHES);
      assert.ok(theirHits.every((h) => h.conversationId === theirs.id));
    });

    test('empty, too long or malformed queries are a 400', async () => {
      const u = await createUser(t);
      const cursor = (text: string) => `q=x&cursor=${Buffer.from(text).toString('base64url')}`;
      const bad = ['', 'q=', 'q=%20%20', `q=${'a'.repeat(257)}`, 'q=x&limit=0', 'q=x&limit=51', 'q=x&cursor=%%%', cursor('-1'), cursor('20')];
      // A position the list never gave: an unknown time or id, a rank that is no number.
      const id = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
      for (const position of [`0.06 2026-02-30T10:00:00.000000Z ${id}`, `0.06 2026-01-01T24:00:00.000000Z ${id}`, '0.06 2026-01-01T10:00:00.000000Z nope', `NaN 2026-01-01T10:00:00.000000Z ${id}`, `1e99 2026-01-01T10:00:00.000000Z ${id}`, `1e-99 2026-01-01T10:00:00.000000Z ${id}`, `0.06 0000-01-01T10:00:00.000000Z ${id}`]) bad.push(cursor(position));
      for (const query of bad) {
        const res = await t.api('GET', `/v1/search?${query}`, { token: u.accessToken });
        assert.equal(res.status, 400, query.slice(0, 40));
        assert.equal(res.body.code, 'validation_failed');
      }
      assert.equal((await t.api('GET', '/v1/search?q=x')).status, 401);
    });
  });
}
