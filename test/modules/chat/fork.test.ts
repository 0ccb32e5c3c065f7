import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backends } from '../../support/app.ts';
import { createUser } from '../../support/factories.ts';
import { answerRequests, chatAs, heldAnswer, useChat } from './generation-fixture.ts';

const textOf = (m: { content: Array<{ type: string; text?: string }> }) => m.content.map((p) => p.text ?? '').join('');

for (const backend of backends()) {
  describe(`forking a conversation [${backend}]`, () => {
    const f = useChat(backend);

    test("a fork copies the branch up to a message, with the project, model and collections; it goes on on its own, the original unchanged", async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const project = await f.t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'Travel' } });
      const c = await chat.conversation({ title: 'Trip', projectId: project.body.id, model: 'openai:gpt-4o' });
      const collection = await f.t.api('POST', '/v1/knowledge/collections', { token: u.accessToken, body: { name: 'Guides' } });
      assert.equal((await f.t.api('PUT', `/v1/conversations/${c}/collections`, { token: u.accessToken, body: { collectionIds: [collection.body.id] } })).status, 200);
      f.openai.script({ reply: 'Lisbon is sunny.' }, { reply: 'Take the tram.' });
      const first = await chat.send(c, { content: 'Where to go?' });
      assert.equal(first.status, 201, first.text);
      const second = await chat.send(c, { content: 'How to get around?' });
      assert.equal(second.status, 201, second.text);
      const original = (await chat.branch(c)).data;
      assert.equal(original.length, 4);

      // Up to the first answer, under another title.
      const fork = await f.t.api('POST', `/v1/conversations/${c}/fork`, { token: u.accessToken, body: { messageId: first.body.id, title: 'Trip, take two' } });
      assert.equal(fork.status, 201, fork.text);
      assert.notEqual(fork.body.id, c);
      assert.deepEqual([fork.body.title, fork.body.projectId, fork.body.model], ['Trip, take two', project.body.id, 'openai:gpt-4o']);
      const copied = (await chat.branch(fork.body.id)).data;
      assert.deepEqual(copied.map(textOf), ['Where to go?', 'Lisbon is sunny.']);
      assert.deepEqual(copied.map((m: any) => [m.role, m.status, m.model, m.usage?.outputTokens]), original.slice(0, 2).map((m: any) => [m.role, m.status, m.model, m.usage?.outputTokens]));
      assert.ok(copied.every((m: any, i: number) => m.id !== original[i].id), 'the copies have ids of their own');
      assert.equal(copied[0].parentId, null);
      assert.equal(copied[1].parentId, copied[0].id);
      assert.equal(fork.body.currentLeafId, copied[1].id);
      assert.deepEqual(copied.map((m: any) => m.siblingIds), [[copied[0].id], [copied[1].id]], "the original's other branches are not copied");
      const collections = await f.t.api('GET', `/v1/conversations/${fork.body.id}/collections`, { token: u.accessToken });
      assert.deepEqual(collections.body.collectionIds, [collection.body.id]);

      // The fork goes on from its copy: the model sees the copied history and the new question, not the original's second turn.
      f.openai.script({ reply: 'Rent a bike.' });
      const next = await chat.send(fork.body.id, { content: 'And by bike?' });
      assert.equal(next.status, 201, next.text);
      const sent = answerRequests(f.openai).at(-1)!.body.messages.filter((m: any) => m.role !== 'system').map((m: any) => m.content);
      assert.deepEqual(sent, ['Where to go?', 'Lisbon is sunny.', 'And by bike?']);
      assert.equal(next.body.model, 'gpt-4o');
      assert.deepEqual((await chat.branch(c)).data.map((m: any) => m.id), original.map((m: any) => m.id), 'the original is unchanged');

      // Without a message: the current branch, whole, and the original's title.
      const whole = await f.t.api('POST', `/v1/conversations/${c}/fork`, { token: u.accessToken });
      assert.equal(whole.status, 201, whole.text);
      assert.equal(whole.body.title, 'Trip');
      assert.deepEqual((await chat.branch(whole.body.id)).data.map(textOf), original.map(textOf));
      const listed = await f.t.api('GET', '/v1/conversations', { token: u.accessToken });
      assert.deepEqual(listed.body.data.map((x: any) => x.id).sort(), [c, fork.body.id, whole.body.id].sort());

      // An empty conversation forks into an empty one.
      const empty = await chat.conversation({ title: 'Nothing yet' });
      const emptyFork = await f.t.api('POST', `/v1/conversations/${empty}/fork`, { token: u.accessToken, body: {} });
      assert.equal(emptyFork.status, 201, emptyFork.text);
      assert.equal(emptyFork.body.currentLeafId, null);
      assert.deepEqual((await chat.branch(emptyFork.body.id)).data, []);
    });

    test("refused: another user's conversation or a message not in it (404), an answer still being written (409), a tool step (400)", async () => {
      const [u, stranger] = [await createUser(f.t), await createUser(f.t)];
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      f.openai.script({ reply: 'Hello.' });
      const answered = await chat.send(c, { content: 'Hi' });
      const fork = (id: string, body: unknown, who = u) => f.t.api('POST', `/v1/conversations/${id}/fork`, { token: who.accessToken, body });

      const foreign = await fork(c, {}, stranger);
      assert.deepEqual([foreign.status, foreign.body.code], [404, 'conversation_not_found']);
      const other = await chat.conversation();
      const notHere = await fork(other, { messageId: answered.body.id });
      assert.deepEqual([notHere.status, notHere.body.code], [404, 'message_not_found']);
      const bad = await fork(c, { messageId: 'nope', extra: 1 });
      assert.equal(bad.status, 400, bad.text);

      // An answer still streaming, named or as the current leaf.
      const held = await heldAnswer(f, chat, c);
      for (const body of [{}, { messageId: held.assistantMessageId }]) {
        const busy = await fork(c, body);
        assert.deepEqual([busy.status, busy.body.code], [409, 'answer_in_progress'], JSON.stringify(body));
      }
      await held.stop();
      assert.equal((await fork(c, {})).status, 201, 'once it ended, it forks');

      // A tool step: the model's calls, then their results; the answer that ends the turn forks.
      const project = await f.t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'Clock', tools: ['current_time'] } });
      const withTools = await chat.conversation({ title: 'Time', projectId: project.body.id });
      f.openai.script({ toolCalls: [{ name: 'current_time', arguments: '{}' }] }, { reply: 'It is noon.' });
      const turn = await chat.send(withTools, { content: 'What time is it?' });
      assert.equal(turn.status, 201, turn.text);
      const steps = (await chat.branch(withTools)).data;
      assert.deepEqual(steps.map((m: any) => m.role), ['user', 'assistant', 'tool', 'assistant']);
      for (const step of [steps[1], steps[2]]) {
        const refused = await fork(withTools, { messageId: step.id });
        assert.deepEqual([refused.status, refused.body.code], [400, 'fork_in_tool_step'], step.role);
      }
      const ok = await fork(withTools, {});
      assert.equal(ok.status, 201, ok.text);
      const copied = (await chat.branch(ok.body.id)).data;
      assert.deepEqual(copied.map((m: any) => m.content.map((p: any) => p.type)), steps.map((m: any) => m.content.map((p: any) => p.type)));
    });
  });
}
