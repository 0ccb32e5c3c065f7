import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { desc, eq } from 'drizzle-orm';
import OpenAI from 'openai';
import { usageEvents } from '../../../src/modules/usage/schema.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { startFakeAnthropic, type FakeAnthropic } from '../../support/fake-anthropic.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

const weather = {
  type: 'function' as const,
  function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

const MiB = 1024 * 1024;

/** A stream's text as the SDK yields it, and the error its iteration then raises. */
async function readUntilError(stream: AsyncIterable<{ choices: Array<{ delta: { content?: string | null } }> }>): Promise<{ text: string; err: any }> {
  let text = '';
  try {
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  } catch (err) {
    return { text, err };
  }
  return { text, err: undefined };
}

for (const backend of backends()) {
  describe(`OpenAI-compatible gateway [${backend}]`, () => {
    let t: TestApp;
    let openai: FakeOpenAI;
    let anthropic: FakeAnthropic;
    let user: TestUser;
    let key: string;
    let client: OpenAI;

    before(async () => {
      openai = await startFakeOpenAI();
      anthropic = await startFakeAnthropic();
      const local = JSON.stringify([{ name: 'local', baseUrl: `${openai.url}/v1`, models: ['qwen3'] }]);
      // A gateway body limit of 3 MiB: over the general 1 MiB, small enough to send a body past it.
      const limits = { GATEWAY_BODY_LIMIT_BYTES: String(3 * MiB) };
      t = await startApp({ backend, env: { ...openai.env, ...anthropic.env, OPENAI_COMPATIBLE_ENDPOINTS: local, AI_RETRIES: '0', DEFAULT_MODEL: 'openai:gpt-4o-mini', ...limits } });
      user = await createUser(t);
      const res = await t.api('POST', '/v1/api-keys', { token: user.accessToken, body: { name: 'sdk', scopes: ['chat', 'models:read'] } });
      key = res.body.key;
      client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: key, maxRetries: 0 });
    });
    after(async () => {
      await t.close();
      await openai.close();
      await anthropic.close();
    });
    beforeEach(() => {
      openai.reset();
      anthropic.reset();
    });

    test('non-streaming completion, with what the upstream received', async () => {
      openai.script({ reply: 'Hello from upstream.', usage: { input: 12, output: 4, cached: 2 } });
      const completion = await client.chat.completions.create({
        model: 'openai:gpt-4o-mini',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello!' },
          { role: 'user', content: [{ type: 'text', text: 'How are ' }, { type: 'text', text: 'you?' }] },
        ],
        temperature: 0.3,
        top_p: 0.9,
        max_completion_tokens: 64,
      });
      assert.equal(completion.object, 'chat.completion');
      assert.match(completion.id, /^chatcmpl-/);
      assert.equal(completion.model, 'openai:gpt-4o-mini');
      assert.equal(completion.choices[0]!.message.content, 'Hello from upstream.');
      assert.equal(completion.choices[0]!.finish_reason, 'stop');
      assert.deepEqual(completion.usage, { prompt_tokens: 12, completion_tokens: 4, total_tokens: 16, prompt_tokens_details: { cached_tokens: 2 } });
      const sent = openai.requests[0]!.body;
      assert.equal(sent.model, 'gpt-4o-mini');
      assert.equal(sent.stream, undefined, 'a non-streaming call asks the upstream for the whole answer');
      assert.equal(sent.temperature, 0.3);
      assert.equal(sent.top_p, 0.9);
      assert.equal(sent.max_tokens, 64);
      assert.deepEqual(sent.messages, [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello!' },
        { role: 'user', content: 'How are you?' },
      ]);
      assert.equal(openai.requests[0]!.headers.authorization, 'Bearer sk-test', "Parley's provider key upstream, never the client's");
    });

    test("a provider's token counts that are no counts (negative, fractional) are not billed: Parley counts the tokens itself", async () => {
      for (const usage of [{ input: -1_000_000, output: 4 }, { input: 12, output: 2.5 }]) {
        openai.script({ reply: 'Hello from upstream.', usage });
        const completion = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Hi there' }] });
        const u = completion.usage!;
        assert.ok(Number.isInteger(u.prompt_tokens) && u.prompt_tokens > 0 && u.prompt_tokens < 100, `counted input: ${JSON.stringify(u)}`);
        assert.ok(Number.isInteger(u.completion_tokens) && u.completion_tokens > 0 && u.completion_tokens < 100, `counted output: ${JSON.stringify(u)}`);
      }
      // Cached tokens past the input are the input's at most.
      openai.script({ reply: 'Hello from upstream.', usage: { input: 12, output: 4, cached: 50 } });
      const cached = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] });
      assert.deepEqual(cached.usage!.prompt_tokens_details, { cached_tokens: 12 });
      // As metered, not only as answered.
      await t.services.usage.recorder.flush();
      const events = await t.deps.db.select().from(usageEvents).where(eq(usageEvents.userId, user.id)).orderBy(desc(usageEvents.occurredAt)).limit(3);
      assert.equal(events.length, 3);
      for (const e of events) assert.ok(e.inputTokens > 0 && e.outputTokens > 0 && (e.costMicros ?? 0) >= 0, `no negative count or cost: ${JSON.stringify(e)}`);
    });

    test('a body over the general limit is taken up to GATEWAY_BODY_LIMIT_BYTES; past it, a 413 in OpenAI format', async () => {
      openai.script({ reply: 'Read it all.' });
      const long = 'All work and no play. '.repeat(2 * MiB / 22 + 1);
      const completion = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: long }] });
      assert.equal(completion.choices[0]!.message.content, 'Read it all.');
      assert.equal(openai.requests[0]!.body.messages[0].content.length, long.length, 'the whole message reached the upstream');

      const huge = await t.api('POST', '/v1/chat/completions', { token: key, body: { model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(4 * MiB) }] } });
      assert.equal(huge.status, 413);
      assert.deepEqual(Object.keys(huge.body), ['error']);
      assert.equal(huge.body.error.type, 'invalid_request_error');
      assert.equal(huge.body.error.code, 'body_too_large');
      const viaSdk = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(4 * MiB) }] }).catch((e) => e);
      assert.ok(viaSdk instanceof OpenAI.APIError, String(viaSdk));
      assert.equal(viaSdk.status, 413);
      assert.equal(viaSdk.code, 'body_too_large');
      assert.equal(openai.requests.length, 1);

      // Only the gateway's model calls: every other route keeps BODY_LIMIT_BYTES.
      const elsewhere = await t.api('POST', '/v1/auth/login', { body: { email: 'a@example.com', password: 'x'.repeat(2 * MiB) } });
      assert.equal(elsewhere.status, 413);
      assert.equal(elsewhere.body.code, 'body_too_large');
    });

    test('streaming with include_usage, through an Anthropic model', async () => {
      anthropic.script({ reply: 'One two three.', usage: { input: 20, output: 3 } });
      const stream = await client.chat.completions.create({
        model: 'anthropic:claude-haiku-4-5',
        messages: [{ role: 'user', content: 'Count' }],
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = '';
      const chunks = [];
      for await (const chunk of stream) {
        chunks.push(chunk);
        text += chunk.choices[0]?.delta.content ?? '';
      }
      assert.equal(text, 'One two three.');
      assert.ok(chunks.length >= 5);
      assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === 'anthropic:claude-haiku-4-5'));
      assert.equal(chunks[0]!.choices[0]!.delta.role, 'assistant');
      assert.equal(chunks.at(-2)!.choices[0]!.finish_reason, 'stop');
      const last = chunks.at(-1)!;
      assert.deepEqual(last.choices, []);
      assert.deepEqual(last.usage, { prompt_tokens: 20, completion_tokens: 3, total_tokens: 23, prompt_tokens_details: { cached_tokens: 0 } });
    });

    test('streaming without include_usage sends no usage', async () => {
      const stream = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: true });
      for await (const chunk of stream) assert.equal(chunk.usage, undefined);
    });

    test('tools: the model calls one, the client answers it, the model finishes', async () => {
      openai.script({ toolCalls: [{ id: 'call_abc', name: 'get_weather', arguments: '{"city":"Paris"}' }] });
      const first = await client.chat.completions.create({ model: 'openai:gpt-4o', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [weather], tool_choice: 'auto' });
      const message = first.choices[0]!.message;
      assert.equal(first.choices[0]!.finish_reason, 'tool_calls');
      assert.equal(message.content, null);
      assert.deepEqual(message.tool_calls, [{ id: 'call_abc', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }]);
      assert.equal(openai.requests[0]!.body.tools[0].function.name, 'get_weather');

      openai.script({ reply: 'Sunny in Paris.' });
      const second = await client.chat.completions.create({
        model: 'openai:gpt-4o',
        tools: [weather],
        messages: [{ role: 'user', content: 'Weather in Paris?' }, message, { role: 'tool', tool_call_id: 'call_abc', content: '{"sky":"sunny"}' }],
      });
      assert.equal(second.choices[0]!.message.content, 'Sunny in Paris.');
      const sent = openai.requests[1]!.body.messages;
      assert.equal(sent[1].tool_calls[0].id, 'call_abc');
      assert.deepEqual(sent[2], { role: 'tool', tool_call_id: 'call_abc', content: '{"sky":"sunny"}' });
    });

    test('tools while streaming: tool call deltas the SDK can assemble', async () => {
      anthropic.script({ toolCalls: [{ id: 'toolu_1', name: 'get_weather', arguments: '{"city":"Oslo"}' }] });
      const stream = client.chat.completions.stream({ model: 'anthropic:claude-haiku-4-5', messages: [{ role: 'user', content: 'Oslo?' }], tools: [weather], tool_choice: { type: 'function', function: { name: 'get_weather' } } });
      const final = await stream.finalChatCompletion();
      assert.deepEqual(final.choices[0]!.message.tool_calls?.map((c) => c.type === 'function' && [c.id, c.function.name, c.function.arguments]), [['toolu_1', 'get_weather', '{"city":"Oslo"}']]);
      assert.equal(final.choices[0]!.finish_reason, 'tool_calls');
      assert.deepEqual(anthropic.requests[0]!.body.tool_choice, { type: 'tool', name: 'get_weather' });
    });

    test('models list and retrieve, in OpenAI format', async () => {
      const ids = [];
      for await (const m of client.models.list()) {
        assert.equal(m.object, 'model');
        assert.ok(Number.isInteger(m.created));
        assert.equal(m.owned_by, m.id.split(':')[0]);
        ids.push(m.id);
      }
      assert.ok(ids.includes('openai:gpt-4o-mini'));
      assert.ok(ids.includes('anthropic:claude-sonnet-4-5'));
      assert.ok(!ids.some((id) => id.startsWith('mistral:')), 'unconfigured providers are not listed');
      assert.equal((await client.models.retrieve('openai:gpt-4o-mini')).id, 'openai:gpt-4o-mini');
      assert.equal((await client.models.retrieve('gpt-4o-mini')).id, 'openai:gpt-4o-mini', 'a bare name the catalog knows');
      // What GET /v1/models does not list is not found, as OpenAI answers, slashes and chains included.
      for (const id of ['openai-nope', 'openai:nope', 'openai:gpt-4o-mini,openai:gpt-4o', 'openrouter:openai/gpt-4o', 'local:org/model']) {
        const err = await client.models.retrieve(id).catch((e) => e);
        assert.ok(err instanceof OpenAI.NotFoundError, `${id}: ${err}`);
        assert.deepEqual([err.code, err.param], ['model_not_found', 'model'], id);
      }
    });

    test('a bare model name resolves through the catalog; a comma chain falls back, and the answer names the link', async () => {
      const bare = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
      assert.equal(bare.model, 'openai:gpt-4o-mini');
      const compatible = await client.chat.completions.create({ model: 'qwen3', messages: [{ role: 'user', content: 'x' }] });
      assert.equal(compatible.model, 'local:qwen3', 'an OpenAI-compatible endpoint, by its listed model name');
      assert.equal(openai.requests.at(-1)!.body.model, 'qwen3');
      anthropic.script({ status: 529 });
      openai.script({ reply: 'Fallback answered.' });
      const chained = await client.chat.completions.create({ model: 'anthropic:claude-sonnet-4-5,openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
      assert.equal(chained.model, 'openai:gpt-4o-mini');
      assert.equal(chained.choices[0]!.message.content, 'Fallback answered.');
      assert.equal(anthropic.requests.length, 1);
      // Each link once, however often it is named; at most nine (each one a full request upstream when those before fail).
      anthropic.script({ status: 529 });
      openai.script({ reply: 'Once.' });
      const repeated = await client.chat.completions.create({ model: 'anthropic:claude-sonnet-4-5,anthropic:claude-sonnet-4-5,openai:gpt-4o-mini', models: ['anthropic:claude-sonnet-4-5'], messages: [{ role: 'user', content: 'x' }] } as never);
      assert.equal(repeated.choices[0]!.message.content, 'Once.');
      assert.equal(anthropic.requests.length, 2, 'the repeated link was tried once');
      for (const model of [Array.from({ length: 10 }, (_, i) => `openai:m${i}`).join(','), 'openai:m,'.repeat(100_000)]) {
        const long = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
        assert.ok(long instanceof OpenAI.BadRequestError, String(long).slice(0, 200));
        assert.equal(long.param, 'model');
        assert.match(long.message, /at most 9 models/);
      }
      assert.equal(openai.requests.filter((r) => /^m\d*$/.test(r.body.model)).length, 0, 'nothing sent');
    });

    test('a bad key is an AuthenticationError; a key without the scope a PermissionDeniedError', async () => {
      const bad = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'pk_not-a-real-key', maxRetries: 0 });
      const err = await bad.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
      assert.ok(err instanceof OpenAI.AuthenticationError, String(err));
      assert.equal(err.status, 401);
      assert.equal(err.code, 'invalid_api_key');
      await assert.rejects(bad.models.list(), OpenAI.AuthenticationError);

      const profileOnly = (await t.api('POST', '/v1/api-keys', { token: user.accessToken, body: { name: 'p', scopes: ['profile:read'] } })).body.key;
      const limited = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: profileOnly, maxRetries: 0 });
      await assert.rejects(limited.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }), OpenAI.PermissionDeniedError);
      assert.equal(openai.requests.length, 0);
    });

    test('an access token works as well as an API key', async () => {
      const viaToken = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: user.accessToken, maxRetries: 0 });
      const r = await viaToken.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
      assert.equal(r.choices[0]!.message.content, 'Hello from fake-openai.');
    });

    test('upstream failure is an APIError with status 502, streaming or not', async () => {
      openai.script({ status: 500 }, { status: 503 });
      const err = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
      assert.ok(err instanceof OpenAI.APIError, String(err));
      assert.equal(err.status, 502);
      assert.equal(err.code, 'all_providers_failed');
      assert.equal(err.type, 'server_error');
      const streamErr = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: true }).catch((e) => e);
      assert.ok(streamErr instanceof OpenAI.APIError);
      assert.equal(streamErr.status, 502, 'an error before the first token is still an HTTP status');
    });

    test("a request every link refuses (the provider's 400) is a 400 in its words, not a 502 that SDKs send again", async () => {
      const messages = [{ role: 'user' as const, content: 'x' }];
      const model = 'openai:gpt-4o-mini,anthropic:claude-haiku-4-5';
      openai.script({ status: 400, errorMessage: "This model's maximum context length is 128000 tokens." });
      anthropic.script({ status: 400 });
      const refused = await client.chat.completions.create({ model, messages }).catch((e) => e);
      assert.ok(refused instanceof OpenAI.BadRequestError, String(refused));
      assert.equal(refused.code, 'provider_rejected');
      assert.match(refused.message, /Provider answered 400: This model's maximum context length is 128000 tokens\./);
      assert.deepEqual((refused.error as any).attempts.map((a: any) => [a.provider, a.status]), [['openai', 400], ['anthropic', 400]]);
      // One link refusing and the other failing: the providers' failure, a 502.
      openai.script({ status: 400 });
      anthropic.script({ status: 500 });
      const mixed = await client.chat.completions.create({ model, messages, stream: true }).catch((e) => e);
      assert.equal(mixed.status, 502, String(mixed));
      assert.equal(mixed.code, 'all_providers_failed');
    });

    test("a failed attempt's reason never shows the deployment's key: not the provider's 401 words, not a key-like token", async () => {
      openai.script({ status: 401, errorMessage: 'Incorrect API key provided: sk-proj-****abcd. You can find your API key at https://platform.openai.com.' });
      const denied = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
      assert.equal(denied.status, 502);
      const [attempt] = denied.error.attempts;
      assert.deepEqual([attempt.code, attempt.status], ['provider_auth_failed', 401]);
      assert.doesNotMatch(JSON.stringify(denied.error), /abcd|sk-/);
      assert.match(attempt.error, /refused this deployment's credentials/);
      openai.script({ status: 400, errorMessage: 'Bad value for key=sk-live-1234567890 in the request' });
      const rejected = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
      assert.equal(rejected.error.attempts[0].error, 'Provider answered 400: Bad value for [redacted] in the request', 'the rest of its words stay: they help the caller');
    });

    test('a stream that breaks after output started raises an APIError in the iteration, after the partial text', async () => {
      openai.script({ reply: 'one two three four', cutAfter: 2 });
      const stream = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: true });
      const { text, err } = await readUntilError(stream);
      assert.equal(text, 'one two ');
      assert.ok(err instanceof OpenAI.APIError, String(err));
      assert.equal(err.code, 'stream_interrupted');
    });

    const lastUsageEvent = async () => {
      await t.services.usage.recorder.flush();
      const [event] = await t.deps.db.select().from(usageEvents).where(eq(usageEvents.userId, user.id)).orderBy(desc(usageEvents.occurredAt)).limit(1);
      return event!;
    };

    test('an OpenAI-compatible stream is relayed as it came once the link answered: frames split across reads, Parley id and model, usage from the final chunk', async () => {
      // Pieces with JSON escapes, multi-byte characters and text that looks like a key; each frame written 29 bytes at a time.
      const pieces = ['Hé', 'llo ', '"quoted" ', 'back\\slash ', '😀 ', '"model":"x", ', '"id":"y" ', 'end.'];
      openai.script({ chunks: pieces, delayMs: 5, splitFramesAt: 29, usage: { input: 9, output: 8 } });
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'relay' }], stream: true, stream_options: { include_usage: true } });
      const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
      for await (const chunk of stream) chunks.push(chunk);
      assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), pieces.join(''));
      assert.match(chunks[0]!.id, /^chatcmpl-/);
      assert.ok(chunks.every((c) => c.id === chunks[0]!.id && c.model === 'openai:gpt-4o-mini' && c.object === 'chat.completion.chunk'));
      assert.ok(chunks.some((c) => c.system_fingerprint === 'fp_fake'), "relayed chunks keep the rest of the upstream's chunk");
      assert.ok(chunks.slice(0, -1).every((c) => c.usage === null));
      assert.equal(chunks.at(-2)!.choices[0]!.finish_reason, 'stop');
      assert.deepEqual(chunks.at(-1)!.usage, { prompt_tokens: 9, completion_tokens: 8, total_tokens: 17, prompt_tokens_details: { cached_tokens: 0 } });
      assert.equal(openai.requests[0]!.body.stream, true);
      const event = await lastUsageEvent();
      assert.deepEqual([event.status, event.provider, event.model, event.inputTokens, event.outputTokens], ['ok', 'openai', 'gpt-4o-mini', 9, 8]);
    });

    test('NULs the model emits are dropped, from relayed frames as from whole answers', async () => {
      openai.script({ chunks: ['a', 'b\u0000c', '\u0000', 'd'], delayMs: 5 });
      const stream = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: true });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      assert.equal(text, 'abcd');
      openai.script({ chunks: ['a', 'b\u0000c'] });
      const whole = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
      assert.equal(whole.choices[0]!.message.content, 'abc');
    });

    test('half a surrogate pair the model emits is U+FFFD in relayed frames; a pair split between two chunks is joined', async () => {
      openai.script({ chunks: ['Hello ', 'wor\udc00ld ', 'smile \ud83d', '\ude00 ', 'x\ud800'], delayMs: 5 });
      const stream = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: true });
      const deltas: string[] = [];
      for await (const chunk of stream) deltas.push(chunk.choices[0]?.delta.content ?? '');
      assert.ok(deltas.every((d) => d.isWellFormed()), JSON.stringify(deltas));
      assert.equal(deltas.join(''), 'Hello wor\ufffdld smile \u{1f600} x\ufffd');
    });

    test('a non-streaming answer comes whole from the upstream: its text exactly, the usage it reported, metered once', async () => {
      openai.script({ chunks: ['First, ', 'sécond, ', 'third ', '"and" ', 'back\\slash 😀'], usage: { input: 5, output: 5 } });
      const completion = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
      assert.equal(completion.choices[0]!.message.content, 'First, sécond, third "and" back\\slash 😀');
      assert.equal(completion.model, 'openai:gpt-4o-mini');
      assert.deepEqual(completion.usage, { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10, prompt_tokens_details: { cached_tokens: 0 } });
      assert.equal(openai.requests[0]!.body.stream, undefined);
      const event = await lastUsageEvent();
      assert.deepEqual([event.status, event.provider, event.inputTokens, event.outputTokens], ['ok', 'openai', 5, 5]);
    });

    test('a whole answer the upstream cuts off is a 502 in OpenAI format, metered as failed', async () => {
      openai.script({ reply: 'never whole', cutAfter: 0 });
      const err = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
      assert.ok(err instanceof OpenAI.APIError, String(err));
      assert.equal(err.status, 502);
      assert.equal(err.code, 'all_providers_failed');
      assert.match(err.message, /connection_lost/);
      const event = await lastUsageEvent();
      assert.deepEqual([event.status, event.outputTokens], ['failed', 0]);
    });

    test('a relayed stream without include_usage carries no usage; tool calls after relayed text arrive once, whole', async () => {
      openai.script({ reply: 'Let me look that up.', delayMs: 5 });
      const stream = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: true });
      let text = '';
      for await (const chunk of stream) {
        assert.equal('usage' in chunk, false);
        text += chunk.choices[0]?.delta.content ?? '';
      }
      assert.equal(text, 'Let me look that up.');

      openai.script({ reply: 'Checking the weather.', delayMs: 5, toolCalls: [{ id: 'call_w', name: 'get_weather', arguments: '{"city":"Rome"}' }] });
      const final = await client.chat.completions.stream({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Rome?' }], tools: [weather] }).finalChatCompletion();
      assert.equal(final.choices[0]!.message.content, 'Checking the weather.');
      assert.deepEqual(final.choices[0]!.message.tool_calls?.map((c) => c.type === 'function' && [c.id, c.function.name, c.function.arguments]), [['call_w', 'get_weather', '{"city":"Rome"}']]);
      assert.equal(final.choices[0]!.finish_reason, 'tool_calls');
    });

    test('a relayed stream that breaks ends in an error the SDK raises, and its relayed text is metered', async () => {
      openai.script({ reply: 'one two three four five six', delayMs: 5, cutAfter: 4 });
      const stream = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: true });
      const { text, err } = await readUntilError(stream);
      assert.equal(text, 'one two three four ');
      assert.ok(err instanceof OpenAI.APIError, String(err));
      assert.equal(err.code, 'stream_interrupted');
      const event = await lastUsageEvent();
      assert.equal(event.status, 'failed');
      assert.ok(event.outputTokens >= 4, `output counted from the relayed text (${event.outputTokens})`);
    });

    test('stop sequences reach the provider (OpenAI `stop`, Anthropic `stop_sequences`): the answer ends before the first, streaming or not', async () => {
      openai.script({ reply: 'One. Two. Three. Four.' });
      const whole = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Count' }], stop: ['Four', 'Three'] });
      assert.equal(whole.choices[0]!.message.content, 'One. Two. ');
      assert.equal(whole.choices[0]!.finish_reason, 'stop');
      assert.deepEqual(openai.requests[0]!.body.stop, ['Four', 'Three']);
      // Relayed frames: the upstream stopped, so there is nothing after the sequence to relay.
      openai.script({ reply: 'One. Two. Three. Four.' });
      const stream = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Count' }], stop: 'Four', stream: true });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      assert.equal(text, 'One. Two. Three. ');
      assert.deepEqual(openai.requests[1]!.body.stop, ['Four'], 'one string is a list of one');

      anthropic.script({ reply: 'One. Two. Three.' });
      const claude = await client.chat.completions.create({ model: 'anthropic:claude-haiku-4-5', messages: [{ role: 'user', content: 'Count' }], stop: 'Two' });
      assert.equal(claude.choices[0]!.message.content, 'One. ');
      assert.equal(claude.choices[0]!.finish_reason, 'stop');
      assert.deepEqual(anthropic.requests[0]!.body.stop_sequences, ['Two']);

      for (const stop of [['a', 'b', 'c', 'd', 'e'], '', [''], 5]) {
        const bad = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stop: stop as never }).catch((e) => e);
        assert.ok(bad instanceof OpenAI.BadRequestError, `stop ${JSON.stringify(stop)}: ${bad}`);
        assert.equal(bad.param?.split('.')[0], 'stop');
      }
      assert.equal(openai.requests.length, 2);
    });

    test("max_tokens above a link's model's most asks that link for its most; past Parley's ceiling a 400 on the param", async () => {
      // gpt-4o-mini takes 16,384 output tokens, claude-haiku-4-5 64,000 (the catalog); the first link fails, the second answers.
      openai.script({ status: 500 });
      anthropic.script({ reply: 'Fine.' });
      const completion = await client.chat.completions.create({ model: 'openai:gpt-4o-mini,anthropic:claude-haiku-4-5', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 100_000 });
      assert.equal(completion.choices[0]!.message.content, 'Fine.');
      assert.equal(openai.requests[0]!.body.max_tokens, 16_384);
      assert.equal(anthropic.requests[0]!.body.max_tokens, 64_000);
      openai.script({ reply: 'Short.' });
      await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 50 });
      assert.equal(openai.requests[1]!.body.max_tokens, 50, 'a bound within the model is sent as asked');
      for (const field of ['max_tokens', 'max_completion_tokens'] as const) {
        const bad = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], [field]: 1e12 }).catch((e) => e);
        assert.ok(bad instanceof OpenAI.BadRequestError, `${field}: ${bad}`);
        assert.equal(bad.param, field);
      }
      assert.equal(openai.requests.length, 2);
    });

    test('unknown models are a NotFoundError naming the model param; bad input a BadRequestError, OpenAI-shaped', async () => {
      const err = await client.chat.completions.create({ model: 'nope:nothing', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
      assert.ok(err instanceof OpenAI.NotFoundError, String(err));
      assert.equal(err.param, 'model');
      assert.equal(err.code, 'model_not_found');
      const bad = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [] }).catch((e) => e);
      assert.ok(bad instanceof OpenAI.BadRequestError, String(bad));
      assert.equal(bad.param, 'messages');
      const raw = await t.api('POST', '/v1/chat/completions', { token: key, raw: '{"model":' });
      assert.equal(raw.status, 400);
      assert.deepEqual(Object.keys(raw.body), ['error']);
      assert.deepEqual(Object.keys(raw.body.error).sort(), ['code', 'message', 'param', 'type']);
      assert.equal(raw.body.error.code, 'malformed_json', 'the same stable code as every other route');
      const xml = await fetch(`${t.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/xml' }, body: '<a/>' });
      assert.equal(xml.status, 415);
      assert.equal(((await xml.json()) as { error: { code: string } }).error.code, 'unsupported_media_type');
      // An empty array of parts is not an empty turn sent on; a malformed image part says what is wrong, and where.
      const empty = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: [] }] }).catch((e) => e);
      assert.ok(empty instanceof OpenAI.BadRequestError, String(empty));
      assert.equal(empty.code, 'validation_failed');
      assert.equal(empty.param, 'messages.0.content');
      const badImage = await client.chat.completions
        .create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'first' }, { role: 'user', content: [{ type: 'text', text: 'see' }, { type: 'image_url', image_url: { url: 5 as never } }] }] })
        .catch((e) => e);
      assert.ok(badImage instanceof OpenAI.BadRequestError, String(badImage));
      assert.equal(badImage.param, 'messages.1.content.1');
      assert.match(badImage.message, /malformed "image_url" part \(image_url\.url must be a non-empty string\)/);
      // An image no provider could take is the caller's 400, at the door: it used to fail each link as the provider's fault.
      for (const [url, why] of [['not a url', /not a URL/], ['ftp://example.com/a.png', /https, http or data:/], ['data:image/png;base64,!!!!', /base64/], ['data:image/png,raw', /base64/]] as const) {
        const refused = await client.chat.completions.create({ model: 'anthropic:claude-haiku-4-5', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }] }] }).catch((e) => e);
        assert.ok(refused instanceof OpenAI.BadRequestError, `${url}: ${refused}`);
        assert.equal(refused.param, 'messages.0.content.0.image_url.url');
        assert.match(refused.message, why);
      }
      // Text and images are passed on (files-in-chat.test.ts); other parts, such as audio, are refused.
      const audio = await client.chat.completions
        .create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } }] }] })
        .catch((e) => e);
      assert.ok(audio instanceof OpenAI.BadRequestError);
      assert.equal(audio.code, 'unsupported_content');
      for (const topP of [2, -0.1, 'x']) {
        const badTopP = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], top_p: topP as never }).catch((e) => e);
        assert.ok(badTopP instanceof OpenAI.BadRequestError, `top_p ${topP}: ${badTopP}`);
        assert.equal(badTopP.param, 'top_p');
        assert.equal(badTopP.code, 'validation_failed');
      }
      // At most 128 tools, as OpenAI takes them: more is the caller's 400 here, on Chat Completions and Responses alike.
      const tools = Array.from({ length: 129 }, (_, i) => ({ type: 'function' as const, function: { name: `tool_${i}`, parameters: { type: 'object', properties: {} } } }));
      const tooMany = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], tools }).catch((e) => e);
      assert.ok(tooMany instanceof OpenAI.BadRequestError, String(tooMany));
      assert.equal(tooMany.param, 'tools');
      const responseTools = tools.map((tool) => ({ type: 'function' as const, name: tool.function.name, parameters: tool.function.parameters, strict: false }));
      const tooManyResponses = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'x', tools: responseTools }).catch((e) => e);
      assert.ok(tooManyResponses instanceof OpenAI.BadRequestError, String(tooManyResponses));
      assert.equal(tooManyResponses.param, 'tools');
      assert.equal(openai.requests.length, 0);
    });

    test('a client that hangs up stops the upstream generation', async () => {
      openai.script({ reply: 'a b c d e f g h i j', delayMs: 100 });
      const controller = new AbortController();
      const stream = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: true }, { signal: controller.signal });
      let n = 0;
      await (async () => {
        for await (const _ of stream) if (++n === 3) controller.abort();
      })().catch(() => {});
      for (let i = 0; i < 50 && !openai.requests[0]!.aborted; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(openai.requests[0]!.aborted, true);
    });

    test('a client that hangs up before the first token stops the upstream call too', async () => {
      openai.script({ hang: true });
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 150);
      const req = client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: true }, { signal: controller.signal });
      await assert.rejects(req, OpenAI.APIUserAbortError);
      for (let i = 0; i < 50 && !openai.requests[0]?.aborted; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(openai.requests[0]!.aborted, true);
      const after = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
      assert.equal(after.choices[0]!.message.content, 'Hello from fake-openai.', 'the server is fine afterwards');
    });

    test("GET /v1/ai/models: Parley's catalog with limits and prices, null when unknown", async () => {
      const res = await t.api('GET', '/v1/ai/models', { token: key });
      assert.equal(res.status, 200);
      assert.equal(res.body.defaultModel, 'openai:gpt-4o-mini');
      const mini = res.body.data.find((m: { id: string }) => m.id === 'openai:gpt-4o-mini');
      assert.deepEqual(mini, { id: 'openai:gpt-4o-mini', provider: 'openai', model: 'gpt-4o-mini', contextWindow: 128000, maxOutputTokens: 16384, vision: true, pricing: { input: 0.15, output: 0.6, cachedInput: 0.075 } });
      const qwen = res.body.data.find((m: { id: string }) => m.id === 'local:qwen3');
      assert.deepEqual(qwen, { id: 'local:qwen3', provider: 'local', model: 'qwen3', contextWindow: null, maxOutputTokens: null, vision: false, pricing: null });
      const noAuth = await t.api('GET', '/v1/ai/models');
      assert.equal(noAuth.status, 401);
      assert.equal(noAuth.body.code, 'unauthorized', 'problem+json outside the OpenAI-compatible routes');
      const doc = await t.api('GET', '/openapi.json');
      assert.ok(doc.body.paths['/v1/chat/completions'].post);
      assert.ok(doc.body.paths['/v1/ai/models'].get);
    });
  });
}
