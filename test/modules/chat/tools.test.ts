import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AnyBusEvent } from '../../../src/platform/bus/events.ts';
import { backends } from '../../support/app.ts';
import { observeEvents } from '../../support/bus.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { startMcpServer, warmUp, type TestMcpServer } from '../../support/mcp-server.ts';
import { allSse, readSse, type SseEvent } from '../../support/sse.ts';
import { answerRequests, chatAs, clusterSkip, useChat, waitFor, type ChatFixture } from './generation-fixture.ts';

/** A project with these settings and a conversation in it. */
async function projectConversation(f: ChatFixture, u: TestUser, settings: Record<string, unknown>) {
  const p = await f.t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'Agent', ...settings } });
  assert.equal(p.status, 201, p.text);
  return chatAs(f.t, u).conversation({ title: 'Tools', projectId: p.body.id });
}

const named = (events: SseEvent[], name: string) => events.filter((e) => e.event === name).map((e) => e.data);

for (const backend of backends()) {
  describe(`chat tools [${backend}]`, () => {
    const f = useChat(backend, { MCP_ALLOW_PRIVATE: 'true', MCP_TIMEOUT_MS: '4000', MCP_LIST_TIMEOUT_MS: '8000' });
    let mcp: TestMcpServer;
    before(async () => {
      mcp = await startMcpServer();
      await warmUp(mcp.url);
    });
    after(() => mcp.close());

    test("an MCP server's allowed tools join the turn: called over MCP, a hanging one told to the model as timed out", async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const p = await f.t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'With MCP', tools: ['current_time'] } });
      const server = await f.t.api('POST', `/v1/projects/${p.body.id}/mcp-servers`, {
        token: u.accessToken,
        body: { name: 'calc', url: mcp.url, allowedTools: ['add', 'hang'] },
      });
      assert.equal(server.status, 201, server.text);
      const c = await chat.conversation({ title: 'MCP', projectId: p.body.id });
      f.openai.script(
        {
          toolCalls: [
            { id: 'sum', name: 'calc__add', arguments: '{"a":2,"b":3}' },
            { id: 'stuck', name: 'calc__hang', arguments: '{}' },
          ],
        },
        { reply: 'Five, and the other timed out.' },
      );
      const res = await chat.send(c, { content: 'Add 2 and 3' });
      assert.equal(res.status, 201, res.text);
      const offered = answerRequests(f.openai)[0]!.body.tools.map((t: any) => t.function.name).sort();
      assert.deepEqual(offered, ['calc__add', 'calc__hang', 'current_time'], 'the allow-list keeps echo, stats and fails out');
      const tools = (await chat.branch(c)).data.filter((m: any) => m.role === 'tool').map((m: any) => m.content[0]);
      assert.deepEqual(tools.map((t: any) => [t.callId, t.status]), [['sum', 'ok'], ['stuck', 'error']]);
      assert.equal(tools[0].result, '5');
      assert.equal(tools[1].error.code, 'tool_timeout');
      assert.ok(mcp.calls.some((x) => x.tool === 'add' && JSON.stringify(x.args) === '{"a":2,"b":3}'), 'the MCP server ran the call');

      // GET /v1/tools: what a project may offer, and what it does.
      const listed = await f.t.api('GET', `/v1/tools?projectId=${p.body.id}`, { token: u.accessToken });
      assert.equal(listed.status, 200, listed.text);
      const byName = Object.fromEntries(listed.body.data.map((t: any) => [t.name, t]));
      for (const name of ['current_time', 'fetch_url', 'run_javascript', 'search_knowledge', 'calc__add']) assert.ok(byName[name], `${name} listed`);
      assert.deepEqual(
        listed.body.data.filter((t: any) => t.offered).map((t: any) => t.name).sort(),
        ['calc__add', 'calc__hang', 'current_time'],
      );
      assert.equal(byName.current_time.parameters.type, 'object');
      const stranger = await createUser(f.t);
      assert.equal((await f.t.api('GET', `/v1/tools?projectId=${p.body.id}`, { token: stranger.accessToken })).status, 404);
      const plain = await f.t.api('GET', '/v1/tools', { token: stranger.accessToken });
      assert.ok(!plain.body.data.some((t: any) => t.name.startsWith('calc__')), "another user's project servers are not theirs");
      assert.equal((await f.t.api('GET', '/v1/tools?projectId=nope', { token: u.accessToken })).status, 400);
    });

    test('OpenAI, streaming: parallel calls run, their results go back to the model, every step is stored and streamed', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await projectConversation(f, u, { tools: ['current_time', 'run_javascript'] });
      f.openai.script(
        {
          reply: 'Let me check.',
          toolCalls: [
            { id: 'call_time', name: 'current_time', arguments: '{"timeZone":"Asia/Tokyo"}' },
            { id: 'call_js', name: 'run_javascript', arguments: '{"code":"input.a * input.b","input":{"a":6,"b":7}}' },
          ],
        },
        { reply: 'It is evening in Tokyo and the answer is 42.' },
      );
      const events = await allSse(await chat.sendSse(c, { content: 'Time in Tokyo, and 6 × 7?' }));
      assert.deepEqual(
        events.map((e) => e.event).filter((e, i, all) => e !== all[i - 1]),
        ['message.created', 'delta', 'tool.call', 'tool.result', 'delta', 'message.completed'],
      );
      const calls = named(events, 'tool.call');
      assert.deepEqual(calls.map((x) => [x.id, x.name, x.needsApproval]), [['call_time', 'current_time', false], ['call_js', 'run_javascript', false]]);
      const results = Object.fromEntries(named(events, 'tool.result').map((r) => [r.id, r]));
      assert.equal(results.call_time.status, 'ok');
      assert.equal(JSON.parse(results.call_time.result).timeZone, 'Asia/Tokyo');
      assert.equal(results.call_js.status, 'ok');
      assert.equal(JSON.parse(results.call_js.result).result, 42);
      const final = named(events, 'message.completed')[0].message;
      assert.equal(final.status, 'complete');
      assert.equal(final.content[0].text, 'It is evening in Tokyo and the answer is 42.');

      // What the model saw: the tools offered, then its calls and their results on the second call.
      const [first, second] = answerRequests(f.openai);
      assert.deepEqual(first!.body.tools.map((t: any) => t.function.name).sort(), ['current_time', 'run_javascript']);
      const assistant = second!.body.messages.find((m: any) => m.role === 'assistant');
      assert.deepEqual(assistant.tool_calls.map((x: any) => x.id), ['call_time', 'call_js']);
      const toolMessages = second!.body.messages.filter((m: any) => m.role === 'tool');
      assert.deepEqual(toolMessages.map((m: any) => m.tool_call_id), ['call_time', 'call_js']);
      assert.equal(JSON.parse(toolMessages[1].content).result, 42);

      // Stored: question → the model's calls → one tool message per call → the answer, which is the message the client followed.
      const branch = (await chat.branch(c)).data;
      assert.deepEqual(branch.map((m: any) => m.role), ['user', 'assistant', 'tool', 'tool', 'assistant']);
      assert.equal(branch[4].id, final.id);
      assert.deepEqual(branch[1].content.map((p: any) => p.type), ['text', 'tool_call', 'tool_call']);
      assert.equal(branch[1].finishReason, 'tool-calls', "the AI SDK's finish reason, as every answer stores it");
      assert.ok(branch[1].tokensIn > 0, 'each step keeps its own usage');
      const stored = branch[3].content[0];
      assert.equal(stored.type, 'tool_result');
      assert.equal(stored.callId, 'call_js');
      assert.equal(stored.status, 'ok');
      assert.equal(typeof stored.durationMs, 'number');
      assert.equal(stored.arguments, '{"code":"input.a * input.b","input":{"a":6,"b":7}}');

      // The next turn carries the tool round in its history.
      f.openai.script({ reply: 'You are welcome.' });
      assert.equal((await chat.send(c, { content: 'Thanks' })).status, 201);
      const next = answerRequests(f.openai).at(-1)!;
      assert.deepEqual(next.body.messages.map((m: any) => m.role), ['user', 'assistant', 'tool', 'tool', 'assistant', 'user']);
    });

    test('Anthropic, JSON mode: tool_use blocks run and tool_result blocks go back', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await projectConversation(f, u, { model: 'anthropic:claude-haiku-4-5', tools: ['current_time'] });
      f.anthropic.script({ toolCalls: [{ id: 'toolu_1', name: 'current_time', arguments: '{}' }] }, { reply: 'It is now.' });
      const res = await chat.send(c, { content: 'What time is it?' });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.content[0].text, 'It is now.');
      const [, second] = answerRequests(f.anthropic);
      const blocks = second!.body.messages.flatMap((m: any) => (Array.isArray(m.content) ? m.content : []));
      assert.ok(blocks.some((b: any) => b.type === 'tool_use' && b.id === 'toolu_1' && b.name === 'current_time'));
      const result = blocks.find((b: any) => b.type === 'tool_result');
      assert.equal(result.tool_use_id, 'toolu_1');
      assert.match(JSON.stringify(result.content), /UTC/);
    });

    test('bad calls are answered with an error the model reads, and the turn goes on', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await projectConversation(f, u, { tools: ['current_time'] });
      f.openai.script(
        {
          toolCalls: [
            { id: 'bad_json', name: 'current_time', arguments: '{"timeZone": ' },
            { id: 'bad_type', name: 'current_time', arguments: '{"timeZone": 5}' },
            { id: 'bad_zone', name: 'current_time', arguments: '{"timeZone": "Mars/Olympus"}' },
            { id: 'unknown', name: 'launch_rockets', arguments: '{}' },
          ],
        },
        { reply: 'Sorry, I could not.' },
      );
      const res = await chat.send(c, { content: 'Try hard' });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.content[0].text, 'Sorry, I could not.');
      const tools = (await chat.branch(c)).data.filter((m: any) => m.role === 'tool').map((m: any) => m.content[0]);
      assert.deepEqual(tools.map((t: any) => [t.callId, t.status, t.error?.code]), [
        ['bad_json', 'error', 'invalid_arguments'],
        ['bad_type', 'error', 'invalid_arguments'],
        ['bad_zone', 'error', 'invalid_time_zone'],
        ['unknown', 'error', 'unknown_tool'],
      ]);
      const toolMessages = answerRequests(f.openai)[1]!.body.messages.filter((m: any) => m.role === 'tool');
      assert.equal(toolMessages.length, 4, 'every call is answered');
      assert.match(toolMessages[1].content, /timeZone/);
    });

    test('calls PostgreSQL could not store (a NUL, a lone surrogate) or with the same id twice are kept apart and stored, and the turn completes', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await projectConversation(f, u, { tools: ['current_time'], toolApprovals: ['current_time'] });
      f.openai.script({
        toolCalls: [
          { id: 'd', name: 'current_time', arguments: '{"timeZone":"\\u0000Mars"}' },
          { id: 'd', name: 'current_time', arguments: '{"timeZone":"\\ud800"}' },
          { id: '', name: 'current_time\u0000', arguments: '{}\u0000' },
        ],
      });
      const res = await chat.send(c, { content: 'Odd calls' });
      assert.equal(res.status, 202, res.text);
      const pending = (await chat.branch(c)).data.filter((m: any) => m.role === 'tool').map((m: any) => m.content[0]);
      const ids = pending.map((t: any) => t.callId);
      assert.equal(new Set(ids).size, 3, `each call its own id: ${ids}`);
      assert.equal(ids[0], 'd', 'the first keeps the id the model gave');
      assert.ok(pending.every((t: any) => !t.name.includes('\u0000') && !t.arguments.includes('\u0000')), 'no NUL stored');
      // Each can be decided on its own: the turn goes on once all are.
      f.openai.script({ reply: 'Done.' });
      for (const [i, id] of ids.entries()) {
        const decided = await f.t.api('POST', `/v1/conversations/${c}/messages/${res.body.id}/tool-calls/${encodeURIComponent(id)}/approval`, { token: u.accessToken, body: { approve: i === 0 } });
        assert.ok(decided.status < 300, `${id}: ${decided.status} ${decided.text}`);
      }
      const final = await waitFor(async () => {
        const m = (await chat.branch(c)).data.at(-1);
        assert.equal(m.status, 'complete');
        return m;
      });
      assert.equal(final.content[0].text, 'Done.');
    });

    test('a tool loop that never ends stops at the step limit with finish reason max_steps', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await projectConversation(f, u, { tools: ['current_time'], maxToolSteps: 3 });
      const again = { reply: 'Once more.', toolCalls: [{ name: 'current_time', arguments: '{}' }] };
      f.openai.script(again, again, again, again, again);
      const res = await chat.send(c, { content: 'Loop' });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.status, 'complete');
      assert.equal(res.body.finishReason, 'max_steps');
      assert.equal(answerRequests(f.openai).length, 3);
      const roles = (await chat.branch(c)).data.map((m: any) => m.role);
      assert.deepEqual(roles, ['user', 'assistant', 'tool', 'assistant', 'tool', 'assistant']);
    });

    test('a call that needs approval pauses the turn; deny and approve carry it on; strangers and second decisions are refused', async () => {
      const u = await createUser(f.t);
      const stranger = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await projectConversation(f, u, { tools: ['current_time', 'run_javascript'], toolApprovals: ['run_javascript'] });
      f.openai.script(
        {
          toolCalls: [
            { id: 'free', name: 'current_time', arguments: '{}' },
            { id: 'js1', name: 'run_javascript', arguments: '{"code":"40 + 2"}' },
            { id: 'js2', name: 'run_javascript', arguments: '{"code":"throw new Error(1)"}' },
          ],
        },
        { reply: 'Ran one, skipped one.' },
      );
      const res = await chat.send(c, { content: 'Compute' });
      assert.equal(res.status, 202, res.text);
      const paused = res.body;
      assert.equal(paused.status, 'streaming');
      assert.equal(paused.finishReason, 'awaiting_approval');
      const waiting = (await chat.branch(c)).data.filter((m: any) => m.role === 'tool').map((m: any) => [m.content[0].callId, m.content[0].status]);
      assert.deepEqual(waiting, [['free', 'ok'], ['js1', 'pending_approval'], ['js2', 'pending_approval']]);
      assert.equal(answerRequests(f.openai).length, 1, 'the model waits');

      // The stream shows what waits.
      const ac = new AbortController();
      const follower = readSse(await chat.stream(c, paused.id, { signal: ac.signal }));
      let required: any;
      for await (const e of follower) {
        if (e.event === 'tool.approval_required') {
          required = e.data;
          break;
        }
      }
      ac.abort();
      assert.deepEqual(required.calls.map((x: any) => x.id), ['js1', 'js2']);

      const decide = (callId: string, approve: unknown, who: TestUser = u) =>
        f.t.api('POST', `/v1/conversations/${c}/messages/${paused.id}/tool-calls/${callId}/approval`, { token: who.accessToken, body: { approve } });
      assert.equal((await decide('js1', true, stranger)).status, 404, "another user's approval is not found");
      assert.equal((await decide('nope', true)).status, 404);
      assert.equal((await decide('free', true)).status, 409, 'a call that ran needs no decision');
      assert.equal((await decide('js1', 'yes')).status, 400);

      const first = await decide('js2', false);
      assert.equal(first.status, 200, first.text);
      assert.equal(first.body.finishReason, 'awaiting_approval', 'one call still waits');
      assert.equal((await decide('js2', true)).status, 409, 'a decision stands');
      assert.equal((await decide('js1', true)).status, 200);

      const done = await waitFor(async () => {
        const m = await chat.message(c, paused.id);
        return m.status === 'streaming' ? undefined : m;
      }, 'the turn to finish');
      assert.equal(done.status, 'complete');
      assert.equal(done.content[0].text, 'Ran one, skipped one.');
      const tools = (await chat.branch(c)).data.filter((m: any) => m.role === 'tool').map((m: any) => m.content[0]);
      assert.deepEqual(tools.map((t: any) => [t.callId, t.status]), [['free', 'ok'], ['js1', 'ok'], ['js2', 'denied']]);
      assert.equal(JSON.parse(tools[1].result).result, 42);
      const toolMessages = answerRequests(f.openai)[1]!.body.messages.filter((m: any) => m.role === 'tool');
      assert.match(toolMessages[2].content, /denied/);
      assert.equal((await decide('js1', true)).status, 409, 'nothing waits any more');

      // The whole turn replays from the stream, the pause included.
      const replay = await allSse(await chat.stream(c, paused.id));
      const replayed = named(replay, 'tool.result').map((r) => [r.id, r.status]);
      assert.deepEqual(replayed[0], ['free', 'ok'], 'the call that needed no approval ran before the pause');
      assert.deepEqual(replayed.slice(1).sort(), [['js1', 'ok'], ['js2', 'denied']]);
      assert.equal(named(replay, 'message.completed').length, 1);
    });

    test('cancel: a paused turn stops at once; a turn stopped during a tool call keeps the call as cancelled', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await projectConversation(f, u, { tools: ['run_javascript', 'current_time'], toolApprovals: ['current_time'], sandboxTimeoutMs: 4000 });
      f.openai.script({ toolCalls: [{ id: 'wait', name: 'current_time', arguments: '{}' }] });
      const paused = (await chat.send(c, { content: 'Pause' })).body;
      const started = Date.now();
      const cancelled = await chat.cancel(c, paused.id);
      assert.equal(cancelled.status, 200, cancelled.text);
      assert.equal(cancelled.body.status, 'cancelled');
      assert.ok(Date.now() - started < 4000, 'no wait for an instance that is not there');
      assert.equal((await f.t.api('POST', `/v1/conversations/${c}/messages/${paused.id}/tool-calls/wait/approval`, { token: u.accessToken, body: { approve: true } })).status, 409);

      f.openai.script({ toolCalls: [{ id: 'spin', name: 'run_javascript', arguments: '{"code":"for(;;){}"}' }] }, { reply: 'never' });
      const res = await chat.sendSse(c, { content: 'Spin' });
      const events: SseEvent[] = [];
      let id: string | undefined;
      for await (const e of readSse(res)) {
        events.push(e);
        if (e.event === 'message.created') id = e.data.assistantMessageId;
        if (e.event === 'tool.call') assert.equal((await chat.cancel(c, id!)).status, 200);
      }
      const end = named(events, 'message.completed')[0].message;
      assert.equal(end.status, 'cancelled');
      const spin = (await chat.branch(c)).data.find((m: any) => m.role === 'tool' && m.content[0].callId === 'spin');
      assert.equal(spin.content[0].status, 'cancelled');
      assert.equal(answerRequests(f.openai).filter((r) => JSON.stringify(r.body.messages).includes('Spin')).length, 1, 'the model is not called again');
    });

    test('deleting the conversation of a turn paused for approval ends its stream with conversation_deleted', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await projectConversation(f, u, { tools: ['current_time'], toolApprovals: ['current_time'] });
      f.openai.script({ toolCalls: [{ id: 'wait', name: 'current_time', arguments: '{}' }] });
      const paused = await chat.send(c, { content: 'Pause' });
      assert.equal(paused.status, 202, paused.text);
      const seen = await observeEvents(f.t.deps.bus, ['message.stream.finished']);
      try {
        // The follower reads the pause, then waits on the open stream.
        const follower = readSse(await chat.stream(c, paused.body.id, { signal: AbortSignal.timeout(8_000) }));
        const events: SseEvent[] = [];
        // Read by hand: leaving a for-await loop would close the stream.
        for (let next = await follower.next(); !next.done; next = await follower.next()) {
          events.push(next.value);
          if (next.value.event === 'tool.approval_required') assert.equal((await f.t.api('DELETE', `/v1/conversations/${c}`, { token: u.accessToken })).status, 204);
        }
        const last = events.at(-1)!;
        assert.equal(last.event, 'error', `the stream ends with an error: ${JSON.stringify(events.map((e) => e.event))}`);
        assert.equal(last.data.code, 'conversation_deleted');
        const finished = await waitFor(async () => seen.events.find((e) => e.payload.messageId === paused.body.id) as AnyBusEvent<'message.stream.finished'> | undefined, 'message.stream.finished');
        assert.equal(finished.payload.status, 'cancelled');
        assert.equal(finished.payload.error?.code, 'conversation_deleted');
      } finally {
        await seen.close();
      }
    });

    test('a question under a tool step (its calls, or one of their results) is refused: the model would get calls without their results', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await projectConversation(f, u, { tools: ['current_time'] });
      f.openai.script(
        {
          toolCalls: [
            { id: 'one', name: 'current_time', arguments: '{}' },
            { id: 'two', name: 'current_time', arguments: '{"timeZone":"UTC"}' },
          ],
        },
        { reply: 'Noon.' },
      );
      assert.equal((await chat.send(c, { content: 'When?' })).status, 201);
      const before = (await chat.branch(c)).data;
      assert.deepEqual(before.map((m: any) => m.role), ['user', 'assistant', 'tool', 'tool', 'assistant']);
      const requests = answerRequests(f.openai).length;
      for (const parent of before.slice(1, 4)) {
        const res = await chat.send(c, { content: 'And now?', parentId: parent.id });
        assert.equal(res.status, 400, `under a ${parent.role} message of the step: ${res.text}`);
        assert.equal(res.body.code, 'parent_in_tool_step');
      }
      assert.equal(answerRequests(f.openai).length, requests, 'no model is called');
      assert.deepEqual((await chat.branch(c)).data.map((m: any) => m.id), before.map((m: any) => m.id), 'nothing is stored');

      // Under the answer that ends the step's turn, or beside the question (an edit), it goes on.
      f.openai.script({ reply: 'Still noon.' }, { reply: 'Edited.' });
      assert.equal((await chat.send(c, { content: 'And now?', parentId: before[4].id })).status, 201);
      assert.equal((await chat.send(c, { content: 'When, exactly?', parentId: null })).status, 201);
    });

    test('regenerating a tool answer answers the question again; a conversation without tools offers none', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await projectConversation(f, u, { tools: ['current_time'] });
      f.openai.script({ toolCalls: [{ name: 'current_time', arguments: '{}' }] }, { reply: 'First.' });
      const first = (await chat.send(c, { content: 'When?' })).body;
      f.openai.script({ reply: 'Second.' });
      const again = await chat.regenerate(c, first.id);
      assert.equal(again.status, 201, again.text);
      const branch = (await chat.branch(c)).data;
      assert.deepEqual(branch.map((m: any) => m.role), ['user', 'assistant']);
      assert.equal(branch[1].content[0].text, 'Second.');
      assert.equal(branch[1].siblingIds.length, 2, 'beside the first step of the earlier answer');

      const plain = await chat.conversation();
      f.openai.script({ reply: 'No tools here.' });
      assert.equal((await chat.send(plain, { content: 'Hi' })).status, 201);
      assert.equal(answerRequests(f.openai).at(-1)!.body.tools, undefined);
    });

    test('a turn paused on one instance goes on from the instance that takes the last approval', { skip: clusterSkip(backend) }, async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const other = await f.second();
      const c = await projectConversation(f, u, { tools: ['current_time'], toolApprovals: ['current_time'] });
      f.openai.script({ toolCalls: [{ id: 'x', name: 'current_time', arguments: '{}' }] }, { reply: 'Resumed elsewhere.' });
      const paused = (await chat.send(c, { content: 'Across' })).body;
      const follower = allSse(await chat.stream(c, paused.id));
      const ok = await other.api('POST', `/v1/conversations/${c}/messages/${paused.id}/tool-calls/x/approval`, { token: u.accessToken, body: { approve: true } });
      assert.equal(ok.status, 200, ok.text);
      const events = await follower;
      assert.equal(named(events, 'message.completed')[0].message.content[0].text, 'Resumed elsewhere.');
      assert.deepEqual(named(events, 'tool.result').map((r) => r.status), ['ok']);
    });
  });
}
