import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { zodOutputFormat } from '@anthropic-ai/sdk/helpers/zod';
import { eq } from 'drizzle-orm';
import { z } from 'zod';
import { createStopScanner } from '../../../src/modules/ai/messages-format.ts';
import { INLINE_CHARS } from '../../../src/modules/ai/token-counter.ts';
import { countPromptTokens, countTextTokens } from '../../../src/modules/ai/tokens.ts';
import type { ChatMessage } from '../../../src/modules/ai/types.ts';
import { usageEvents } from '../../../src/modules/usage/schema.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import type { FakeAnthropic } from '../../support/fake-anthropic.ts';
import type { FakeOpenAI } from '../../support/fake-openai.ts';
import { useFakeUpstreams } from './support.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

const weather = { name: 'get_weather', description: 'Weather in a city', input_schema: { type: 'object' as const, properties: { city: { type: 'string' } }, required: ['city'] } };
const PIXEL = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

const MiB = 1024 * 1024;

/** Structured output: what a Claude client asks for (zodOutputFormat: a schema whose objects are closed) and gets. */
const Weather = z.object({ city: z.string(), celsius: z.number() });
const paris = { city: 'Paris', celsius: 21 };
const citySchema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false };

/** The event names of a raw SSE body, from its `event:` lines, and the `type` of each data line. */
function sseEvents(text: string) {
  const frames = text.split('\n\n').filter(Boolean);
  return frames.map((f) => {
    const name = /^event: (.+)$/m.exec(f)?.[1];
    const data = JSON.parse(/^data: (.+)$/m.exec(f)![1]!);
    return { name, data };
  });
}

test('stop sequences: text that may start one is held back, and the first one found ends the output', () => {
  const scanner = createStopScanner(['STOP', 'END']);
  assert.deepEqual(scanner.push('alpha ST'), { text: 'alpha ' });
  assert.deepEqual(scanner.push('OP beta END'), { text: '', stopped: 'STOP' });
  const other = createStopScanner(['STOP']);
  assert.deepEqual(other.push('S'), { text: '' });
  assert.deepEqual(other.push('T'), { text: '' });
  assert.deepEqual(other.push('x'), { text: 'STx' });
  assert.deepEqual(other.push('xS'), { text: 'x' });
  assert.equal(other.flush(), 'S');
  const earliest = createStopScanner(['later', 'b']);
  assert.deepEqual(earliest.push('a b later'), { text: 'a ', stopped: 'b' });
  assert.deepEqual(createStopScanner([]).push('ST'), { text: 'ST' });
});

for (const backend of backends()) {
  describe(`Anthropic Messages API [${backend}]`, () => {
    let t: TestApp;
    // Both fake upstreams, started before the app (this hook is registered first), reset before each test.
    const fakes = useFakeUpstreams();
    let openai: FakeOpenAI;
    let anthropic: FakeAnthropic;
    let user: TestUser;
    let key: string;
    let keyId: string;
    let client: Anthropic;

    const usageOf = async (userId: string) => {
      await t.services.usage.recorder.flush();
      return t.deps.db.select().from(usageEvents).where(eq(usageEvents.userId, userId));
    };

    before(async () => {
      ({ openai, anthropic } = fakes);
      const local = JSON.stringify([{ name: 'local', baseUrl: `${openai.url}/v1`, models: ['qwen3'] }]);
      // A gateway body limit of 3 MiB: over the general 1 MiB, small enough to send a body past it.
      const limits = { GATEWAY_BODY_LIMIT_BYTES: String(3 * MiB) };
      t = await startApp({ backend, env: { ...openai.env, ...anthropic.env, OPENAI_COMPATIBLE_ENDPOINTS: local, AI_RETRIES: '0', DEFAULT_MODEL: 'openai:gpt-4o-mini', ...limits } });
      user = await createUser(t);
      const res = await t.api('POST', '/v1/api-keys', { token: user.accessToken, body: { name: 'claude-client', scopes: ['chat'] } });
      key = res.body.key;
      keyId = res.body.id;
      client = new Anthropic({ baseURL: t.url, apiKey: key, maxRetries: 0 });
    });
    after(async () => {
      await t.close();
    });

    test('a Claude client gets an OpenAI model\'s answer as a message; system, temperature and max_tokens reach the upstream', async () => {
      openai.script({ reply: 'Hello from upstream.', usage: { input: 12, output: 4, cached: 2 } });
      // This SDK's types no longer list temperature; clients built on older ones send it, and Anthropic takes it.
      const sampling = { temperature: 0.3 } as {};
      const { data: message, response } = await client.messages
        .create({
          model: 'openai:gpt-4o-mini',
          max_tokens: 64,
          ...sampling,
          system: 'Be brief.',
          messages: [
            { role: 'user', content: 'Hi' },
            { role: 'assistant', content: 'Hello!' },
            { role: 'user', content: [{ type: 'text', text: 'How are ' }, { type: 'text', text: 'you?' }] },
          ],
          metadata: { user_id: 'u-1' },
        })
        .withResponse();
      assert.match(message.id, /^msg_[0-9a-f]{32}$/);
      assert.equal(message.type, 'message');
      assert.equal(message.role, 'assistant');
      assert.equal(message.model, 'openai:gpt-4o-mini');
      assert.deepEqual(message.content, [{ type: 'text', text: 'Hello from upstream.' }]);
      assert.equal(message.stop_reason, 'end_turn');
      assert.equal(message.stop_sequence, null);
      assert.deepEqual(message.usage, { input_tokens: 10, output_tokens: 4, cache_creation_input_tokens: null, cache_read_input_tokens: 2 });
      assert.ok(response.headers.get('request-id'));
      const sent = openai.requests[0]!.body;
      assert.equal(sent.model, 'gpt-4o-mini');
      assert.equal(sent.stream, undefined, 'not streaming, the upstream is asked for the whole answer');
      assert.equal(sent.temperature, 0.3);
      assert.equal(sent.max_tokens, 64);
      assert.deepEqual(sent.messages, [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello!' },
        { role: 'user', content: 'How are you?' },
      ]);
      assert.equal(openai.requests[0]!.headers.authorization, 'Bearer sk-test', "Parley's provider key upstream, never the client's");
    });

    test('an Anthropic model behind it too; system as text blocks; the call is metered as gateway usage on the key', async () => {
      anthropic.script({ reply: 'From Claude.', usage: { input: 30, output: 3 } });
      const message = await client.messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 100,
        system: [{ type: 'text', text: 'You are terse.', cache_control: { type: 'ephemeral' } }],
        messages: [{ role: 'user', content: 'Hello' }],
      });
      assert.equal(message.model, 'anthropic:claude-haiku-4-5');
      assert.deepEqual(message.content, [{ type: 'text', text: 'From Claude.' }]);
      assert.deepEqual([message.usage.input_tokens, message.usage.output_tokens], [30, 3]);
      const sent = anthropic.requests[0]!.body;
      assert.match(JSON.stringify(sent.system), /You are terse\./);
      assert.equal(sent.max_tokens, 100);
      const events = (await usageOf(user.id)).filter((e) => e.model === 'claude-haiku-4-5');
      assert.equal(events.length, 1);
      assert.deepEqual([events[0]!.source, events[0]!.provider, events[0]!.status, events[0]!.apiKeyId, events[0]!.inputTokens, events[0]!.outputTokens], ['gateway', 'anthropic', 'ok', keyId, 30, 3]);
    });

    test('top_p and top_k reach the providers that take them: OpenAI gets top_p only, compatible servers and Anthropic both', async () => {
      const sampling = { top_p: 0.8, top_k: 40 };
      for (const model of ['openai:gpt-4o-mini', 'local:qwen3']) {
        openai.script({ reply: 'ok' });
        await client.messages.create({ model, max_tokens: 16, ...sampling, messages: [{ role: 'user', content: 'Hi' }] });
        const sent = openai.requests.at(-1)!.body;
        assert.equal(sent.top_p, 0.8, model);
        assert.equal(sent.top_k, model === 'local:qwen3' ? 40 : undefined, model);
      }
      anthropic.script({ reply: 'ok' });
      await client.messages.create({ model: 'anthropic:claude-haiku-4-5', max_tokens: 16, ...sampling, messages: [{ role: 'user', content: 'Hi' }] });
      const sent = anthropic.requests[0]!.body;
      assert.equal(sent.top_p, 0.8);
      assert.equal(sent.top_k, 40);
    });

    test('a body over the general limit is taken up to GATEWAY_BODY_LIMIT_BYTES: a long conversation reaches the upstream whole', async () => {
      openai.script({ reply: 'Read it all.' });
      // Words, as a conversation is: one unbroken run of a letter this long would take the tokenizer minutes to count.
      const long = 'All work and no play. '.repeat(2 * MiB / 22 + 1);
      const message = await client.messages.create({ model: 'openai:gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: long }] });
      assert.deepEqual(message.content, [{ type: 'text', text: 'Read it all.' }]);
      assert.equal(openai.requests[0]!.body.messages[0].content.length, long.length);
      const counted = await client.messages.countTokens({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: long }] });
      assert.ok(counted.input_tokens > 1000, String(counted.input_tokens));
    });

    test('streaming: the SDK assembles the message from exact Anthropic events, through both upstreams', async () => {
      for (const [model, fake] of [['openai:gpt-4o-mini', openai], ['anthropic:claude-haiku-4-5', anthropic]] as const) {
        fake.script({ reply: 'One two three.', usage: { input: 20, output: 3 } });
        const stream = client.messages.stream({ model, max_tokens: 50, messages: [{ role: 'user', content: 'Count' }] });
        let text = '';
        stream.on('text', (delta) => (text += delta));
        const final = await stream.finalMessage();
        assert.equal(text, 'One two three.');
        assert.equal(final.model, model);
        assert.deepEqual(final.content, [{ type: 'text', text: 'One two three.' }]);
        assert.equal(final.stop_reason, 'end_turn');
        assert.deepEqual([final.usage.input_tokens, final.usage.output_tokens], [20, 3], 'message_delta carries the provider\'s counts');
      }
      const raw = await t.api('POST', '/v1/messages', { token: key, headers: { 'anthropic-version': '2023-06-01' }, body: { model: 'openai:gpt-4o-mini', max_tokens: 10, stream: true, messages: [{ role: 'user', content: 'x' }] } });
      assert.equal(raw.status, 200);
      assert.match(raw.headers.get('content-type')!, /^text\/event-stream/);
      const events = sseEvents(raw.text);
      assert.ok(events.every((e) => e.name === e.data.type), 'each event: line names its data');
      // How many deltas depends on how the upstream's frames arrive; their order and text do not.
      const names = events.map((e) => e.name).filter((n, i, all) => !(n === 'content_block_delta' && all[i - 1] === n));
      assert.deepEqual(names, ['message_start', 'content_block_start', 'ping', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
      assert.deepEqual(events[1]!.data, { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
      const deltas = events.filter((e) => e.name === 'content_block_delta');
      assert.ok(deltas.every((e) => e.data.index === 0 && e.data.delta.type === 'text_delta'));
      assert.equal(deltas.map((e) => e.data.delta.text).join(''), 'Hello from fake-openai.');
      const start = events[0]!.data.message;
      assert.deepEqual([start.role, start.content, start.stop_reason, start.model], ['assistant', [], null, 'openai:gpt-4o-mini']);
      assert.ok(start.usage.input_tokens > 0);
      assert.deepEqual(events.at(-2)!.data.delta, { stop_reason: 'end_turn', stop_sequence: null });
    });

    test('tool use: an OpenAI model calls a tool, the client sends the tool_result back, the model finishes', async () => {
      openai.script({ toolCalls: [{ id: 'call_abc', name: 'get_weather', arguments: '{"city":"Paris"}' }] });
      const first = await client.messages.create({ model: 'openai:gpt-4o', max_tokens: 100, messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [weather], tool_choice: { type: 'any' } });
      assert.equal(first.stop_reason, 'tool_use');
      assert.deepEqual(first.content, [{ type: 'tool_use', id: 'call_abc', name: 'get_weather', input: { city: 'Paris' } }]);
      const sentTools = openai.requests[0]!.body;
      assert.deepEqual(sentTools.tools, [{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: weather.input_schema } }]);
      assert.equal(sentTools.tool_choice, 'required');

      openai.script({ reply: 'Sunny in Paris.' });
      const second = await client.messages.create({
        model: 'openai:gpt-4o',
        max_tokens: 100,
        tools: [weather],
        messages: [
          { role: 'user', content: 'Weather in Paris?' },
          { role: 'assistant', content: first.content },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_abc', content: '{"sky":"sunny"}' }, { type: 'text', text: 'And briefly.' }] },
        ],
      });
      assert.deepEqual(second.content, [{ type: 'text', text: 'Sunny in Paris.' }]);
      assert.equal(second.stop_reason, 'end_turn');
      const sent = openai.requests[1]!.body.messages;
      assert.deepEqual(sent[1].tool_calls, [{ id: 'call_abc', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }]);
      assert.deepEqual(sent[2], { role: 'tool', tool_call_id: 'call_abc', content: '{"sky":"sunny"}' });
      assert.deepEqual(sent[3], { role: 'user', content: 'And briefly.' }, 'text after the tool results, which must follow the call');
    });

    test('tool use while streaming, through an Anthropic model: input_json_delta the SDK parses', async () => {
      anthropic.script({ reply: 'Checking.', toolCalls: [{ id: 'toolu_1', name: 'get_weather', arguments: '{"city":"Oslo"}' }] });
      const stream = client.messages.stream({ model: 'anthropic:claude-haiku-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'Oslo?' }], tools: [weather], tool_choice: { type: 'tool', name: 'get_weather' } });
      const json: string[] = [];
      stream.on('inputJson', (partial) => json.push(partial));
      const final = await stream.finalMessage();
      assert.deepEqual(final.content, [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } }]);
      assert.equal(final.stop_reason, 'tool_use');
      assert.deepEqual(json, ['{"city":"Oslo"}']);
      assert.deepEqual(anthropic.requests[0]!.body.tool_choice, { type: 'tool', name: 'get_weather' });
      // The tool_result goes back to the Anthropic upstream as its own block.
      anthropic.script({ reply: 'Cold.' });
      await client.messages.create({
        model: 'anthropic:claude-haiku-4-5',
        max_tokens: 100,
        tools: [weather],
        messages: [{ role: 'user', content: 'Oslo?' }, { role: 'assistant', content: final.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: '-5C' }] }] }],
      });
      const blocks = anthropic.requests[1]!.body.messages.flatMap((m: { content: unknown }) => (Array.isArray(m.content) ? m.content : []));
      assert.ok(blocks.some((b: { type: string; tool_use_id?: string }) => b.type === 'tool_result' && b.tool_use_id === 'toolu_1'), JSON.stringify(blocks));
      assert.match(JSON.stringify(blocks), /-5C/);
    });

    test('stop reasons: max_tokens, and stop_sequences cut by Parley with the sequence named, streaming or not', async () => {
      openai.script({ reply: 'Long answer', finishReason: 'length' });
      const long = await client.messages.create({ model: 'openai:gpt-4o-mini', max_tokens: 2, messages: [{ role: 'user', content: 'x' }] });
      assert.equal(long.stop_reason, 'max_tokens');

      openai.script({ reply: 'one two END three four' });
      const cut = await client.messages.create({ model: 'openai:gpt-4o-mini', max_tokens: 50, stop_sequences: ['END', 'never'], messages: [{ role: 'user', content: 'x' }] });
      assert.deepEqual(cut.content, [{ type: 'text', text: 'one two ' }]);
      assert.equal(cut.stop_reason, 'stop_sequence');
      assert.equal(cut.stop_sequence, 'END');
      assert.equal(openai.requests.at(-1)!.body.stream, true, 'with stop sequences, streamed: Parley stops the call where one matches');

      // A sequence split across chunks is still found, and text that might start one is held back until it is known.
      openai.script({ chunks: ['alpha ST', 'OP beta'] });
      const stream = client.messages.stream({ model: 'openai:gpt-4o-mini', max_tokens: 50, stop_sequences: ['STOP'], messages: [{ role: 'user', content: 'x' }] });
      const final = await stream.finalMessage();
      assert.deepEqual(final.content, [{ type: 'text', text: 'alpha ' }]);
      assert.deepEqual([final.stop_reason, final.stop_sequence], ['stop_sequence', 'STOP']);
      const u = await createUser(t);
      openai.script({ reply: 'keep this HALT drop that' });
      const own = new Anthropic({ baseURL: t.url, apiKey: (await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'k', scopes: ['chat'] } })).body.key, maxRetries: 0 });
      const metered = await own.messages.create({ model: 'openai:gpt-4o-mini', max_tokens: 50, stop_sequences: ['HALT'], messages: [{ role: 'user', content: 'x' }] });
      const events = await usageOf(u.id);
      assert.equal(events.length, 1, 'charged once');
      assert.equal(events[0]!.status, 'cancelled', 'reading stopped at the sequence, which stopped the generation');
      assert.equal(events[0]!.outputTokens, metered.usage.output_tokens, 'the answer reports what was metered');
      assert.ok(metered.usage.output_tokens > 0);

      openai.script({ chunks: ['S', 'T', 'x'] });
      const partial = await client.messages.create({ model: 'openai:gpt-4o-mini', max_tokens: 50, stop_sequences: ['STOP'], messages: [{ role: 'user', content: 'x' }] });
      assert.deepEqual([partial.content, partial.stop_reason], [[{ type: 'text', text: 'STx' }], 'end_turn']);
    });

    test('a client that hangs up mid-stream stops the upstream generation', async () => {
      openai.script({ reply: 'a b c d e f g h i j', delayMs: 100 });
      const controller = new AbortController();
      const stream = await client.messages.create({ model: 'openai:gpt-4o-mini', max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'x' }] }, { signal: controller.signal });
      let n = 0;
      await (async () => {
        for await (const e of stream) if (e.type === 'content_block_delta' && ++n === 2) controller.abort();
      })().catch(() => {});
      for (let i = 0; i < 50 && !openai.requests[0]!.aborted; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(openai.requests[0]!.aborted, true);
    });

    test('images: base64 and URL sources reach a model that can see', async () => {
      await client.messages.create({
        model: 'openai:gpt-4o-mini',
        max_tokens: 20,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is this?' },
              { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PIXEL } },
              { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
            ],
          },
        ],
      });
      assert.deepEqual(openai.requests[0]!.body.messages[0].content, [
        { type: 'text', text: 'What is this?' },
        { type: 'image_url', image_url: { url: `data:image/png;base64,${PIXEL}` } },
        { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
      ]);
      const blind = await client.messages
        .create({ model: 'local:qwen3', max_tokens: 20, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: PIXEL } }] }] })
        .catch((e) => e);
      assert.ok(blind instanceof Anthropic.BadRequestError, String(blind));
      assert.equal(blind.errorCode, 'model_cannot_see_images');
    });

    test('auth: x-api-key, Authorization: Bearer, and anthropic-version not required', async () => {
      const viaBearer = new Anthropic({ baseURL: t.url, authToken: key, apiKey: null, maxRetries: 0 });
      assert.equal((await viaBearer.messages.create({ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] })).content.length, 1);
      // The beta client (what coding agents use) adds ?beta=true and an anthropic-beta header.
      const beta = await client.beta.messages.create({ model: 'gpt-4o-mini', max_tokens: 5, betas: ['interleaved-thinking-2025-05-14'], messages: [{ role: 'user', content: 'x' }] });
      assert.equal(beta.content[0]!.type, 'text');
      const noVersion = await t.api('POST', '/v1/messages', { headers: { 'x-api-key': key }, body: { model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] } });
      assert.equal(noVersion.status, 200, noVersion.text);
      assert.equal(noVersion.body.type, 'message');
    });

    test('auth failures in Anthropic\'s format: none, a bad key, a revoked key, a key without the chat scope', async () => {
      const none = await t.api('POST', '/v1/messages', { body: { model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] } });
      assert.equal(none.status, 401);
      assert.deepEqual(Object.keys(none.body).sort(), ['error', 'request_id', 'type']);
      assert.equal(none.body.type, 'error');
      assert.equal(none.body.error.type, 'authentication_error');

      const bad = await new Anthropic({ baseURL: t.url, apiKey: 'pk_not-a-real-key', maxRetries: 0 }).messages.create({ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
      assert.ok(bad instanceof Anthropic.AuthenticationError, String(bad));
      assert.equal(bad.type, 'authentication_error');

      const other = await createUser(t);
      const made = (await t.api('POST', '/v1/api-keys', { token: other.accessToken, body: { name: 'soon revoked', scopes: ['chat'] } })).body;
      const otherClient = new Anthropic({ baseURL: t.url, apiKey: made.key, maxRetries: 0 });
      await otherClient.messages.create({ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });
      const charged = await usageOf(other.id);
      assert.deepEqual(charged.map((e) => e.apiKeyId), [made.id], "another user's key charges that user");
      assert.equal((await t.api('DELETE', `/v1/api-keys/${made.id}`, { token: other.accessToken })).status, 204);
      const revoked = await otherClient.messages.create({ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
      assert.ok(revoked instanceof Anthropic.AuthenticationError, String(revoked));

      const profileOnly = (await t.api('POST', '/v1/api-keys', { token: user.accessToken, body: { name: 'p', scopes: ['profile:read'] } })).body.key;
      const limited = await new Anthropic({ baseURL: t.url, apiKey: profileOnly, maxRetries: 0 }).messages.create({ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
      assert.ok(limited instanceof Anthropic.PermissionDeniedError, String(limited));
      assert.equal(limited.type, 'permission_error');
      assert.equal(openai.requests.length, 1, 'only the valid call reached the upstream');
    });

    test('bad input in Anthropic\'s format: malformed JSON, wrong types, missing max_tokens, unsupported blocks, a huge body, an unknown model', async () => {
      const raw = await t.api('POST', '/v1/messages', { token: key, raw: '{"model":' });
      assert.equal(raw.status, 400);
      assert.equal(raw.body.error.type, 'invalid_request_error');
      assert.equal(raw.body.error.details.error_code, 'malformed_json', 'the same stable code as every other route');

      const cases: Array<[Record<string, unknown>, RegExp]> = [
        [{ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }, /max_tokens/],
        [{ model: 'gpt-4o-mini', max_tokens: 'ten', messages: [{ role: 'user', content: 'x' }] }, /max_tokens/],
        [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [] }, /messages/],
        [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'system', content: 'x' }] }, /messages\.0\.role/],
        [{ model: 'gpt-4o-mini', max_tokens: 5, temperature: 1.5, messages: [{ role: 'user', content: 'x' }] }, /temperature/],
        [{ model: 'gpt-4o-mini', max_tokens: 5, top_p: 2, messages: [{ role: 'user', content: 'x' }] }, /^top_p: /],
        [{ model: 'gpt-4o-mini', max_tokens: 5, top_p: 'x', messages: [{ role: 'user', content: 'x' }] }, /^top_p: /],
        [{ model: 'gpt-4o-mini', max_tokens: 5, top_k: 0, messages: [{ role: 'user', content: 'x' }] }, /^top_k: /],
        [{ model: 'gpt-4o-mini', max_tokens: 5, top_k: 2.5, messages: [{ role: 'user', content: 'x' }] }, /^top_k: /],
        [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'document', source: {} }] }] }, /unsupported content block/],
        [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'web_search_20250305', name: 'web_search' }] }, /tools\.0/],
        [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'tool_use', id: 'a', name: 'b', input: {} }] }] }, /user messages cannot contain tool_use/],
        [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'a', content: [{ type: 'image', source: { type: 'url', url: 'https://example.com/a.png' } }] }] }] }, /images in tool results are not supported/],
        [{ model: 'gpt-4o-mini', max_tokens: 5, system: [{ type: 'image' }], messages: [{ role: 'user', content: 'x' }] }, /^system: /],
        [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: [] }] }, /^messages\.0\.content: .*>=1/],
        [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'not base64!' } }] }] }, /base64/],
        // Tool turns pair up as Anthropic requires, whatever the provider: a lenient one answered these, OpenAI refused them only after every link was tried.
        [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_none', content: 'x' }] }] }, /^messages\.0\.content\.0: unexpected tool_use_id .*toolu_none/],
        [
          { model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'Weather?' }, { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: {} }] }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_2', content: 'x' }] }] },
          /^messages\.1: tool_use ids were found without tool_result blocks immediately after: toolu_1\./,
        ],
        [
          { model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'Weather?' }, { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: {} }] }, { role: 'user', content: 'Never mind.' }] },
          /^messages\.1: tool_use ids were found without tool_result blocks/,
        ],
        [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'x' }], tools: [weather], tool_choice: { type: 'tool', name: 'get_time' } }, /^tool_choice\.name: no tool named "get_time"/],
        // Each chunk's held-back tail is matched against every sequence's start: a 40,000-character sequence cost 0.46 s of CPU for one answer.
        [{ model: 'gpt-4o-mini', max_tokens: 5, stop_sequences: ['ab'.repeat(129)], messages: [{ role: 'user', content: 'x' }] }, /^stop_sequences\.0: /],
      ];
      for (const [body, pattern] of cases) {
        const err = await client.messages.create(body as never).catch((e) => e);
        assert.ok(err instanceof Anthropic.BadRequestError, `${JSON.stringify(body)}: ${err}`);
        assert.equal(err.type, 'invalid_request_error');
        assert.match(err.apiMessage ?? '', pattern);
      }

      // The SDK itself refuses a non-streamed call this long, so this one goes as plain HTTP.
      const tooLong = await t.api('POST', '/v1/messages', { headers: { 'x-api-key': key }, body: { model: 'gpt-4o-mini', max_tokens: 2_000_000, messages: [{ role: 'user', content: 'x' }] } });
      assert.equal(tooLong.status, 400);
      assert.equal(tooLong.body.error.type, 'invalid_request_error');
      assert.match(tooLong.body.error.message, /^max_tokens: /);

      const huge = await client.messages.create({ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'x'.repeat(4 * MiB) }] }).catch((e) => e);
      assert.equal(huge.status, 413);
      assert.equal(huge.type, 'request_too_large');
      assert.equal(huge.errorCode, 'body_too_large');
      const hugeCount = await client.messages.countTokens({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(4 * MiB) }] }).catch((e) => e);
      assert.equal(hugeCount.status, 413);
      assert.equal(hugeCount.type, 'request_too_large');

      const unknown = await client.messages.create({ model: 'nope:nothing', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
      assert.ok(unknown instanceof Anthropic.NotFoundError, String(unknown));
      assert.equal(unknown.type, 'not_found_error');
      assert.equal(unknown.errorCode, 'model_not_found');
      assert.equal(openai.requests.length + anthropic.requests.length, 0, 'nothing reached an upstream');
    });

    test('a budget with no room is a 402 billing_error before any upstream call', async () => {
      const u = await createUser(t);
      const made = (await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'capped', scopes: ['chat'] } })).body;
      const budget = await t.api('PUT', '/v1/budgets', { token: u.accessToken, body: { scope: 'api_key', subjectId: made.id, period: 'day', limitUsd: 0.000001 } });
      assert.equal(budget.status, 200, budget.text);
      const err = await new Anthropic({ baseURL: t.url, apiKey: made.key, maxRetries: 0 }).messages.create({ model: 'openai:gpt-4o-mini', max_tokens: 4000, messages: [{ role: 'user', content: 'word '.repeat(2000) }] }).catch((e) => e);
      assert.equal(err.status, 402, String(err));
      assert.equal(err.type, 'billing_error');
      assert.equal(err.errorCode, 'budget_exceeded');
      assert.equal(openai.requests.length, 0);
    });

    test('a fallback chain: the next link answers when the first fails before its first token', async () => {
      anthropic.script({ status: 529 });
      openai.script({ reply: 'Fallback answered.' });
      const message = await client.messages.create({ model: 'anthropic:claude-sonnet-4-5,openai:gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: 'x' }] });
      assert.equal(message.model, 'openai:gpt-4o-mini');
      assert.deepEqual(message.content, [{ type: 'text', text: 'Fallback answered.' }]);
    });

    test('an upstream failing before its first token is an HTTP error status, streaming or not', async () => {
      for (const stream of [false, true]) {
        openai.script({ status: 500 });
        const err = await client.messages.create({ model: 'openai:gpt-4o-mini', max_tokens: 20, stream, messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
        assert.ok(err instanceof Anthropic.InternalServerError, `stream ${stream}: ${err}`);
        assert.equal(err.status, 502);
        assert.equal(err.type, 'api_error');
        assert.equal(err.errorCode, 'all_providers_failed');
      }
    });

    test('an upstream breaking mid-stream is an error event after the partial text, and the call is charged once', async () => {
      const u = await createUser(t);
      const made = (await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'k', scopes: ['chat'] } })).body;
      const own = new Anthropic({ baseURL: t.url, apiKey: made.key, maxRetries: 0 });
      for (const [model, fake] of [['openai:gpt-4o-mini', openai], ['anthropic:claude-haiku-4-5', anthropic]] as const) {
        fake.script({ reply: 'one two three four', cutAfter: 2 });
        const stream = await own.messages.create({ model, max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'x' }] });
        let text = '';
        const err = await (async () => {
          for await (const e of stream) if (e.type === 'content_block_delta' && e.delta.type === 'text_delta') text += e.delta.text;
        })().catch((e) => e);
        assert.equal(text, 'one two ', model);
        assert.ok(err instanceof Anthropic.APIError, `${model}: ${err}`);
        assert.equal(err.type, 'api_error');
        assert.equal(err.errorCode, 'stream_interrupted');
      }
      const events = await usageOf(u.id);
      assert.equal(events.length, 2, 'one usage event per call');
      assert.ok(events.every((e) => e.status === 'failed' && e.outputTokens > 0), JSON.stringify(events));
    });

    test('count_tokens counts the prompt, tools included, without calling a model', async () => {
      const short = await client.messages.countTokens({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Hello there' }] });
      const long = await client.messages.countTokens({ model: 'gpt-4o-mini', system: 'Be brief.', messages: [{ role: 'user', content: 'Hello there, '.repeat(20) }], tools: [weather] });
      assert.ok(short.input_tokens > 0);
      assert.ok(long.input_tokens > short.input_tokens + 40);
      const pending = await client.messages.countTokens({ model: 'gpt-4o-mini', tools: [weather], messages: [{ role: 'user', content: 'Weather?' }, { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } }] }] });
      assert.ok(pending.input_tokens > 0, 'a turn whose tool has not run yet is counted');
      const unknown = await client.messages.countTokens({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
      assert.ok(unknown instanceof Anthropic.NotFoundError);
      assert.equal(openai.requests.length, 0);
    });

    test('output_config.format reaches an OpenAI upstream as response_format json_schema, streamed and not; parse() reads the JSON text block', async () => {
      const format = zodOutputFormat(Weather);
      openai.script({ reply: JSON.stringify(paris) });
      const message = await client.messages.parse({ model: 'openai:gpt-4o-mini', max_tokens: 100, messages: [{ role: 'user', content: 'Weather in Paris?' }], output_config: { format } });
      assert.deepEqual(message.content.map((b) => b.type), ['text']);
      assert.deepEqual(message.parsed_output, paris);
      // Not strict: Anthropic's schemas may leave properties optional, which OpenAI's strict mode refuses.
      const wire = { type: 'json_schema', json_schema: { name: 'response', schema: JSON.parse(JSON.stringify(format.schema)) } };
      assert.deepEqual(openai.requests[0]!.body.response_format, wire);

      openai.script({ reply: JSON.stringify(paris) });
      const stream = client.messages.stream({ model: 'openai:gpt-4o-mini', max_tokens: 100, messages: [{ role: 'user', content: 'Weather in Paris?' }], output_config: { format } });
      let text = '';
      stream.on('text', (delta) => (text += delta));
      const final = await stream.finalMessage();
      assert.deepEqual(JSON.parse(text), paris);
      assert.deepEqual(final.parsed_output, paris);
      assert.equal(openai.requests[1]!.body.stream, true);
      assert.deepEqual(openai.requests[1]!.body.response_format, wire);

      // The beta's name, which older SDKs send (this one turns it into output_config.format), with its header: the same.
      openai.script({ reply: '{"city":"Oslo"}' });
      const beta = await t.api('POST', '/v1/messages', {
        headers: { 'x-api-key': key, 'anthropic-beta': 'structured-outputs-2025-11-13' },
        body: { model: 'local:qwen3', max_tokens: 20, messages: [{ role: 'user', content: 'Where?' }], output_format: { type: 'json_schema', schema: citySchema } },
      });
      assert.equal(beta.status, 200, beta.text);
      assert.deepEqual(beta.body.content, [{ type: 'text', text: '{"city":"Oslo"}' }]);
      assert.deepEqual(openai.requests[2]!.body.response_format, { type: 'json_schema', json_schema: { name: 'response', schema: citySchema } });

      // Without it (or with a null format), the body is what it was: only response_format differs.
      for (const [i, extra] of [{}, { output_config: { format: null, effort: 'low' } }, { output_format: null }].entries()) {
        openai.reset();
        const asked = { model: 'openai:gpt-4o-mini', max_tokens: 100, messages: [{ role: 'user' as const, content: 'Weather?' }] };
        for (const stream of [false, true]) {
          await client.messages.create({ ...asked, ...(extra as {}), stream } as Anthropic.MessageCreateParams);
          await client.messages.create({ ...asked, output_config: { format: { type: 'json_schema', schema: citySchema } }, stream } as Anthropic.MessageCreateParams);
        }
        const [plain, formatted, plainStreamed, formattedStreamed] = openai.requests.map((r) => r.body);
        assert.equal('response_format' in plain, false, `case ${i}`);
        assert.equal('response_format' in plainStreamed, false, `case ${i}`);
        const { response_format: _, ...rest } = formatted;
        const { response_format: __, ...restStreamed } = formattedStreamed;
        assert.deepEqual(plain, rest, `case ${i}`);
        assert.deepEqual(plainStreamed, restStreamed, `case ${i}`);
      }
    });

    test('output_config.format to an Anthropic link reaches Anthropic as its structured output, streamed and not; a body without it sends none', async () => {
      const format = zodOutputFormat(Weather);
      for (const stream of [false, true]) {
        anthropic.reset();
        anthropic.script({ reply: JSON.stringify(paris) });
        const params = { model: 'anthropic:claude-haiku-4-5', max_tokens: 100, messages: [{ role: 'user' as const, content: 'Weather in Paris?' }], output_config: { format } };
        const message = stream ? await client.messages.stream(params).finalMessage() : await client.messages.parse(params);
        assert.deepEqual(message.content, [{ type: 'text', text: JSON.stringify(paris) }], `stream: ${stream}`);
        assert.deepEqual(message.parsed_output, paris, `stream: ${stream}`);
        const sent = anthropic.requests[0]!.body;
        assert.equal(sent.output_config?.format?.type, 'json_schema', JSON.stringify(sent));
        assert.deepEqual(sent.output_config.format.schema.properties, JSON.parse(JSON.stringify(format.schema)).properties);
        assert.equal(sent.tools, undefined, 'its own structured output, not a forced tool');

        anthropic.script({ reply: 'Free text.' });
        await client.messages.create({ model: 'anthropic:claude-haiku-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'Weather in Paris?' }], stream } as Anthropic.MessageCreateParams);
        assert.equal(anthropic.requests[1]!.body.output_config, undefined, `stream: ${stream}`);
      }
    });

    test('a malformed output_config.format (or output_format, or both) is a 400 naming it, before any upstream call, on both routes', async () => {
      const asked = { model: 'openai:gpt-4o-mini', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] };
      const cases: Array<[Record<string, unknown>, RegExp]> = [
        [{ output_config: { format: { type: 'json_object' } } }, /^output_config\.format\.type: /],
        [{ output_config: { format: { type: 'json_schema' } } }, /^output_config\.format\.schema: /],
        [{ output_config: { format: { type: 'json_schema', schema: [] } } }, /^output_config\.format\.schema: /],
        [{ output_config: { format: { type: 'json_schema', schema: 'object' } } }, /^output_config\.format\.schema: /],
        [{ output_config: { format: 'json' } }, /^output_config\.format: /],
        [{ output_config: 'json' }, /^output_config: /],
        [{ output_format: { type: 'text' } }, /^output_format\.type: /],
        [{ output_format: { type: 'json_schema', schema: citySchema }, output_config: { format: { type: 'json_schema', schema: citySchema } } }, /^output_format: both output_format and output_config\.format/],
      ];
      for (const [extra, pattern] of cases) {
        for (const path of ['/v1/messages', '/v1/messages/count_tokens']) {
          const res = await t.api('POST', path, { headers: { 'x-api-key': key }, body: { ...asked, ...extra } });
          assert.equal(res.status, 400, `${path} ${JSON.stringify(extra)}: ${res.text}`);
          assert.equal(res.body.type, 'error');
          assert.equal(res.body.error.type, 'invalid_request_error');
          assert.match(res.body.error.message, pattern, `${path} ${JSON.stringify(extra)}`);
        }
      }
      const viaSdk = await client.messages.create({ ...asked, output_config: { format: { type: 'json_schema' } as never } } as Anthropic.MessageCreateParamsNonStreaming).catch((e) => e);
      assert.ok(viaSdk instanceof Anthropic.BadRequestError, String(viaSdk));
      assert.match(viaSdk.apiMessage ?? '', /^output_config\.format\.schema: /);
      assert.equal(openai.requests.length, 0);
    });

    test('count_tokens takes output_config.format and counts its schema as JSON text, as Anthropic adds a system prompt for it', async () => {
      const asked = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Weather in Paris?' }] };
      const plain = await client.messages.countTokens(asked);
      const format = { type: 'json_schema' as const, schema: citySchema };
      const formatted = await client.messages.countTokens({ ...asked, output_config: { format } });
      const schemaTokens = countTextTokens('gpt-4o-mini', JSON.stringify(citySchema));
      assert.equal(formatted.input_tokens, plain.input_tokens + schemaTokens);
      const beta = await t.api('POST', '/v1/messages/count_tokens', { headers: { 'x-api-key': key }, body: { ...asked, output_format: format } });
      assert.equal(beta.status, 200, beta.text);
      assert.equal(beta.body.input_tokens, formatted.input_tokens);
      assert.equal(openai.requests.length, 0);
    });

    /**
     * A /health request made as the first count of a long text starts (on its thread, the caller waiting), and the order in which it is
     * answered and that count ends: the health first when the count leaves the event loop free.
     */
    function healthDuringLongCount() {
      const { tokens } = t.services.ai;
      const { count } = tokens;
      const order: string[] = [];
      let health: Promise<unknown> | undefined;
      tokens.count = async (model, texts, signal) => {
        const long = !health && texts.reduce((n, text) => n + text.length, 0) > INLINE_CHARS;
        if (long) health = t.api('GET', '/health').then((r) => order.push(`health ${r.status}`));
        const n = await count.call(tokens, model, texts, signal);
        if (long) order.push('counted');
        return n;
      };
      return {
        order: async () => (await health, order),
        restore: () => void (tokens.count = count),
      };
    }
    const longPrompt: ChatMessage[] = [{ role: 'user', content: 'All work and no play. '.repeat(100_000) }];

    test('streaming: message_start\'s estimate of a long prompt is counted off the event loop, as tokens.ts counts it', async () => {
      openai.script({ reply: 'Short answer.', usage: { input: 7, output: 2 } });
      const watch = healthDuringLongCount();
      try {
        const raw = await t.api('POST', '/v1/messages', { token: key, body: { model: 'openai:gpt-4o-mini', max_tokens: 10, stream: true, messages: longPrompt } });
        assert.equal(raw.status, 200, raw.text);
        const start = sseEvents(raw.text).find((e) => e.name === 'message_start')!;
        assert.equal(start.data.message.usage.input_tokens, countPromptTokens('gpt-4o-mini', longPrompt));
        assert.deepEqual(await watch.order(), ['health 200', 'counted']);
      } finally {
        watch.restore();
      }
    });

    test('a provider that reports no usage: a long prompt is counted off the event loop, and billed as tokens.ts counts it', async () => {
      openai.script({ reply: 'Counted here.', noUsage: true });
      const watch = healthDuringLongCount();
      try {
        const message = await client.messages.create({ model: 'openai:gpt-4o-mini', max_tokens: 10, messages: longPrompt as Anthropic.MessageParam[] });
        assert.deepEqual(message.usage, { ...message.usage, input_tokens: countPromptTokens('gpt-4o-mini', longPrompt), output_tokens: countTextTokens('gpt-4o-mini', 'Counted here.') });
        assert.deepEqual(await watch.order(), ['health 200', 'counted']);
      } finally {
        watch.restore();
      }
    });

    test('a stop sequence: the usage of a long prompt is counted off the event loop, as tokens.ts counts it', async () => {
      openai.script({ chunks: ['Before ', 'STOP', ' after'], usage: { input: 7, output: 3 } });
      const watch = healthDuringLongCount();
      try {
        const message = await client.messages.create({ model: 'openai:gpt-4o-mini', max_tokens: 10, stop_sequences: ['STOP'], messages: longPrompt as Anthropic.MessageParam[] });
        assert.equal(message.stop_reason, 'stop_sequence');
        assert.equal(message.usage.input_tokens, countPromptTokens('gpt-4o-mini', longPrompt));
        assert.equal(message.usage.output_tokens, countTextTokens('gpt-4o-mini', 'Before STOP'));
        assert.deepEqual(await watch.order(), ['health 200', 'counted']);
      } finally {
        watch.restore();
      }
    });

    test('count_tokens counts a long prompt off the event loop, as tokens.ts counts it: a request made as its count starts is answered first', async () => {
      const messages: ChatMessage[] = [
        { role: 'user', content: 'All work and no play. '.repeat(100_000) },
        { role: 'assistant', content: '😀'.repeat(5_000) },
        { role: 'user', content: 'x'.repeat(20_000) },
      ];
      const { ai } = t.services;
      const { model } = ai;
      const order: string[] = [];
      let health: Promise<unknown> | undefined;
      // The route looks the model up, then counts.
      ai.model = (id) => {
        health ??= t.api('GET', '/health').then((r) => order.push(`health ${r.status}`));
        return model(id);
      };
      try {
        const counted = await client.messages.countTokens({ model: 'gpt-4o-mini', messages: messages as Anthropic.MessageParam[] });
        order.push('counted');
        await health;
        assert.deepEqual(order, ['health 200', 'counted']);
        assert.equal(counted.input_tokens, countPromptTokens('gpt-4o-mini', messages));
      } finally {
        ai.model = model;
      }
    });

    test('both routes are in /openapi.json', async () => {
      const doc = await t.api('GET', '/openapi.json');
      const post = doc.body.paths['/v1/messages'].post;
      assert.deepEqual(post.tags, ['anthropic-compatible']);
      assert.ok(post.requestBody.content['application/json'].schema);
      assert.ok(post.responses['200'].content['application/json'].schema);
      assert.ok(post.parameters.some((p: { in: string; name: string }) => p.in === 'header' && p.name === 'anthropic-version'));
      assert.ok(doc.body.paths['/v1/messages/count_tokens'].post);
    });
  });
}
