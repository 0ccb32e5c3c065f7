import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eq } from 'drizzle-orm';
import { countMessageTokens } from '../../../src/modules/ai/tokens.ts';
import type { ChatMessage } from '../../../src/modules/ai/types.ts';
import { MESSAGE_MAX_CHARS } from '../../../src/modules/chat/contracts.ts';
import { createMessages } from '../../../src/modules/chat/messages.ts';
import { messages, type ToolResultPart } from '../../../src/modules/chat/schema.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';
import { loopTurns } from '../../support/loop-turns.ts';

const metrics = { provider: 'openai', model: 'gpt-4o-mini', tokensIn: 1, tokensOut: 1, costMicros: null, latencyMs: 1, ttftMs: 1, finishReason: 'stop' };

/** Today's stored count: o200k_base, as the context builder counts the message (message-tokens.ts). */
const stored = (m: ChatMessage) => countMessageTokens('gpt-4o', m);

/** Texts on both sides of the counter's inline limit (4,096 characters), with spaces and without, surrogate pairs across it. */
const samples = ['Hello there', 'a '.repeat(2_048), `${'b'.repeat(4_095)}😀`, 'All work and no play. '.repeat(2_000), 'x'.repeat(30_000)];

/**
 * `chars` characters of made-up words, the same for the same seed: no word repeats often enough for the
 * tokenizer's cache of merged pieces to make counting it cheap.
 */
function words(chars: number, seed: number) {
  let state = seed;
  const next = () => (state = (state * 1_103_515_245 + 12_345) % 2 ** 31);
  let text = '';
  while (text.length < chars) {
    const letters = 2 + (next() % 9);
    for (let i = 0; i < letters; i++) text += String.fromCharCode(97 + (next() % 26));
    text += ' ';
  }
  return text.slice(0, chars);
}

/** The most a question may hold, and an answer several times that (an answer has no such limit). */
const longQuestion = words(MESSAGE_MAX_CHARS, 1);
const longAnswer = `${words(300_000, 2)}${'x'.repeat(100_000)}`;
/**
 * A long text not counted before, for each write whose counting is watched: a counting thread keeps the pieces it
 * merged, so a text counted a second time can come back within one turn of the loop (CI saw it once).
 */
let seed = 10;
const freshText = (chars: number) => words(chars, seed++);

const toolResult = (callId: string): ToolResultPart => ({ type: 'tool_result', callId, name: 'lookup', arguments: '{}', status: 'ok', result: null, error: null, durationMs: 1 });

for (const backend of backends()) {
  describe(`a message's stored tokens [${backend}]`, () => {
    let openai: FakeOpenAI;
    let t: TestApp;
    let u: TestUser;
    before(async () => {
      openai = await startFakeOpenAI();
      // No worker: no queued work (a title) shares the event loop with the counts watched.
      t = await startApp({ backend, worker: false, env: { ...openai.env, DEFAULT_MODEL: 'openai:gpt-4o-mini', AI_RETRIES: '0' } });
      u = await createUser(t);
    });
    after(async () => {
      await t.close();
      await openai.close();
    });

    const conversation = async () => (await t.services.conversations.create(u.id, { title: 'Tokens' })).id;

    /**
     * The messages service over the app's database, watched: `turnsBeforeWrite` runs one of its writes and
     * returns how many turns the event loop took between the call and the first database write it began (an
     * update, or the transaction an insert runs in). The message is counted before it is written, so those are
     * the turns taken while it was counted.
     */
    function watchedMessages() {
      let loop: ReturnType<typeof loopTurns> | undefined;
      let turns: number | undefined;
      const db = new Proxy(t.deps.db, {
        get(target, prop) {
          if (loop && (prop === 'update' || prop === 'transaction')) turns ??= loop.turns;
          return Reflect.get(target, prop);
        },
      });
      const m = createMessages({ db, tokens: t.services.ai.tokens });
      return {
        m,
        async turnsBeforeWrite<T>(write: () => Promise<T>): Promise<{ row: T; turns: number | undefined }> {
          loop = loopTurns();
          turns = undefined;
          try {
            return { row: await write(), turns };
          } finally {
            loop.stop();
            loop = undefined;
          }
        },
      };
    }

    test('a long question, answer or tool result is counted off the event loop: the loop turns before it is written', async () => {
      const { m, turnsBeforeWrite } = watchedMessages();
      const c = await conversation();
      const asked = await turnsBeforeWrite(() => m.appendUserMessage(u.id, c, { content: longQuestion }));
      assert.ok(asked.turns! > 0, `no turn of the event loop while the question of ${longQuestion.length} characters was counted`);
      assert.equal(asked.row.tokens, stored({ role: 'user', content: longQuestion }));

      const finishes = {
        complete: (id: string, text: string) => m.completeAssistant(id, { text, ...metrics }),
        fail: (id: string, text: string) => m.failAssistant(id, text, { code: 'stream_interrupted', message: 'lost' }),
        cancel: (id: string, text: string) => m.cancelAssistant(id, text),
      };
      for (const [how, finish] of Object.entries(finishes)) {
        const longAnswer = freshText(300_000);
        const placeholder = await m.createAssistantPlaceholder(c, { parentId: asked.row.id });
        const answered = await turnsBeforeWrite(() => finish(placeholder.id, longAnswer));
        assert.ok(answered.turns! > 0, `${how}: no turn of the event loop while the answer of ${longAnswer.length} characters was counted`);
        assert.equal(answered.row.tokens, stored({ role: 'assistant', content: longAnswer }), how);
      }

      const final = await m.createAssistantPlaceholder(c, { parentId: asked.row.id });
      const call = { type: 'tool_call' as const, id: 'call_1', name: 'lookup', arguments: '{"q":"jack"}' };
      const result = { ...toolResult('call_1'), result: freshText(300_000) };
      const step = await turnsBeforeWrite(() => m.appendToolStep(c, final.id, { text: '', calls: [call], results: [result], metrics }));
      assert.ok(step.turns! > 0, 'no turn of the event loop while the tool step was counted');
      const toolRow = step.row.find((r) => r.role === 'tool')!;
      assert.equal(toolRow.tokens, stored({ role: 'tool', toolCallId: 'call_1', content: result.result }));

      const replacement = freshText(MESSAGE_MAX_CHARS);
      const replaced = await turnsBeforeWrite(() => m.setToolResult(toolRow.id, { ...result, result: replacement }));
      assert.equal(replaced.row, true);
      assert.ok(replaced.turns! > 0, 'no turn of the event loop while the replaced tool result was counted');
      const [row] = await t.deps.db.select({ tokens: messages.tokens }).from(messages).where(eq(messages.id, toolRow.id));
      assert.equal(row!.tokens, stored({ role: 'tool', toolCallId: 'call_1', content: replacement }));
    });

    test('the stored count is what it always was: o200k_base, as the context builder counts the message', async () => {
      const m = t.services.messages;
      const c = await conversation();
      for (const text of samples) {
        const q = await m.appendUserMessage(u.id, c, { parentId: null, content: [{ type: 'text', text }] });
        assert.equal(q.tokens, stored({ role: 'user', content: text }), `question of ${text.length}`);
        const a = await m.completeAssistant((await m.createAssistantPlaceholder(c, { parentId: q.id })).id, { text, ...metrics });
        assert.equal(a.tokens, stored({ role: 'assistant', content: text }), `answer of ${text.length}`);
        const failed = await m.failAssistant((await m.createAssistantPlaceholder(c, { parentId: q.id })).id, text, { code: 'x', message: 'x' });
        assert.equal(failed.tokens, stored({ role: 'assistant', content: text }), `partial answer of ${text.length}`);
        const flagged = await m.flagAssistant((await m.createAssistantPlaceholder(c, { parentId: q.id })).id, text, { code: 'content_flagged', message: 'x' });
        assert.equal(flagged.tokens, 0, 'a flagged answer is never shown to the model');
        const final = await m.createAssistantPlaceholder(c, { parentId: q.id });
        const call = { type: 'tool_call' as const, id: 'call_2', name: 'lookup', arguments: JSON.stringify({ q: text.slice(0, 100) }) };
        const rows = await m.appendToolStep(c, final.id, { text, calls: [call], results: [{ ...toolResult('call_2'), result: text }], metrics });
        const toolCalls = [{ id: 'call_2', name: 'lookup', arguments: call.arguments }];
        assert.deepEqual(
          rows.map((r) => r.tokens),
          [stored({ role: 'assistant', content: text, toolCalls }), stored({ role: 'tool', toolCallId: 'call_2', content: text })],
          `tool step of ${text.length}`,
        );
      }
      // An empty partial answer takes nothing.
      const q = await m.appendUserMessage(u.id, c, { parentId: null, content: 'Hi' });
      const empty = await m.cancelAssistant((await m.createAssistantPlaceholder(c, { parentId: q.id })).id, '');
      assert.equal(empty.tokens, 0);
    });

    test('a count that fails leaves the tokens to be estimated: the answer, the tool step and its result are stored all the same', async () => {
      const m = createMessages({ db: t.deps.db, tokens: { countMessage: () => Promise.reject(new Error('the counting thread failed')) } });
      const c = await conversation();
      const q = await m.appendUserMessage(u.id, c, { content: 'Hi' });
      const final = await m.createAssistantPlaceholder(c, { parentId: q.id });
      const call = { type: 'tool_call' as const, id: 'call_3', name: 'lookup', arguments: '{}' };
      const rows = await m.appendToolStep(c, final.id, { text: '', calls: [call], results: [{ ...toolResult('call_3'), result: 'found' }], metrics });
      assert.deepEqual(rows.map((r) => r.tokens), [null, null]);
      assert.equal(await m.setToolResult(rows[1]!.id, { ...toolResult('call_3'), result: 'found again' }), true);
      const done = await m.completeAssistant(final.id, { text: longAnswer, ...metrics });
      assert.equal(done.text, longAnswer);
      assert.equal(done.status, 'complete');
      assert.equal(done.tokens, null);
      assert.equal(q.tokens, null);
    });

    test('a question of the most characters a message may hold is counted off the event loop as it is asked', async () => {
      const m = t.services.messages;
      const c = await conversation();
      const first = await m.appendUserMessage(u.id, c, { content: 'Hi' });
      await m.completeAssistant((await m.createAssistantPlaceholder(c, { parentId: first.id })).id, { text: 'Hello.', ...metrics });
      // The turn counts the question for the room it leaves the history (generation.ts start): after it checks the
      // answer's stream is reachable, before it reads the history.
      const { streams } = t.deps;
      const { assertReachable } = streams;
      const { historyFor } = m;
      let loop: ReturnType<typeof loopTurns> | undefined;
      let turns: number | undefined;
      streams.assertReachable = () => {
        loop ??= loopTurns();
        assertReachable.call(streams);
      };
      m.historyFor = (...args) => {
        if (loop) turns ??= loop.turns;
        return historyFor(...args);
      };
      const question = words(MESSAGE_MAX_CHARS, 3);
      try {
        openai.script({ reply: 'Indeed.' });
        const res = await t.api('POST', `/v1/conversations/${c}/messages`, { token: u.accessToken, body: { content: question } });
        assert.equal(res.status, 201, res.text);
      } finally {
        loop?.stop();
        streams.assertReachable = assertReachable;
        m.historyFor = historyFor;
      }
      assert.ok(turns! > 0, `no turn of the event loop while the question of ${question.length} characters was counted`);
      const [row] = await t.deps.db.select({ tokens: messages.tokens }).from(messages).where(eq(messages.text, question));
      assert.equal(row!.tokens, stored({ role: 'user', content: question }));
    });
  });
}
