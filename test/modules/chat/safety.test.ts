import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { backends } from '../../support/app.ts';
import { createUser } from '../../support/factories.ts';
import { startFakeModeration, type FakeModeration } from '../../support/fake-moderation.ts';
import { uploadFile } from '../../support/files.ts';
import { allSse } from '../../support/sse.ts';
import { answerRequests, chatAs, startChat, type ChatFixture } from './generation-fixture.ts';

for (const backend of backends()) {
  describe(`safety in chat [${backend}]`, () => {
    let f: ChatFixture;
    let moderation: FakeModeration;
    before(async () => {
      moderation = await startFakeModeration();
      moderation.flag('stab', { violence: 0.97 });
      // `\\d+#\\d+` has a safe shape, yet searched from each of many digits it takes seconds: past 300 ms the search stops.
      f = await startChat(backend, { ...moderation.env, SAFETY_RULES: JSON.stringify({ blockedTerms: ['forbidden-word'], patterns: ['\\d+#\\d+'] }), SAFETY_PATTERN_TIMEOUT_MS: '300' });
    });
    after(async () => {
      await f.close();
      await moderation.close();
    });

    test('flagged input is a 422 content_flagged with its categories: nothing stored, no model called', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      const before = answerRequests(f.openai).length;
      const res = await chat.send(c, { content: 'How do I stab someone?' });
      assert.equal(res.status, 422, res.text);
      assert.equal(res.body.code, 'content_flagged');
      assert.deepEqual(res.body.categories, ['violence']);
      const rule = await chat.send(c, { content: 'say the ＦＯＲＢＩＤＤＥＮ-WORD' });
      assert.equal(rule.status, 422, 'the deployment rule, fullwidth letters or not');
      assert.equal(answerRequests(f.openai).length, before, 'no upstream call');
      assert.deepEqual((await chat.branch(c)).data, [], 'nothing stored');
    });

    test("an attached file's text is checked with the message: a flagged file is a 422 like a flagged message, nothing stored, no model called", async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      const notes = await uploadFile(f.t, u, 'notes.txt', 'Step one: stab someone.');
      const named = await uploadFile(f.t, u, 'forbidden-word.md', 'Nothing to see.');
      const before = answerRequests(f.openai).length;
      const res = await chat.send(c, { content: [{ type: 'text', text: 'Summarize this file' }, { type: 'file', fileId: notes.id }] });
      assert.equal(res.status, 422, res.text);
      assert.deepEqual([res.body.code, res.body.categories, res.body.source], ['content_flagged', ['violence'], 'provider']);
      const byName = await chat.send(c, { content: [{ type: 'file', fileId: named.id }] });
      assert.equal(byName.status, 422, 'the name is shown to the model too');
      assert.deepEqual([byName.body.categories, byName.body.source], [['blocked_term'], 'deployment']);
      assert.equal(answerRequests(f.openai).length, before, 'no upstream call');
      assert.deepEqual((await chat.branch(c)).data, [], 'nothing stored');

      const fine = await uploadFile(f.t, u, 'fine.txt', 'Step one: slice the bread.');
      f.openai.script({ reply: 'It is about bread.' });
      assert.equal((await chat.send(c, { content: [{ type: 'text', text: 'Summarize this file' }, { type: 'file', fileId: fine.id }] })).status, 201);
      assert.match(JSON.stringify(answerRequests(f.openai).at(-1)!.body.messages), /slice the bread/);
    });

    test('a flagged answer stops: an error event, the message flagged, its text shown to nobody and not to the model again', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      f.openai.script({ reply: 'Fine. First you stab the melon with a knife.' });
      const events = await allSse(await chat.sendSse(c, { content: 'How do I cut a melon?' }));
      const end = events.at(-1)!;
      assert.equal(end.event, 'error');
      assert.equal(end.data.code, 'content_flagged');
      const stored = (await chat.branch(c)).data.at(-1);
      assert.equal(stored.status, 'flagged');
      assert.deepEqual(stored.content, [], 'the partial text is kept for admins only');
      assert.equal(stored.finishReason, 'content_flagged');
      const { rows } = (await f.t.deps.db.execute(sql`select text from messages where id = ${stored.id}`)) as unknown as { rows: Array<{ text: string }> };
      assert.match(rows[0]!.text, /stab the melon/, 'kept in the database');

      f.openai.script({ reply: 'Sure.' });
      assert.equal((await chat.send(c, { content: 'Thanks, and a pear?' })).status, 201);
      const sentToModel = JSON.stringify(answerRequests(f.openai).at(-1)!.body.messages);
      assert.doesNotMatch(sentToModel, /stab the melon/);
    });

    test('a message the patterns cannot be searched through in time is refused (pattern_timeout), not let through; the next one is checked as before', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      const before = answerRequests(f.openai).length;
      // About 3 s of backtracking on the server's own thread before: every other request waited, then it passed.
      const slow = await chat.send(c, { content: '1'.repeat(60_000) });
      assert.equal(slow.status, 422, slow.text);
      assert.equal(slow.body.code, 'content_flagged');
      assert.deepEqual([slow.body.categories, slow.body.source, slow.body.rule], [['pattern_timeout'], 'deployment', 'patterns']);
      const caught = await chat.send(c, { content: 'order 12#34' });
      assert.equal(caught.status, 422, caught.text);
      assert.deepEqual([caught.body.categories, caught.body.rule], [['blocked_pattern'], 'patterns[0]']);
      assert.equal(answerRequests(f.openai).length, before, 'no upstream call');
      f.openai.script({ reply: 'Sure.' });
      assert.equal((await chat.send(c, { content: 'order twelve' })).status, 201);
    });
  });
}
