import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AnyBusEvent, EventType } from '../../../src/platform/bus/events.ts';
import { backends } from '../../support/app.ts';
import { observeEvents } from '../../support/bus.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser } from '../../support/factories.ts';
import { chatAs, useChat } from './generation-fixture.ts';

const TYPES = ['message.created', 'message.stream.started', 'message.stream.finished'] as const satisfies EventType[];

for (const backend of backends()) {
  describe(`chat events on the bus [${backend}]`, () => {
    const f = useChat(backend);

    const observe = () => observeEvents(f.t.deps.bus, TYPES);

    test('an answer announces its creation, its first tokens and how it finished, with usage', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      const seen = await observe();
      try {
        f.openai.script({ reply: 'Lisbon.', usage: { input: 9, output: 3 } });
        const res = await chat.send(c, { content: 'Where?' });
        assert.equal(res.status, 201, res.text);
        await eventually(() => assert.equal(seen.events.filter((e) => e.payload.conversationId === c).length, 3));
        const mine = seen.events.filter((e) => e.payload.conversationId === c);
        assert.deepEqual(mine.map((e) => e.type), [...TYPES]);
        const [created, started, finished] = mine as [AnyBusEvent<'message.created'>, AnyBusEvent<'message.stream.started'>, AnyBusEvent<'message.stream.finished'>];
        assert.equal(created.payload.userId, u.id);
        assert.equal(created.payload.assistantMessageId, res.body.id);
        assert.equal(created.payload.userMessageId, res.body.parentId);
        assert.deepEqual([started.payload.messageId, started.payload.provider, started.payload.model], [res.body.id, 'openai', 'gpt-4o-mini']);
        assert.equal(finished.payload.status, 'complete');
        assert.deepEqual(finished.payload.usage, { inputTokens: 9, outputTokens: 3, cachedTokens: res.body.cachedTokens, costMicros: res.body.costMicros });
        assert.equal(finished.payload.error, null);
        assert.equal(JSON.stringify(mine).includes('Lisbon.'), false, 'events carry no message text');
      } finally {
        await seen.close();
      }
    });

    test('a failed answer announces the failure with its error code', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      const seen = await observe();
      try {
        f.openai.script({ status: 400 });
        const res = await chat.send(c, { content: 'Fail' });
        assert.equal(res.status, 502, res.text);
        const finished = await eventually(() => {
          const e = seen.events.find((x) => x.type === 'message.stream.finished' && x.payload.conversationId === c) as AnyBusEvent<'message.stream.finished'> | undefined;
          assert.ok(e);
          return e;
        });
        assert.equal(finished.payload.status, 'failed');
        assert.equal(finished.payload.error?.code, res.body.code);
        assert.equal(seen.events.some((x) => x.type === 'message.stream.started' && x.payload.conversationId === c), false, 'no token ever came');
      } finally {
        await seen.close();
      }
    });
  });
}
