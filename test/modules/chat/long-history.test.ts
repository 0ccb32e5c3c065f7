import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { eq, sql } from 'drizzle-orm';
import { buildContext } from '../../../src/modules/ai/context.ts';
import { createTokenCounter } from '../../../src/modules/ai/token-counter.ts';
import { countMessageTokens, countPromptTokens } from '../../../src/modules/ai/tokens.ts';
import type { ChatMessage } from '../../../src/modules/ai/types.ts';
import { messages } from '../../../src/modules/chat/schema.ts';
import { backends } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { answerRequests, chatAs, sent, startChat, type ChatFixture } from './generation-fixture.ts';

/** `openai:tiny`: a 2,000-token window less 200 for the reply; 1,800 tokens of history reach the model. */
const WINDOW = 2000;
const REPLY = 200;
function aiConfig(): string {
  const path = join(mkdtempSync(join(tmpdir(), 'parley-long-history-')), 'ai.json');
  writeFileSync(path, JSON.stringify({ defaultModel: 'openai:tiny', models: [{ id: 'openai:tiny', contextWindow: WINDOW, maxOutputTokens: REPLY }] }));
  return path;
}

/** A text of about `n` tokens (o200k_base: " a" is one token), led by a marker to find it by. */
const text = (marker: string, n: number) => `${marker}${' a'.repeat(n - 1)}`;

/** What today's context builder keeps of a whole history: what the upstream must receive, whatever is read. */
const counter = createTokenCounter({ threads: 1, timeoutMs: 60_000 });
after(() => counter.close());
const expected = async (history: ChatMessage[]) =>
  (await buildContext({ model: { model: 'tiny', contextWindow: WINDOW }, history, replyBudget: REPLY, tokens: counter })).map((m) => ({ role: m.role, content: m.content }));

const lastRequest = (f: ChatFixture) => sent(answerRequests(f.openai).at(-1)!);

for (const backend of backends()) {
  describe(`chat: a turn reads only what fits the window [${backend}]`, () => {
    let f: ChatFixture;
    let u: TestUser;
    before(async () => {
      f = await startChat(backend, { PARLEY_AI_CONFIG: aiConfig(), DEFAULT_MODEL: 'openai:tiny' });
      u = await createUser(f.t);
    });
    after(() => f.close());
    beforeEach(() => f.openai.reset());

    /** A conversation of `turns` question/answer pairs of `size` tokens each, written through the real write path. */
    async function grown(turns: number, size = 100) {
      const m = f.t.services.messages;
      const c = await chatAs(f.t, u).conversation();
      const history: ChatMessage[] = [];
      const rows = [];
      for (let i = 0; i < turns; i++) {
        const q = await m.appendUserMessage(u.id, c, { content: text(`q${i}`, size) });
        const a = await m.createAssistantPlaceholder(c, { parentId: q.id });
        const done = await m.completeAssistant(a.id, { text: text(`a${i}`, size), provider: 'openai', model: 'tiny', tokensIn: 1, tokensOut: 1, costMicros: null, latencyMs: 1, ttftMs: 1, finishReason: 'stop' });
        history.push({ role: 'user', content: q.text }, { role: 'assistant', content: done.text });
        rows.push(q, done);
      }
      return { c, history, rows };
    }

    test('tokens are counted once, when a message is written', async () => {
      const { rows } = await grown(2, 40);
      for (const row of rows) assert.equal(row.tokens, countMessageTokens('gpt-4o-mini', { role: row.role as 'user', content: row.text }));
      assert.ok(rows[0]!.tokens! > 40);
    });

    test('a long conversation: the upstream gets exactly what fits, and the turn never reads the oldest messages', async () => {
      const chat = chatAs(f.t, u);
      const { c, history, rows } = await grown(40);
      // The first message made unreadable: a turn that reached it would fail rendering it.
      await f.t.deps.db.update(messages).set({ content: sql`'{"corrupt": true}'::jsonb` }).where(eq(messages.id, rows[0]!.id));

      const asked = text('latest', 20);
      const res = await chat.send(c, { content: asked });
      assert.equal(res.status, 201, res.text);
      const got = lastRequest(f);
      assert.deepEqual(got, await expected([...history, { role: 'user', content: asked }]));
      assert.ok(got.length < 40 && got.length > 4, `${got.length} messages sent`);

      // What a turn reads: the window's worth and the turn it cuts (two messages at most), of 81.
      const read = await f.t.services.messages.historyFor(c, res.body.parentId, { tokens: WINDOW - REPLY });
      assert.ok(read.length <= got.length + 2, `read ${read.length} for ${got.length} sent`);
      assert.equal(read.at(-1)!.id, res.body.parentId);
      const whole = await f.t.services.messages.historyFor(c, res.body.parentId);
      assert.equal(whole.length, 81);

      // Regenerating the answer and editing the question read the same way.
      const again = await chat.regenerate(c, res.body.id);
      assert.equal(again.status, 201, again.text);
      assert.deepEqual(lastRequest(f), got);
      const edited = text('edited', 30);
      const edit = await chat.send(c, { content: edited, parentId: rows.at(-1)!.id });
      assert.equal(edit.status, 201, edit.text);
      assert.deepEqual(lastRequest(f), await expected([...history, { role: 'user', content: edited }]));
      // The control: a turn whose window reaches the corrupt message (an edit early on, its branch short) does read it, and fails.
      const early = await chat.send(c, { content: 'early edit', parentId: rows[3]!.id });
      assert.equal(early.status, 500, early.text);
    });

    test('the messages listing pages back from the leaf: every message once, in order', async () => {
      const { c, rows } = await grown(20, 10);
      const list = (query: string) => f.t.api('GET', `/v1/conversations/${c}/messages${query}`, { token: u.accessToken });
      const whole = await list('');
      assert.equal(whole.status, 200, whole.text);
      assert.equal(whole.body.nextCursor, undefined);
      assert.deepEqual(whole.body.data.map((m: { id: string }) => m.id), rows.map((r) => r.id));
      const pages: string[][] = [];
      let cursor: string | null = '';
      while (cursor !== null) {
        const page = await list(`?limit=15${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(page.status, 200, page.text);
        assert.equal(page.body.leafId, rows.at(-1)!.id);
        pages.push(page.body.data.map((m: { id: string }) => m.id));
        cursor = page.body.nextCursor;
      }
      assert.deepEqual(pages.map((p) => p.length), [15, 15, 10]);
      assert.deepEqual(pages.reverse().flat(), rows.map((r) => r.id));
      const other = await grown(1, 10);
      // A message of another conversation, or none at all, is a cursor this list never gave: 400, as on every list.
      for (const cursor of [other.rows[0]!.id, '00000000-0000-7000-8000-000000000000']) {
        const res = await list(`?limit=5&cursor=${cursor}`);
        assert.deepEqual([res.status, res.body.code, res.body.errors?.[0]?.path], [400, 'validation_failed', 'cursor'], res.text);
      }
      assert.equal((await list('?limit=0')).status, 400);
    });

    test('a tool round cut by the window is left out whole: no tool result without its call', async () => {
      const m = f.t.services.messages;
      const chat = chatAs(f.t, u);
      const { c, history } = await grown(3, 100);
      // A turn whose tool result alone nearly fills the window, then three short turns.
      const q = await m.appendUserMessage(u.id, c, { content: 'look it up' });
      const a = await m.createAssistantPlaceholder(c, { parentId: q.id });
      const call = { type: 'tool_call' as const, id: 'call_1', name: 'lookup', arguments: '{}' };
      const result = text('result', 1760);
      const metrics = { provider: 'openai', model: 'tiny', tokensIn: 1, tokensOut: 1, costMicros: null, latencyMs: 1, ttftMs: 1, finishReason: 'tool_calls' };
      const [stepRow, toolRow] = await m.appendToolStep(c, a.id, {
        text: '',
        calls: [call],
        results: [{ type: 'tool_result', callId: 'call_1', name: 'lookup', arguments: '{}', status: 'ok', result, error: null, durationMs: 1 }],
        metrics,
      });
      assert.equal(toolRow!.tokens, countMessageTokens('gpt-4o-mini', { role: 'tool', toolCallId: 'call_1', content: result }));
      assert.equal(stepRow!.tokens, countMessageTokens('gpt-4o-mini', { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'lookup', arguments: '{}' }] }));
      await m.completeAssistant(a.id, { ...metrics, text: 'found it', finishReason: 'stop' });
      history.push(
        { role: 'user', content: 'look it up' },
        { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'lookup', arguments: '{}' }] },
        { role: 'tool', toolCallId: 'call_1', content: result },
        { role: 'assistant', content: 'found it' },
      );
      let leaf = a.id;
      for (let i = 0; i < 3; i++) {
        const qi = await m.appendUserMessage(u.id, c, { content: `short ${i}`, parentId: leaf });
        const ai = await m.createAssistantPlaceholder(c, { parentId: qi.id });
        await m.completeAssistant(ai.id, { ...metrics, text: `ok ${i}`, finishReason: 'stop' });
        history.push({ role: 'user', content: `short ${i}` }, { role: 'assistant', content: `ok ${i}` });
        leaf = ai.id;
      }
      const res = await chat.send(c, { content: 'and now?' });
      assert.equal(res.status, 201, res.text);
      const got = lastRequest(f);
      assert.deepEqual(got, await expected([...history, { role: 'user', content: 'and now?' }]));
      assert.ok(!got.some((x: { role: string }) => x.role === 'tool'), 'the cut tool round is not sent');
      assert.equal(got[0].content, 'short 0');
    });

    test("a turn's tool rounds are fitted to the window step by step: older turns leave, the turn's own calls and results stay", async () => {
      const m = f.t.services.messages;
      const project = await f.t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'Clock', tools: ['current_time'], maxToolSteps: 10 } });
      assert.equal(project.status, 201, project.text);
      const c = await chatAs(f.t, u).conversation({ title: 'Clock', projectId: project.body.id });
      // An old turn of about 1,610 tokens: the new turn starts with under 200 tokens of room.
      const q = await m.appendUserMessage(u.id, c, { content: text('oldq', 800) });
      const a = await m.createAssistantPlaceholder(c, { parentId: q.id });
      await m.completeAssistant(a.id, { text: text('olda', 800), provider: 'openai', model: 'tiny', tokensIn: 1, tokensOut: 1, costMicros: null, latencyMs: 1, ttftMs: 1, finishReason: 'stop' });
      const ask = { toolCalls: [{ name: 'current_time', arguments: '{"timeZone":"Europe/Paris"}' }] };
      f.openai.script(ask, ask, ask, ask, ask, ask, { reply: 'Half past.' });

      const res = await chatAs(f.t, u).send(c, { content: 'What time is it, six times over?' });
      assert.equal(res.status, 201, res.text);
      const requests: ChatMessage[][] = answerRequests(f.openai).map((r) =>
        r.body.messages.map((x: any): ChatMessage => ({
          role: x.role,
          content: typeof x.content === 'string' ? x.content : '',
          ...(x.tool_calls ? { toolCalls: x.tool_calls.map((call: any) => ({ id: call.id, name: call.function.name, arguments: call.function.arguments })) } : {}),
          ...(x.tool_call_id ? { toolCallId: x.tool_call_id } : {}),
        })),
      );
      assert.equal(requests.length, 7);
      for (const [i, sentNow] of requests.entries()) {
        const prompt = countPromptTokens('tiny', sentNow);
        assert.ok(prompt <= WINDOW - REPLY, `step ${i + 1}: a prompt of ${prompt} tokens leaves the reply less than ${REPLY}`);
      }
      const hasOld = (sentNow: ChatMessage[]) => sentNow.some((x) => x.content.startsWith('oldq'));
      assert.ok(hasOld(requests[0]!), 'the old turn is sent while it fits');
      const last = requests.at(-1)!;
      assert.ok(!hasOld(last), 'the old turn leaves once the tool rounds need its room');
      assert.equal(last[0]!.content, 'What time is it, six times over?');
      assert.deepEqual(last.map((x) => x.role), ['user', ...Array(6).fill(['assistant', 'tool']).flat()]);
    });

    test('a turn whose stored count overstates it is cut before its tool result: the result is never sent without its call', async () => {
      const m = f.t.services.messages;
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      const q = await m.appendUserMessage(u.id, c, { content: 'first question' });
      const a = await m.createAssistantPlaceholder(c, { parentId: q.id });
      const metrics = { provider: 'openai', model: 'tiny', tokensIn: 1, tokensOut: 1, costMicros: null, latencyMs: 1, ttftMs: 1, finishReason: 'tool_calls' };
      // Few tokens (a run of spaces), but 8,000 bytes: estimated at 2,000 tokens, past the window, by a row stored before counts were.
      const result = `${' '.repeat(8000)}RESULT`;
      const [, toolRow] = await m.appendToolStep(c, a.id, {
        text: '',
        calls: [{ type: 'tool_call', id: 'c1', name: 'lookup', arguments: '{}' }],
        results: [{ type: 'tool_result', callId: 'c1', name: 'lookup', arguments: '{}', status: 'ok', result, error: null, durationMs: 1 }],
        metrics,
      });
      await m.completeAssistant(a.id, { ...metrics, text: 'found it', finishReason: 'stop' });
      await f.t.deps.db.update(messages).set({ tokens: null }).where(eq(messages.id, toolRow!.id));

      const res = await chat.send(c, { content: 'second question' });
      assert.equal(res.status, 201, res.text);
      const body = answerRequests(f.openai).at(-1)!.body;
      for (const [i, x] of body.messages.entries()) {
        if (x.role !== 'tool') continue;
        const calls = body.messages.slice(0, i).flatMap((y: { tool_calls?: Array<{ id: string }> }) => y.tool_calls ?? []);
        assert.ok(calls.some((call: { id: string }) => call.id === x.tool_call_id), `tool result ${x.tool_call_id} is sent after its call`);
      }
      assert.equal(body.messages[0].role, 'user', 'what is sent starts with a question');
      assert.equal(body.messages.at(-1).content, 'second question');
    });
  });
}
