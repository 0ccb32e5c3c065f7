import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eq, inArray } from 'drizzle-orm';
import OpenAI from 'openai';
import { usageEvents } from '../../../src/modules/usage/schema.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
// After the app: imported first, this schema's import of the users module comes back round to the ai module before its table exists.
import { aiResponses } from '../../../src/modules/ai/schema.ts';
import type { FakeAnthropic } from '../../support/fake-anthropic.ts';
import type { FakeOpenAI } from '../../support/fake-openai.ts';
import { useFakeUpstreams } from './support.ts';
import type { FakeUpstream } from '../../support/fake-upstream.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

const weather = {
  type: 'function' as const,
  name: 'get_weather',
  description: 'Weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  strict: false,
};

/** What an upstream request carried, the same for both wire formats: its system prompt and its turns, one line each. */
function received(provider: 'openai' | 'anthropic', body: any): { system: string | undefined; turns: string[] } {
  if (provider === 'openai') {
    const system = body.messages.filter((m: any) => m.role === 'system').map((m: any) => m.content);
    const turns = body.messages
      .filter((m: any) => m.role !== 'system')
      .flatMap((m: any) => {
        if (m.role === 'tool') return [`tool ${m.tool_call_id}: ${m.content}`];
        const text = typeof m.content === 'string' ? m.content : (m.content ?? []).map((p: any) => p.text ?? `[${p.type}]`).join('');
        const calls = (m.tool_calls ?? []).map((c: any) => `call ${c.id} ${c.function.name} ${c.function.arguments}`);
        return [...(text ? [`${m.role}: ${text}`] : []), ...calls];
      });
    return { system: system.length ? system.join('\n') : undefined, turns };
  }
  const system = body.system === undefined ? undefined : typeof body.system === 'string' ? body.system : body.system.map((b: any) => b.text).join('\n');
  const turns = body.messages.flatMap((m: any) => {
    const blocks = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
    return blocks.map((b: any) => {
      if (b.type === 'text') return `${m.role}: ${b.text}`;
      if (b.type === 'tool_use') return `call ${b.id} ${b.name} ${JSON.stringify(b.input)}`;
      if (b.type === 'tool_result') return `tool ${b.tool_use_id}: ${typeof b.content === 'string' ? b.content : b.content.map((c: any) => c.text).join('')}`;
      return `${m.role}: [${b.type}]`;
    });
  });
  return { system, turns };
}

const MiB = 1024 * 1024;

for (const backend of backends()) {
  describe(`OpenAI Responses API [${backend}]`, () => {
    let t: TestApp;
    // Both fake upstreams, started before the app (this hook is registered first), reset before each test.
    const fakes = useFakeUpstreams();
    let openai: FakeOpenAI;
    let anthropic: FakeAnthropic;
    let user: TestUser;
    let key: string;
    let client: OpenAI;

    before(async () => {
      ({ openai, anthropic } = fakes);
      // A gateway body limit of 3 MiB: over the general 1 MiB, small enough to send a body past it.
      t = await startApp({ backend, env: { ...openai.env, ...anthropic.env, AI_RETRIES: '0', DEFAULT_MODEL: 'openai:gpt-4o-mini', GATEWAY_BODY_LIMIT_BYTES: String(3 * MiB) } });
      user = await createUser(t);
      const res = await t.api('POST', '/v1/api-keys', { token: user.accessToken, body: { name: 'sdk', scopes: ['chat'] } });
      assert.equal(res.status, 201, res.text);
      key = res.body.key;
      client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: key, maxRetries: 0 });
    });
    after(async () => {
      await t.close();
    });

    async function usageOf(userId: string) {
      await t.services.usage.recorder.flush();
      return t.deps.db.select().from(usageEvents).where(eq(usageEvents.userId, userId));
    }

    const providers = [
      { provider: 'openai' as const, model: 'openai:gpt-4o-mini', fake: () => openai as FakeUpstream },
      { provider: 'anthropic' as const, model: 'anthropic:claude-haiku-4-5', fake: () => anthropic as FakeUpstream },
    ];

    for (const { provider, model, fake } of providers) {
      describe(`served by ${provider}`, () => {
        test('text: the response object, output_text, usage, and instructions upstream as the system prompt', async () => {
          fake().script({ reply: 'Hello from upstream.', usage: { input: 12, output: 4 } });
          const response = await client.responses.create({ model, instructions: 'Be brief.', input: 'Hi there', temperature: 0.3, max_output_tokens: 64, metadata: { ticket: '42' } });
          assert.equal(response.object, 'response');
          assert.match(response.id, /^resp_[0-9a-f]+$/);
          assert.equal(response.status, 'completed');
          assert.ok(response.completed_at! >= response.created_at);
          assert.equal(response.model, model);
          assert.equal(response.output_text, 'Hello from upstream.');
          assert.equal(response.output.length, 1);
          const message = response.output[0]!;
          assert.equal(message.type, 'message');
          assert.ok(message.type === 'message');
          assert.match(message.id, /^msg_/);
          assert.equal(message.role, 'assistant');
          assert.equal(message.status, 'completed');
          assert.deepEqual(message.content.map((c) => c.type === 'output_text' && [c.text, c.annotations]), [['Hello from upstream.', []]]);
          assert.deepEqual(response.usage, { input_tokens: 12, input_tokens_details: { cached_tokens: 0 }, output_tokens: 4, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 16 });
          assert.equal(response.instructions, 'Be brief.');
          assert.equal(response.temperature, 0.3);
          assert.equal(response.max_output_tokens, 64);
          assert.deepEqual(response.metadata, { ticket: '42' });
          assert.equal(response.previous_response_id, null);
          assert.equal(response.error, null);
          assert.equal(response.incomplete_details, null);

          assert.equal(fake().requests.length, 1);
          const sent = fake().requests[0]!.body;
          assert.deepEqual(received(provider, sent), { system: 'Be brief.', turns: ['user: Hi there'] });
          assert.equal(sent.temperature, 0.3);
          assert.equal(sent.max_tokens, 64);
          if (provider === 'openai') assert.equal(sent.stream, undefined, 'not streaming, the upstream is asked for the whole answer');

          const again = await client.responses.retrieve(response.id);
          assert.equal(again.id, response.id);
          assert.equal(again.output_text, 'Hello from upstream.');
          assert.deepEqual(again.usage, response.usage);
          assert.equal(again.instructions, 'Be brief.');
        });

        test('NULs the model emits are dropped from the answer, whole or streamed, which is stored and charged once as ok', async () => {
          const tally = async () => (await usageOf(user.id)).reduce((n, e) => ({ ok: n.ok + Number(e.status === 'ok'), other: n.other + Number(e.status !== 'ok') }), { ok: 0, other: 0 });
          const before = await tally();
          fake().script({ chunks: ['a\u0000b', 'cd'] });
          const whole = await client.responses.create({ model, input: 'Hi' });
          assert.equal(whole.status, 'completed');
          assert.equal(whole.output_text, 'abcd');
          assert.equal((await client.responses.retrieve(whole.id)).output_text, 'abcd');

          fake().script({ chunks: ['a\u0000b', 'cd'] });
          const stream = await client.responses.create({ model, input: 'Hi', stream: true });
          let deltas = '';
          let completed: OpenAI.Responses.Response | undefined;
          for await (const e of stream) {
            if (e.type === 'response.output_text.delta') deltas += e.delta;
            if (e.type === 'response.completed') completed = e.response;
          }
          assert.equal(deltas, 'abcd');
          assert.equal((await client.responses.retrieve(completed!.id)).output_text, 'abcd');
          assert.deepEqual(await tally(), { ok: before.ok + 2, other: before.other }, 'two calls, each charged once as ok');
        });

        // The path is the same for every provider (the attempt cleans the call); the fake Anthropic cannot send such a call whole.
        test('a tool call holding a NUL or half a surrogate pair is stored without them, whole or streamed, and charged once as ok', { skip: provider !== 'openai' && 'checked through OpenAI' }, async () => {
          const tally = async () => (await usageOf(user.id)).reduce((n, e) => ({ ok: n.ok + Number(e.status === 'ok'), other: n.other + Number(e.status !== 'ok') }), { ok: 0, other: 0 });
          const before = await tally();
          const odd = [{ id: 'call_\ud800x', name: 'get_w\u0000', arguments: '{"a":"x\u0000y\udc00"}' }];
          fake().script({ toolCalls: odd });
          const whole = await client.responses.create({ model, input: 'x', tools: [{ type: 'function', name: 'get_w', parameters: { type: 'object' }, strict: false }] });
          const call = whole.output.find((o) => o.type === 'function_call');
          assert.ok(call?.type === 'function_call', JSON.stringify(whole.output));
          assert.deepEqual([call.name, call.arguments], ['get_w', '{"a":"xy\ufffd"}']);
          assert.equal(call.call_id, 'call_\ufffdx');
          assert.deepEqual((await client.responses.retrieve(whole.id)).output, whole.output, 'stored');

          fake().script({ toolCalls: odd });
          const stream = await client.responses.create({ model, input: 'x', tools: [{ type: 'function', name: 'get_w', parameters: { type: 'object' }, strict: false }], stream: true });
          let completed: OpenAI.Responses.Response | undefined;
          for await (const e of stream) if (e.type === 'response.completed') completed = e.response;
          assert.ok(completed, 'completed, not failed');
          assert.deepEqual((await client.responses.retrieve(completed.id)).output.map((o) => o.type === 'function_call' && o.arguments), ['{"a":"xy\ufffd"}']);
          assert.deepEqual(await tally(), { ok: before.ok + 2, other: before.other });
        });

        test('streaming: the events in order, with sequence numbers, and the final response stored', async () => {
          fake().script({ reply: 'One two three.', usage: { input: 20, output: 3 } });
          const stream = await client.responses.create({ model, input: [{ role: 'user', content: [{ type: 'input_text', text: 'Count' }] }], stream: true });
          const events = [];
          for await (const e of stream) events.push(e);
          assert.deepEqual(
            events.map((e) => e.sequence_number),
            events.map((_, i) => i),
          );
          const types = events.map((e) => e.type);
          const deltas = events.flatMap((e) => (e.type === 'response.output_text.delta' ? [e.delta] : []));
          assert.deepEqual(types, [
            'response.created',
            'response.in_progress',
            'response.output_item.added',
            'response.content_part.added',
            ...deltas.map(() => 'response.output_text.delta'),
            'response.output_text.done',
            'response.content_part.done',
            'response.output_item.done',
            'response.completed',
          ]);
          // Chunks that arrive together may be passed on as one delta.
          assert.equal(deltas.join(''), 'One two three.');
          assert.ok(deltas.length >= 1);
          const created = events[0]!;
          assert.ok(created.type === 'response.created');
          assert.equal(created.response.status, 'in_progress');
          assert.deepEqual(created.response.output, []);
          const done = events.find((e) => e.type === 'response.output_text.done');
          assert.ok(done?.type === 'response.output_text.done');
          assert.equal(done.text, 'One two three.');
          const completed = events.at(-1)!;
          assert.ok(completed.type === 'response.completed');
          assert.equal(completed.response.id, created.response.id);
          assert.equal(completed.response.status, 'completed');
          assert.equal(completed.response.model, model);
          assert.deepEqual(completed.response.usage, { input_tokens: 20, input_tokens_details: { cached_tokens: 0 }, output_tokens: 3, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 23 });
          const stored = await client.responses.retrieve(completed.response.id);
          assert.equal(stored.output_text, 'One two three.');
          assert.equal(stored.status, 'completed');
        });

        test('client.responses.stream assembles the final response', async () => {
          fake().script({ reply: 'Assembled by the SDK.' });
          const stream = client.responses.stream({ model, input: 'Go' });
          let text = '';
          stream.on('response.output_text.delta', (e) => (text += e.delta));
          const final = await stream.finalResponse();
          assert.equal(final.output_text, 'Assembled by the SDK.');
          assert.equal(text, 'Assembled by the SDK.');
          assert.equal(final.status, 'completed');
        });

        test('previous_response_id sends the earlier turns upstream, without the earlier instructions', async () => {
          fake().script({ reply: 'Nice to meet you, Ada.' });
          const first = await client.responses.create({ model, instructions: 'Be brief.', input: 'My name is Ada.' });
          fake().script({ reply: 'Your name is Ada.' });
          const second = await client.responses.create({ model, previous_response_id: first.id, input: [{ role: 'user', content: 'What is my name?' }] });
          assert.equal(second.previous_response_id, first.id);
          assert.equal(second.instructions, null);
          assert.equal(second.output_text, 'Your name is Ada.');
          assert.deepEqual(received(provider, fake().requests[1]!.body), {
            system: undefined,
            turns: ['user: My name is Ada.', 'assistant: Nice to meet you, Ada.', 'user: What is my name?'],
          });
          fake().script({ reply: 'Ada.' });
          const third = await client.responses.create({ model, previous_response_id: second.id, instructions: 'Answer in one word.', input: 'Again?' });
          assert.equal(third.output_text, 'Ada.');
          assert.deepEqual(received(provider, fake().requests[2]!.body), {
            system: 'Answer in one word.',
            turns: ['user: My name is Ada.', 'assistant: Nice to meet you, Ada.', 'user: What is my name?', 'assistant: Your name is Ada.', 'user: Again?'],
          });
        });

        test('function calling round trip: a function_call out, a function_call_output back with previous_response_id', async () => {
          fake().script({ toolCalls: [{ id: 'call_abc', name: 'get_weather', arguments: '{"city":"Paris"}' }] });
          const first = await client.responses.create({ model, input: 'Weather in Paris?', tools: [weather], tool_choice: 'auto' });
          assert.equal(first.status, 'completed');
          assert.equal(first.output_text, '');
          const calls = first.output.filter((o) => o.type === 'function_call');
          assert.equal(calls.length, 1);
          const call = calls[0]!;
          assert.ok(call.type === 'function_call');
          assert.match(call.id!, /^fc_/);
          assert.equal(call.call_id, 'call_abc');
          assert.equal(call.name, 'get_weather');
          assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
          assert.equal(call.status, 'completed');
          assert.deepEqual(first.tools.map((tool) => tool.type === 'function' && tool.name), ['get_weather']);
          const sentTools = fake().requests[0]!.body.tools;
          assert.equal(provider === 'openai' ? sentTools[0].function.name : sentTools[0].name, 'get_weather');

          fake().script({ reply: 'Sunny in Paris.' });
          const second = await client.responses.create({
            model,
            tools: [weather],
            previous_response_id: first.id,
            input: [{ type: 'function_call_output', call_id: 'call_abc', output: '{"sky":"sunny"}' }],
          });
          assert.equal(second.output_text, 'Sunny in Paris.');
          assert.deepEqual(received(provider, fake().requests[1]!.body).turns, [
            'user: Weather in Paris?',
            `call call_abc get_weather ${provider === 'openai' ? '{"city":"Paris"}' : JSON.stringify({ city: 'Paris' })}`,
            'tool call_abc: {"sky":"sunny"}',
          ]);
        });

        test('function calls while streaming: the arguments events, and the call in the final response', async () => {
          fake().script({ toolCalls: [{ id: 'call_oslo', name: 'get_weather', arguments: '{"city":"Oslo"}' }] });
          const stream = client.responses.stream({ model, input: 'Oslo?', tools: [weather], tool_choice: { type: 'function', name: 'get_weather' } });
          const types: string[] = [];
          stream.on('event', (e) => types.push(e.type));
          const final = await stream.finalResponse();
          assert.deepEqual(types.slice(2), [
            'response.output_item.added',
            'response.function_call_arguments.delta',
            'response.function_call_arguments.done',
            'response.output_item.done',
            'response.completed',
          ]);
          const call = final.output[0]!;
          assert.ok(call.type === 'function_call');
          assert.equal(call.call_id, 'call_oslo');
          assert.deepEqual(JSON.parse(call.arguments), { city: 'Oslo' });
          const choice = fake().requests[0]!.body.tool_choice;
          if (provider === 'openai') assert.deepEqual(choice, { type: 'function', function: { name: 'get_weather' } });
          else assert.deepEqual(choice, { type: 'tool', name: 'get_weather' });
        });

        test('an upstream failing mid-stream ends in response.failed, charged once; before the first token it is a 502', async () => {
          const u = await createUser(t);
          const own = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: u.accessToken, maxRetries: 0 });
          fake().script({ reply: 'one two three four', cutAfter: 2 });
          const stream = await own.responses.create({ model, input: 'x', stream: true });
          const events = [];
          for await (const e of stream) events.push(e);
          const last = events.at(-1)!;
          assert.ok(last.type === 'response.failed', last.type);
          assert.equal(last.response.status, 'failed');
          assert.equal(last.response.error?.code, 'server_error');
          const partial = last.response.output[0]!;
          assert.ok(partial.type === 'message');
          assert.equal(partial.status, 'incomplete');
          assert.deepEqual(partial.content.map((c) => c.type === 'output_text' && c.text), ['one two ']);
          assert.ok(!events.some((e) => e.type === 'response.completed'));
          assert.equal((await own.responses.retrieve(last.response.id)).status, 'failed', 'a failed response is kept as failed');
          assert.equal(fake().requests.length, 1, 'not retried after output started');

          const charged = await usageOf(u.id);
          assert.equal(charged.length, 1, 'one usage event for the broken call');
          assert.equal(charged[0]!.status, 'failed');
          assert.equal(charged[0]!.source, 'gateway');
          assert.ok(charged[0]!.outputTokens > 0, 'the output already sent is billed');

          fake().script({ status: provider === 'openai' ? 500 : 529 });
          const before = await own.responses.create({ model, input: 'x', stream: true }).catch((e) => e);
          assert.ok(before instanceof OpenAI.APIError, String(before));
          assert.equal(before.status, 502);
          assert.equal(before.code, 'all_providers_failed');
          fake().script({ reply: 'one two three four', cutAfter: 2 });
          const plain = await own.responses.create({ model, input: 'x' }).catch((e) => e);
          assert.ok(plain instanceof OpenAI.APIError, String(plain));
          assert.equal(plain.status, 502);
          // Not streaming, an OpenAI upstream is asked for the whole answer: cut, nothing of it had come, so the link failed before any output.
          assert.equal(plain.code, provider === 'openai' ? 'all_providers_failed' : 'stream_interrupted');
          const all = await usageOf(u.id);
          assert.equal(all.length, 3, 'each failed call metered once');
          assert.ok(all.every((e) => e.status === 'failed'));
        });
      });
    }

    test('a fallback chain answers from the next provider and names it', async () => {
      anthropic.script({ status: 529 });
      openai.script({ reply: 'Fallback answered.' });
      const response = await client.responses.create({ model: 'anthropic:claude-haiku-4-5,openai:gpt-4o-mini', input: 'x' });
      assert.equal(response.model, 'openai:gpt-4o-mini');
      assert.equal(response.output_text, 'Fallback answered.');
      assert.equal(anthropic.requests.length, 1);
    });

    test('an answer cut at max_output_tokens is incomplete, streaming or not', async () => {
      openai.script({ reply: 'Cut short', finishReason: 'length' });
      const response = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'Talk', max_output_tokens: 2 });
      assert.equal(response.status, 'incomplete');
      assert.deepEqual(response.incomplete_details, { reason: 'max_output_tokens' });
      assert.ok(response.output[0]!.type === 'message' && response.output[0]!.status === 'incomplete');
      openai.script({ reply: 'Cut short', finishReason: 'length' });
      const stream = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'Talk', max_output_tokens: 2, stream: true });
      const types = [];
      for await (const e of stream) types.push(e.type);
      assert.equal(types.at(-1), 'response.incomplete');
    });

    test('a user message with an input_image reaches a model that can see as an image part', async () => {
      const image = 'data:image/png;base64,iVBORw0KGgo=';
      await client.responses.create({ model: 'openai:gpt-4o-mini', input: [{ role: 'user', content: [{ type: 'input_text', text: 'What is this?' }, { type: 'input_image', image_url: image, detail: 'low' }] }] });
      assert.deepEqual(openai.requests[0]!.body.messages, [
        { role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: image, detail: 'low' } }] },
      ]);
      // One no provider could take is a 400 on its param, before any upstream call.
      const refused = await client.responses.create({ model: 'openai:gpt-4o-mini', input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'javascript:alert(1)', detail: 'low' }] }] }).catch((e) => e);
      assert.ok(refused instanceof OpenAI.BadRequestError, String(refused));
      assert.equal(refused.param, 'input[0].content[0].image_url');
      assert.equal(openai.requests.length, 1);
    });

    test('a client that hangs up mid-stream stops the upstream generation, metered as cancelled', async () => {
      const u = await createUser(t);
      const own = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: u.accessToken, maxRetries: 0 });
      openai.script({ reply: 'a b c d e f g h i j', delayMs: 100 });
      const controller = new AbortController();
      const stream = await own.responses.create({ model: 'openai:gpt-4o-mini', input: 'x', stream: true }, { signal: controller.signal });
      let id = '';
      await (async () => {
        for await (const e of stream) {
          if (e.type === 'response.created') id = e.response.id;
          if (e.type === 'response.output_text.delta') controller.abort();
        }
      })().catch(() => {});
      for (let i = 0; i < 50 && !openai.requests[0]!.aborted; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(openai.requests[0]!.aborted, true);
      // The upstream sees the hang-up before Parley has finished metering it.
      const [e] = await eventually(async () => {
        const events = await usageOf(u.id);
        assert.equal(events.length, 1);
        return events;
      });
      assert.equal(e!.status, 'cancelled');
      await assert.rejects(own.responses.retrieve(id), OpenAI.NotFoundError, 'an abandoned response is not stored');
    });

    test('usage is recorded once per call, as a gateway call with the key', async () => {
      const u = await createUser(t);
      const created = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'k', scopes: ['chat'] } });
      const own = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: created.body.key, maxRetries: 0 });
      openai.script({ reply: 'Metered.', usage: { input: 1000, output: 500, cached: 200 } });
      const response = await own.responses.create({ model: 'openai:gpt-4o-mini', input: 'Hi' });
      assert.deepEqual(response.usage?.input_tokens_details, { cached_tokens: 200 });
      const [e, ...rest] = await usageOf(u.id);
      assert.equal(rest.length, 0);
      assert.equal(e!.source, 'gateway');
      assert.equal(e!.apiKeyId, created.body.id);
      assert.deepEqual([e!.provider, e!.model, e!.inputTokens, e!.outputTokens, e!.cachedTokens, e!.status], ['openai', 'gpt-4o-mini', 1000, 500, 200, 'ok']);
      assert.equal(e!.costMicros, 435);
    });

    test('store: false keeps nothing: not retrievable, not continued', async () => {
      const response = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'Secret', store: false });
      assert.equal((response as unknown as { store: boolean }).store, false);
      assert.equal(response.output_text, 'Hello from fake-openai.');
      await assert.rejects(client.responses.retrieve(response.id), OpenAI.NotFoundError);
      const err = await client.responses.create({ model: 'openai:gpt-4o-mini', previous_response_id: response.id, input: 'x' }).catch((e) => e);
      assert.ok(err instanceof OpenAI.NotFoundError, String(err));
      assert.equal(err.param, 'previous_response_id');
      assert.equal(openai.requests.length, 1);
    });

    test("delete: the owner's response goes; another user's id is a 404 everywhere, and stays its owner's", async () => {
      const mine = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'Mine' });
      const other = await createUser(t);
      const intruder = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: other.accessToken, maxRetries: 0 });
      const retrieve = await intruder.responses.retrieve(mine.id).catch((e) => e);
      assert.ok(retrieve instanceof OpenAI.NotFoundError, String(retrieve));
      assert.deepEqual(Object.keys(retrieve.error!).sort(), ['code', 'message', 'param', 'type']);
      await assert.rejects(intruder.responses.delete(mine.id), OpenAI.NotFoundError);
      const continued = await intruder.responses.create({ model: 'openai:gpt-4o-mini', previous_response_id: mine.id, input: 'x' }).catch((e) => e);
      assert.ok(continued instanceof OpenAI.NotFoundError, String(continued));
      assert.equal(continued.code, 'previous_response_not_found');
      assert.equal(openai.requests.length, 1, 'nothing went upstream for the intruder');
      assert.equal((await client.responses.retrieve(mine.id)).output_text, 'Hello from fake-openai.', 'still there for its owner');

      const raw = await t.api('DELETE', `/v1/responses/${mine.id}`, { token: key });
      assert.equal(raw.status, 200);
      assert.deepEqual(raw.body, { id: mine.id, object: 'response', deleted: true });
      await assert.rejects(client.responses.retrieve(mine.id), OpenAI.NotFoundError);
      await assert.rejects(client.responses.delete(mine.id), OpenAI.NotFoundError);
    });

    test('bad input: each a 4xx in OpenAI error format, nothing sent upstream', async () => {
      const shape = (body: any) => assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
      const malformed = await t.api('POST', '/v1/responses', { token: key, raw: '{"model":' });
      assert.equal(malformed.status, 400);
      assert.deepEqual(Object.keys(malformed.body), ['error']);
      shape(malformed.body);

      const wrongType = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 42 as never }).catch((e) => e);
      assert.ok(wrongType instanceof OpenAI.BadRequestError, String(wrongType));
      assert.equal(wrongType.param, 'input');
      const badTemperature = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'x', temperature: 'hot' as never }).catch((e) => e);
      assert.ok(badTemperature instanceof OpenAI.BadRequestError);
      assert.equal(badTemperature.param, 'temperature');
      for (const topP of [2, 'x']) {
        const badTopP = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'x', top_p: topP as never }).catch((e) => e);
        assert.ok(badTopP instanceof OpenAI.BadRequestError, `top_p ${topP}: ${badTopP}`);
        assert.equal(badTopP.param, 'top_p');
      }
      const badItem = await client.responses.create({ model: 'openai:gpt-4o-mini', input: [{ role: 'user', content: 'ok' }, { role: 'robot', content: 'x' } as never] }).catch((e) => e);
      assert.ok(badItem instanceof OpenAI.BadRequestError);
      assert.equal(badItem.param, 'input[1].role');
      const noInput = await client.responses.create({ model: 'openai:gpt-4o-mini' }).catch((e) => e);
      assert.ok(noInput instanceof OpenAI.BadRequestError);
      assert.equal(noInput.param, 'input');
      const badPart = await client.responses.create({ model: 'openai:gpt-4o-mini', input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'file_1' }] }] }).catch((e) => e);
      assert.ok(badPart instanceof OpenAI.BadRequestError);
      assert.equal(badPart.code, 'unsupported_content');
      const emptyParts = await client.responses.create({ model: 'openai:gpt-4o-mini', input: [{ role: 'user', content: [] }] }).catch((e) => e);
      assert.ok(emptyParts instanceof OpenAI.BadRequestError, String(emptyParts));
      assert.equal(emptyParts.param, 'input[0].content');

      const huge = await t.api('POST', '/v1/responses', { token: key, body: { model: 'openai:gpt-4o-mini', input: 'x'.repeat(4 * MiB) } });
      assert.equal(huge.status, 413);
      shape(huge.body);
      assert.equal(huge.body.error.code, 'body_too_large');

      const unknown = await client.responses.create({ model: 'nope:nothing', input: 'x' }).catch((e) => e);
      assert.ok(unknown instanceof OpenAI.NotFoundError, String(unknown));
      assert.equal(unknown.code, 'model_not_found');
      assert.equal(unknown.param, 'model');

      const webSearch = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'x', tools: [{ type: 'web_search' }] }).catch((e) => e);
      assert.ok(webSearch instanceof OpenAI.BadRequestError, String(webSearch));
      assert.equal(webSearch.code, 'unsupported_tool');
      assert.equal(webSearch.param, 'tools[0].type');
      assert.match(webSearch.message, /web_search/);
      const badName = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'x', tools: [{ ...weather, name: 'get weather' }] }).catch((e) => e);
      assert.ok(badName instanceof OpenAI.BadRequestError, String(badName));
      assert.equal(badName.param, 'tools[0].name');
      // Structured output is honoured (structured-output.test.ts); a format it does not know is not.
      const grammar = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'x', text: { format: { type: 'grammar' } as never } }).catch((e) => e);
      assert.ok(grammar instanceof OpenAI.BadRequestError);
      assert.equal(grammar.param, 'text.format.type');
      const background = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'x', background: true }).catch((e) => e);
      assert.ok(background instanceof OpenAI.BadRequestError);
      const missing = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'x', previous_response_id: 'resp_nothing' }).catch((e) => e);
      assert.ok(missing instanceof OpenAI.NotFoundError);
      assert.equal(missing.param, 'previous_response_id');
      assert.equal(openai.requests.length, 0);
    });

    test('tool turns pair up as OpenAI requires, whatever the provider; with previous_response_id a bad item is named by its place in input', async () => {
      const orphan = await client.responses.create({ model: 'openai:gpt-4o-mini', input: [{ role: 'user', content: 'x' }, { type: 'function_call_output', call_id: 'call_none', output: '1' }] }).catch((e) => e);
      assert.ok(orphan instanceof OpenAI.BadRequestError, String(orphan));
      assert.equal(orphan.param, 'input[1].call_id');
      assert.match(orphan.message, /No tool call found for function call output with call_id call_none/);
      const ask = { type: 'function_call' as const, call_id: 'call_1', name: 'get_weather', arguments: '{}' };
      const unanswered = await client.responses.create({ model: 'openai:gpt-4o-mini', input: [{ role: 'user', content: 'Weather?' }, ask, { role: 'user', content: 'Never mind.' }] }).catch((e) => e);
      assert.ok(unanswered instanceof OpenAI.BadRequestError, String(unanswered));
      assert.equal(unanswered.param, 'input[1]');
      assert.match(unanswered.message, /No tool output found for function call call_1/);
      assert.equal(openai.requests.length, 0, 'refused before any upstream call');

      openai.script({ toolCalls: [{ id: 'call_abc', name: 'get_weather', arguments: '{"city":"Paris"}' }] });
      const first = await client.responses.create({ model: 'openai:gpt-4o-mini', input: [{ role: 'user', content: 'Hi' }, { role: 'user', content: 'Weather in Paris?' }], tools: [weather] });
      const badItem = await client.responses.create({ model: 'openai:gpt-4o-mini', previous_response_id: first.id, input: [{ role: 'robot', content: 'x' } as never] }).catch((e) => e);
      assert.ok(badItem instanceof OpenAI.BadRequestError, String(badItem));
      assert.equal(badItem.param, 'input[0].role', 'the caller\'s item, not its place after the earlier turns');
      const skipped = await client.responses.create({ model: 'openai:gpt-4o-mini', previous_response_id: first.id, input: 'And in Rome?' }).catch((e) => e);
      assert.ok(skipped instanceof OpenAI.BadRequestError, String(skipped));
      assert.match(skipped.message, /No tool output found for function call call_abc/);
      const answered = await client.responses.create({ model: 'openai:gpt-4o-mini', previous_response_id: first.id, tools: [weather], input: [{ type: 'function_call_output', call_id: 'call_abc', output: 'sunny' }] });
      assert.equal(answered.status, 'completed');
      assert.equal(openai.requests.length, 2);
    });

    test('a tool_choice naming a tool not in tools is a 400 on tool_choice.name, before any upstream call', async () => {
      const err = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'x', tools: [weather], tool_choice: { type: 'function', name: 'get_time' } }).catch((e) => e);
      assert.ok(err instanceof OpenAI.BadRequestError, String(err));
      assert.equal(err.param, 'tool_choice.name');
      assert.match(err.message, /get_time/);
      const none = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'x', tool_choice: { type: 'function', name: 'get_weather' } }).catch((e) => e);
      assert.ok(none instanceof OpenAI.BadRequestError, String(none));
      assert.equal(openai.requests.length, 0);
    });

    test('metadata holds up to 16 pairs, as OpenAI takes it', async () => {
      const pairs = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));
      const ok = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'x', store: false, metadata: pairs(16) });
      assert.equal(Object.keys(ok.metadata!).length, 16);
      const tooMany = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'x', metadata: pairs(17) }).catch((e) => e);
      assert.ok(tooMany instanceof OpenAI.BadRequestError, String(tooMany));
      assert.equal(tooMany.param, 'metadata');
      assert.equal(openai.requests.length, 1);
    });

    test('top_p reaches the upstream and is echoed; a body over the general limit is taken up to GATEWAY_BODY_LIMIT_BYTES', async () => {
      openai.script({ reply: 'Read it all.' });
      const long = 'All work and no play. '.repeat(2 * MiB / 22 + 1);
      const response = await client.responses.create({ model: 'openai:gpt-4o-mini', input: long, top_p: 0.7, store: false });
      assert.equal(response.output_text, 'Read it all.');
      assert.equal(response.top_p, 0.7);
      const sent = openai.requests[0]!.body;
      assert.equal(sent.top_p, 0.7);
      assert.equal(sent.messages[0].content.length, long.length);
    });

    test('a missing, bad or revoked key is an AuthenticationError; a key without the chat scope a PermissionDeniedError', async () => {
      const noKey = await t.api('POST', '/v1/responses', { body: { model: 'openai:gpt-4o-mini', input: 'x' } });
      assert.equal(noKey.status, 401);
      assert.deepEqual(Object.keys(noKey.body), ['error']);
      assert.equal(noKey.body.error.type, 'authentication_error');
      const bad = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'pk_not-a-real-key', maxRetries: 0 });
      await assert.rejects(bad.responses.create({ model: 'openai:gpt-4o-mini', input: 'x' }), OpenAI.AuthenticationError);

      const created = await t.api('POST', '/v1/api-keys', { token: user.accessToken, body: { name: 'soon revoked', scopes: ['chat'] } });
      const revocable = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: created.body.key, maxRetries: 0 });
      const kept = await revocable.responses.create({ model: 'openai:gpt-4o-mini', input: 'x' });
      assert.equal((await t.api('DELETE', `/v1/api-keys/${created.body.id}`, { token: user.accessToken })).status, 204);
      const revoked = await revocable.responses.create({ model: 'openai:gpt-4o-mini', input: 'x' }).catch((e) => e);
      assert.ok(revoked instanceof OpenAI.AuthenticationError, String(revoked));
      await assert.rejects(revocable.responses.retrieve(kept.id), OpenAI.AuthenticationError);
      assert.equal((await client.responses.retrieve(kept.id)).id, kept.id, "the revoked key's response stays its owner's");

      const profileOnly = (await t.api('POST', '/v1/api-keys', { token: user.accessToken, body: { name: 'p', scopes: ['profile:read'] } })).body.key;
      const limited = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: profileOnly, maxRetries: 0 });
      await assert.rejects(limited.responses.create({ model: 'openai:gpt-4o-mini', input: 'x' }), OpenAI.PermissionDeniedError);
      assert.equal(openai.requests.length, 1);
    });

    test('the routes are in /openapi.json', async () => {
      const doc = await t.api('GET', '/openapi.json');
      assert.ok(doc.body.paths['/v1/responses'].post);
      assert.ok(doc.body.paths['/v1/responses/{id}'].get);
      assert.ok(doc.body.paths['/v1/responses/{id}'].delete);
    });

    test('a response past 30 days, not yet purged, is a 404 to delete as to read', async () => {
      const old = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'old' });
      await t.deps.db.update(aiResponses).set({ createdAt: new Date(Date.now() - 31 * 24 * 3600 * 1000) }).where(eq(aiResponses.id, old.id));
      await assert.rejects(client.responses.retrieve(old.id), OpenAI.NotFoundError);
      await assert.rejects(client.responses.delete(old.id), OpenAI.NotFoundError);
    });

    test('the purge removes responses past 30 days and keeps the rest', async () => {
      const fresh = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'fresh' });
      const purged = await t.services.responses.purge(new Date(Date.now() + 31 * 24 * 3600 * 1000));
      assert.ok(purged >= 1);
      await assert.rejects(client.responses.retrieve(fresh.id), OpenAI.NotFoundError);
      const kept = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'kept' });
      assert.equal(await t.services.responses.purge(), 0);
      assert.equal((await client.responses.retrieve(kept.id)).id, kept.id);
    });

    /** Responses as the table holds them, in the order of `ids`. */
    async function rowsOf(...ids: string[]) {
      const rows = await t.deps.db.select().from(aiResponses).where(inArray(aiResponses.id, ids));
      return ids.map((id) => rows.find((r) => r.id === id));
    }
    const lastSent = () => received('openai', openai.requests.at(-1)!.body).turns;

    /** What the model hears of `chain()`'s four turns, in order. */
    const chainTurns = [
      'user: Weather in Oslo?',
      'call call_w get_weather {"city":"Oslo"}',
      'tool call_w: snow',
      'assistant: Snow in Oslo.',
      'user: What should I wear?',
      'assistant: Wear boots.',
      'user: Gloves?',
      'assistant: Yes, gloves too.',
    ];

    /** Four turns continuing one another (a tool call and its output among them), each checked for the conversation the model got. */
    async function chain(as = client) {
      const turn = async (previous: string | undefined, input: string | OpenAI.Responses.ResponseInputItem[]) =>
        (await as.responses.create({ model: 'openai:gpt-4o-mini', tools: [weather], ...(previous ? { previous_response_id: previous } : {}), input })).id;
      openai.script({ toolCalls: [{ id: 'call_w', name: 'get_weather', arguments: '{"city":"Oslo"}' }] }, { reply: 'Snow in Oslo.' }, { reply: 'Wear boots.' }, { reply: 'Yes, gloves too.' });
      const first = await turn(undefined, 'Weather in Oslo?');
      assert.deepEqual(lastSent(), chainTurns.slice(0, 1));
      const second = await turn(first, [{ type: 'function_call_output', call_id: 'call_w', output: 'snow' }]);
      assert.deepEqual(lastSent(), chainTurns.slice(0, 3));
      const third = await turn(second, 'What should I wear?');
      assert.deepEqual(lastSent(), chainTurns.slice(0, 5));
      const fourth = await turn(third, [{ role: 'user', content: 'Gloves?' }]);
      assert.deepEqual(lastSent(), chainTurns.slice(0, 7));
      return [first, second, third, fourth] as const;
    }

    /** Continues `id` with one more question: the model must hear `earlier` before it. */
    async function continues(id: string, earlier: string[]) {
      openai.script({ reply: 'Noted.' });
      const next = await client.responses.create({ model: 'openai:gpt-4o-mini', tools: [weather], previous_response_id: id, input: 'Anything else?' });
      assert.equal(next.output_text, 'Noted.');
      assert.deepEqual(lastSent(), [...earlier, 'user: Anything else?']);
      return next;
    }

    test('a chain stores each turn once, linked to the one before; the model gets the whole conversation every turn', async () => {
      const ids = await chain();
      const rows = await rowsOf(...ids);
      // Linear: each row its own input only (today's rows held every earlier turn: 1, 3, 5 and 7 items).
      assert.deepEqual(
        rows.map((r) => r!.input),
        [
          [{ type: 'message', role: 'user', content: 'Weather in Oslo?' }],
          [{ type: 'function_call_output', call_id: 'call_w', output: 'snow' }],
          [{ type: 'message', role: 'user', content: 'What should I wear?' }],
          [{ role: 'user', content: 'Gloves?' }],
        ],
      );
      assert.deepEqual(rows.map((r) => [r!.inputWhole, r!.previousResponseId]), [[true, null], [false, ids[0]], [false, ids[1]], [false, ids[2]]]);
      await continues(ids[3], chainTurns);
      const fourth = await client.responses.retrieve(ids[3]);
      assert.equal(fourth.output_text, 'Yes, gloves too.');
      assert.equal(fourth.previous_response_id, ids[2]);
    });

    test('deleting a response in the middle of a chain hands its conversation to the next one: every later turn goes on as before', async () => {
      const [first, second, third, fourth] = await chain();
      const [one, two] = await rowsOf(first, second);
      assert.equal((await t.api('DELETE', `/v1/responses/${second}`, { token: key })).status, 200);
      const [, gone, heir, last] = await rowsOf(first, second, third, fourth);
      assert.equal(gone, undefined);
      assert.equal(heir!.inputWhole, true);
      assert.deepEqual(heir!.input, [...one!.input, ...one!.output, ...two!.input, ...two!.output, { type: 'message', role: 'user', content: 'What should I wear?' }]);
      assert.deepEqual([last!.inputWhole, last!.input.length], [false, 1], 'only the next response takes the conversation over');

      await continues(fourth, chainTurns);
      await continues(third, chainTurns.slice(0, 6));
      const missing = await client.responses.create({ model: 'openai:gpt-4o-mini', previous_response_id: second, input: 'x' }).catch((e) => e);
      assert.equal(missing.code, 'previous_response_not_found');
      // The first turn has nothing after it to hand on to any more; deleting it changes nothing for the rest.
      assert.equal((await t.api('DELETE', `/v1/responses/${first}`, { token: key })).status, 200);
      await continues(fourth, chainTurns);
    });

    test('the purge of the older turns of a chain leaves its younger ones going on as before', async () => {
      const [first, second, third, fourth] = await chain();
      await t.deps.db.update(aiResponses).set({ createdAt: new Date(Date.now() - 31 * 24 * 3600 * 1000) }).where(inArray(aiResponses.id, [first, second]));
      assert.ok((await t.services.responses.purge()) >= 2);
      const [one, two, heir, last] = await rowsOf(first, second, third, fourth);
      assert.deepEqual([one, two], [undefined, undefined]);
      assert.deepEqual([heir!.inputWhole, heir!.input.length], [true, 5]);
      assert.deepEqual([last!.inputWhole, last!.input.length], [false, 1]);
      await continues(fourth, chainTurns);
      await assert.rejects(client.responses.retrieve(second), OpenAI.NotFoundError);
    });

    test('a response stored before turns were stored one by one (its input whole) is continued, and deleted, as before', async () => {
      const message = (role: 'user' | 'assistant', content: string) => ({ type: 'message', role, content });
      const legacy = (id: string, previousResponseId: string | null, input: Record<string, unknown>[], reply: string) => ({
        id,
        userId: user.id,
        model: 'openai:gpt-4o-mini',
        status: 'completed',
        previousResponseId,
        input,
        // As migration 0033 marks the rows before it.
        inputWhole: true,
        output: [{ id: `msg_${id}`, type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', annotations: [], logprobs: [], text: reply }] }],
        response: { id, object: 'response', status: 'completed', previous_response_id: previousResponseId },
      });
      const [old1, old2] = [`resp_old1${Date.now()}`, `resp_old2${Date.now()}`];
      await t.deps.db.insert(aiResponses).values([
        legacy(old1, null, [message('user', 'I am Ada.')], 'Hi Ada.'),
        legacy(old2, old1, [message('user', 'I am Ada.'), message('assistant', 'Hi Ada.'), message('user', 'I live in Oslo.')], 'Nice.'),
      ]);
      const earlier = ['user: I am Ada.', 'assistant: Hi Ada.', 'user: I live in Oslo.', 'assistant: Nice.'];
      const next = await continues(old2, earlier);
      const [row] = await rowsOf(next.id);
      assert.deepEqual([row!.inputWhole, row!.input], [false, [message('user', 'Anything else?')]]);
      const then = [...earlier, 'user: Anything else?', 'assistant: Noted.'];
      await continues(next.id, then);

      assert.equal((await t.api('DELETE', `/v1/responses/${old2}`, { token: key })).status, 200);
      const [heir] = await rowsOf(next.id);
      assert.equal(heir!.inputWhole, true);
      assert.equal(heir!.input.length, 5);
      await continues(next.id, then);
    });

    test('a chain of thousands of turns is read back whole, in order, and survives a deletion in its middle', async () => {
      const turns = 2000;
      const ids = Array.from({ length: turns }, (_, i) => `resp_deep${i}_${Date.now()}`);
      await t.deps.db.insert(aiResponses).values(
        ids.map((id, i) => ({
          id,
          userId: user.id,
          model: 'openai:gpt-4o-mini',
          status: 'completed',
          previousResponseId: i ? ids[i - 1]! : null,
          input: [{ type: 'message', role: 'user', content: `q${i}` }],
          inputWhole: i === 0,
          output: [{ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: `a${i}` }] }],
          response: { id, object: 'response' },
        })),
      );
      const earlier = ids.flatMap((_, i) => [`user: q${i}`, `assistant: a${i}`]);
      await continues(ids.at(-1)!, earlier);
      assert.equal((await t.api('DELETE', `/v1/responses/${ids[turns / 2]}`, { token: key })).status, 200);
      assert.equal((await rowsOf(ids[turns / 2 + 1]!))[0]!.input.length, turns + 3);
      await continues(ids.at(-1)!, earlier);
    });

    test("a chain's walk never takes another user's turns: a row of theirs in it breaks the chain rather than lending them", async () => {
      const [, second] = await chain();
      const other = await createUser(t);
      const forged = `resp_forged${Date.now()}`;
      await t.deps.db.insert(aiResponses).values({ id: forged, userId: other.id, model: 'openai:gpt-4o-mini', status: 'completed', previousResponseId: second, input: [], inputWhole: false, output: [], response: { id: forged } });
      const intruder = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: other.accessToken, maxRetries: 0 });
      const before = openai.requests.length;
      const err = await intruder.responses.create({ model: 'openai:gpt-4o-mini', previous_response_id: forged, input: 'x' }).catch((e) => e);
      assert.ok(err instanceof OpenAI.InternalServerError, String(err));
      assert.equal(openai.requests.length, before, 'nothing went upstream');
    });

    test('a response whose previous one went while it was being answered stores the whole conversation itself', async () => {
      const id = `resp_orphan${Date.now()}`;
      const earlier = [
        { type: 'message', role: 'user', content: 'Hi' },
        { type: 'message', role: 'assistant', content: 'Hello.' },
      ];
      const own = [{ type: 'message', role: 'user', content: 'Still there?' }];
      const output = [{ type: 'message', role: 'assistant', content: 'Yes.' }];
      await t.services.responses.save({ id, userId: user.id, model: 'openai:gpt-4o-mini', status: 'completed', previousResponseId: 'resp_deleted_meanwhile', output, response: { id } }, { own, earlier });
      const [row] = await rowsOf(id);
      assert.deepEqual([row!.inputWhole, row!.input], [true, [...earlier, ...own]]);
      assert.deepEqual(await t.services.responses.conversation(id, user.id), [...earlier, ...own, ...output]);
    });

    test("a deleted account's chains go with it", async () => {
      const leaving = await createUser(t);
      await chain(new OpenAI({ baseURL: `${t.url}/v1`, apiKey: leaving.accessToken, maxRetries: 0 }));
      assert.equal((await t.api('DELETE', '/v1/users/me', { token: leaving.accessToken, body: { password: leaving.password } })).status, 204);
      await eventually(async () => assert.equal((await t.deps.db.select().from(aiResponses).where(eq(aiResponses.userId, leaving.id))).length, 0), 20_000);
    });
  });
}
