import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backends } from '../../support/app.ts';
import { createUser } from '../../support/factories.ts';
import { connectAs, subscribe } from '../../support/ws.ts';
import { chatAs, useChat } from '../chat/generation-fixture.ts';

for (const backend of backends()) {
  describe(`realtime: chat events end to end [${backend}]`, () => {
    const f = useChat(backend);

    test('posting a message produces message.created, message.stream.started and message.stream.finished frames', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const conv = await chat.conversation();
      const s = await connectAs(f.t, u.accessToken);
      assert.equal((await subscribe(s, `conversation:${conv}`)).type, 'subscribed');
      f.openai.script({ chunks: ['Hel', 'lo'], usage: { input: 5, output: 2 } });
      const res = await chat.send(conv, { content: 'Hi' });
      assert.equal(res.status, 201, res.text);
      const answer = res.body;

      const created = await s.next((x) => x.event?.type === 'message.created', 10_000);
      const started = await s.next((x) => x.event?.type === 'message.stream.started', 10_000);
      const finished = await s.next((x) => x.event?.type === 'message.stream.finished', 10_000);
      for (const frame of [created, started, finished]) {
        assert.equal(frame.type, 'event');
        assert.equal(frame.topic, `conversation:${conv}`);
        assert.equal(frame.event.payload.userId, u.id);
        assert.equal(frame.event.payload.conversationId, conv);
      }
      assert.equal(created.event.payload.assistantMessageId, answer.id);
      assert.equal(started.event.payload.messageId, answer.id);
      assert.equal(finished.event.payload.messageId, answer.id);
      assert.equal(finished.event.payload.status, 'complete');
      assert.ok(created.event.id < started.event.id && started.event.id < finished.event.id, 'in order (UUIDv7 ids)');
      await s.close();
    });

    test('a tool call waiting for approval is shown on the conversation topic with its calls', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const p = await f.t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'Careful', tools: ['current_time'], toolApprovals: ['current_time'] } });
      const conv = await chat.conversation({ title: 'Approvals', projectId: p.body.id });
      const s = await connectAs(f.t, u.accessToken);
      assert.equal((await subscribe(s, `conversation:${conv}`)).type, 'subscribed');
      f.openai.script({ toolCalls: [{ id: 'ask', name: 'current_time', arguments: '{"timeZone":"UTC"}' }] });
      const res = await chat.send(conv, { content: 'What time is it?' });
      assert.equal(res.status, 202, res.text);
      const frame = await s.next((x) => x.event?.type === 'message.tool.approval_required', 10_000);
      assert.equal(frame.event.payload.messageId, res.body.id);
      assert.deepEqual(frame.event.payload.calls, [{ id: 'ask', name: 'current_time', arguments: '{"timeZone":"UTC"}' }]);
      assert.equal((await chat.cancel(conv, res.body.id)).body.status, 'cancelled');
      await s.close();
    });
  });
}
