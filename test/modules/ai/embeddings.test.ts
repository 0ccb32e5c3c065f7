import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { eq } from 'drizzle-orm';
import OpenAI from 'openai';
import { usageEvents } from '../../../src/modules/usage/schema.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { startFakeAnthropic, type FakeAnthropic } from '../../support/fake-anthropic.ts';
import { fakeEmbedding } from '../../support/fake-embeddings.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

const close = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]!) < 1e-6);

/** How the odd provider gets its answer wrong. */
type Oddity = 'same-index' | 'empty-vectors' | 'short-last-batch' | 'ignores-dimensions' | 'negative-usage';

/**
 * An OpenAI-compatible embeddings server that answers 200 in the right shape but with the wrong vectors,
 * as a buggy or hostile compatible server may: `oddity.now` says how.
 */
async function startOddEmbeddings(oddity: { now: Oddity }): Promise<Server> {
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk) => (raw += chunk));
    req.on('end', () => {
      const body = JSON.parse(raw) as { input: string[]; dimensions?: number };
      const size = oddity.now === 'ignores-dimensions' ? 16 : (body.dimensions ?? 4);
      const data = body.input.map((_, index) => ({
        object: 'embedding',
        index: oddity.now === 'same-index' ? 0 : index,
        // A batch of fewer than 96 is the last one: its vectors are shorter than the first batch's.
        embedding: oddity.now === 'empty-vectors' ? [] : Array.from({ length: oddity.now === 'short-last-batch' && body.input.length < 96 ? size - 1 : size }, (_, i) => i / size),
      }));
      res.writeHead(200, { 'content-type': 'application/json' });
      const tokens = oddity.now === 'negative-usage' ? -1_000_000 : body.input.length;
      res.end(JSON.stringify({ object: 'list', data, usage: { prompt_tokens: tokens, total_tokens: tokens } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

for (const backend of backends()) {
  describe(`embeddings [${backend}]`, () => {
    let t: TestApp;
    let openai: FakeOpenAI;
    let anthropic: FakeAnthropic;
    let user: TestUser;
    let client: OpenAI;
    const oddity: { now: Oddity } = { now: 'same-index' };
    let odd: Server;

    before(async () => {
      openai = await startFakeOpenAI();
      anthropic = await startFakeAnthropic();
      odd = await startOddEmbeddings(oddity);
      const compatible = JSON.stringify([{ name: 'odd', baseUrl: `http://127.0.0.1:${(odd.address() as AddressInfo).port}/v1` }]);
      t = await startApp({ backend, env: { ...openai.env, ...anthropic.env, OPENAI_COMPATIBLE_ENDPOINTS: compatible, AI_RETRIES: '1', AI_RETRY_BASE_MS: '10', EMBEDDING_MODEL: 'openai:text-embedding-3-small' } });
      user = await createUser(t);
      const res = await t.api('POST', '/v1/api-keys', { token: user.accessToken, body: { name: 'sdk', scopes: ['chat'] } });
      client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: res.body.key, maxRetries: 0 });
    });
    after(async () => {
      await t.close();
      await openai.close();
      await anthropic.close();
      await new Promise((resolve) => odd.close(resolve));
    });
    beforeEach(() => openai.reset());

    test('the official SDK gets the upstream\'s vectors (base64 by default, and float), and usage', async () => {
      const texts = ['the cat sat on the mat', 'a dog in the fog'];
      const res = await client.embeddings.create({ model: 'openai:text-embedding-3-small', input: texts });
      assert.equal(res.object, 'list');
      assert.equal(res.model, 'openai:text-embedding-3-small');
      assert.equal(res.data.length, 2);
      for (const [i, text] of texts.entries()) assert.ok(close(res.data[i]!.embedding, fakeEmbedding(text)), `vector ${i}`);
      assert.equal(res.usage.prompt_tokens, 11);
      const sent = openai.requests.at(-1)!;
      assert.equal(sent.path, '/v1/embeddings');
      assert.deepEqual(sent.body, { model: 'text-embedding-3-small', input: texts, encoding_format: 'float' });

      const floats = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'one text', encoding_format: 'float', dimensions: 8 });
      assert.equal(floats.data[0]!.embedding.length, 8);
      assert.ok(close(floats.data[0]!.embedding, fakeEmbedding('one text', 8)));
      assert.equal(openai.requests.at(-1)!.body.dimensions, 8);
    });

    test('many inputs go up in batches, and come back in order', async () => {
      const texts = Array.from({ length: 200 }, (_, i) => `text number ${i}`);
      const res = await client.embeddings.create({ model: 'openai:text-embedding-3-small', input: texts, encoding_format: 'float' });
      assert.equal(res.data.length, 200);
      assert.deepEqual(openai.requests.map((r) => r.body.input.length), [96, 96, 8]);
      for (const i of [0, 95, 96, 199]) assert.ok(close(res.data[i]!.embedding, fakeEmbedding(texts[i]!)), `vector ${i}`);
    });

    test('a body over the general 1 MiB limit is taken: the gateway limit applies (32 MiB by default)', async () => {
      const texts = Array.from({ length: 100 }, (_, i) => `${i} ${'All work and no play. '.repeat(1_000)}`);
      assert.ok(JSON.stringify(texts).length > 2 * 1024 * 1024);
      const res = await client.embeddings.create({ model: 'openai:text-embedding-3-small', input: texts, encoding_format: 'float' });
      assert.equal(res.data.length, 100);
      assert.deepEqual(openai.requests.flatMap((r) => r.body.input), texts);
    });

    test('each call is metered as source embedding, with the model\'s price', async () => {
      const u = await createUser(t);
      const res = await t.api('POST', '/v1/embeddings', { token: u.accessToken, body: { model: 'openai:text-embedding-3-small', input: ['alpha beta gamma '.repeat(50)] } });
      assert.equal(res.status, 200, res.text);
      await t.services.usage.recorder.flush();
      const events = await t.deps.db.select().from(usageEvents).where(eq(usageEvents.userId, u.id));
      assert.equal(events.length, 1);
      assert.equal(events[0]!.source, 'embedding');
      assert.equal(events[0]!.model, 'text-embedding-3-small');
      assert.equal(events[0]!.inputTokens, 150);
      assert.equal(events[0]!.costMicros, 3); // 150 tokens at $0.02 per million
    });

    test('a batch failing after others were answered: the call is recorded with the answered batches\' tokens, which the provider billed', async () => {
      const u = await createUser(t);
      // Three batches (96, 96, 8 inputs of three words each); the third is refused, so neither retried nor answered.
      openai.script({}, {}, { status: 400, errorMessage: 'Invalid input' });
      const res = await t.api('POST', '/v1/embeddings', { token: u.accessToken, body: { model: 'openai:text-embedding-3-small', input: Array.from({ length: 200 }, (_, i) => `text number ${i}`) } });
      assert.equal(res.status, 400, res.text);
      assert.equal(openai.requests.length, 3);
      await t.services.usage.recorder.flush();
      const events = await t.deps.db.select().from(usageEvents).where(eq(usageEvents.userId, u.id));
      assert.deepEqual(events.map((e) => [e.status, e.inputTokens]), [['failed', 2 * 96 * 3]]);
    });

    test('budgets hold: over one, 402 before any upstream call', async () => {
      const u = await createUser(t);
      const key = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'capped', scopes: ['chat'] } });
      const budget = await t.api('PUT', '/v1/budgets', { token: u.accessToken, body: { scope: 'api_key', subjectId: key.body.id, period: 'day', limitUsd: 0.000001 } });
      assert.equal(budget.status, 200, budget.text);
      const res = await t.api('POST', '/v1/embeddings', { token: key.body.key, body: { model: 'openai:text-embedding-3-small', input: ['word '.repeat(2000)] } });
      assert.equal(res.status, 402, res.text);
      assert.equal(res.body.error.code, 'budget_exceeded');
      assert.equal(openai.requests.length, 0);
    });

    test('a 503 is retried; a refused input is a 400; a provider without embeddings or an unknown model is a 400', async () => {
      openai.script({ status: 503 });
      const retried = await t.api('POST', '/v1/embeddings', { token: user.accessToken, body: { model: 'openai:text-embedding-3-small', input: 'retry me' } });
      assert.equal(retried.status, 200, retried.text);
      assert.equal(openai.requests.length, 2);

      openai.reset();
      openai.script({ status: 400, errorMessage: 'This model\'s maximum context length is 8192 tokens' });
      const refused = await t.api('POST', '/v1/embeddings', { token: user.accessToken, body: { model: 'openai:text-embedding-3-small', input: 'too long' } });
      assert.equal(refused.status, 400);
      assert.equal(refused.body.error.code, 'upstream_rejected');
      assert.match(refused.body.error.message, /maximum context length/);

      for (const model of ['anthropic:claude-haiku-4-5', 'nowhere:thing', 'no-such-model']) {
        const res = await t.api('POST', '/v1/embeddings', { token: user.accessToken, body: { model, input: 'x' } });
        assert.equal(res.status, 400, `${model}: ${res.text}`);
        assert.equal(res.body.error.param, 'model');
      }
    });

    test('a large request is counted off the event loop: a request made as its count starts is answered before the count ends', async () => {
      const u = await createUser(t);
      const { limits, usage } = t.services;
      const { checkTokens } = limits;
      const { begin } = usage.metering;
      const order: string[] = [];
      let health: Promise<unknown> | undefined;
      // The route checks the caller's token window, then counts the inputs; the metered call begins once they are counted.
      limits.checkTokens = async (p) => {
        await checkTokens.call(limits, p);
        if (p.userId === u.id) health = t.api('GET', '/health').then((r) => order.push(`health ${r.status}`));
      };
      usage.metering.begin = (context, ...rest) => {
        if (context.userId === u.id) order.push('counted');
        return begin.call(usage.metering, context, ...rest);
      };
      try {
        const input = Array.from({ length: 200 }, (_, i) => `${i} ${'All work and no play. '.repeat(1_200)}`);
        const res = await t.api('POST', '/v1/embeddings', { token: u.accessToken, body: { model: 'openai:text-embedding-3-small', input } });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.body.data.length, 200);
        await health;
        assert.deepEqual(order, ['health 200', 'counted']);
      } finally {
        limits.checkTokens = checkTokens;
        usage.metering.begin = begin;
      }
    });

    test('bad bodies are 400 in OpenAI\'s error shape; a key without the chat scope is 403', async () => {
      for (const body of [{ model: 'openai:text-embedding-3-small' }, { model: 'openai:text-embedding-3-small', input: [] }, { model: 'openai:text-embedding-3-small', input: [1, 2, 3] }, { input: 'x' }, { model: 'openai:text-embedding-3-small', input: 'x', encoding_format: 'int8' }]) {
        const res = await t.api('POST', '/v1/embeddings', { token: user.accessToken, body });
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal(res.body.error.type, 'invalid_request_error');
      }
      // Over the cap, or a number among the texts: the message says what is taken, not only "Invalid input".
      for (const input of [Array.from({ length: 2049 }, () => 'x'), ['text', 1]]) {
        const res = await t.api('POST', '/v1/embeddings', { token: user.accessToken, body: { model: 'openai:text-embedding-3-small', input } });
        assert.equal(res.status, 400, res.text);
        assert.equal(res.body.error.param, 'input');
        assert.match(res.body.error.message, /list of 1 to 2048 such texts/);
      }
      const narrow = await t.api('POST', '/v1/api-keys', { token: user.accessToken, body: { name: 'models only', scopes: ['models:read'] } });
      const res = await t.api('POST', '/v1/embeddings', { token: narrow.body.key, body: { model: 'openai:text-embedding-3-small', input: 'x' } });
      assert.equal(res.status, 403);
      assert.equal(openai.requests.length, 0);
    });

    test('an answer without one well-formed vector per input is a 502, still recorded; vectors not of the size `dimensions` asked are a 400', async () => {
      const u = await createUser(t);
      const embed = (body: Record<string, unknown>) => t.api('POST', '/v1/embeddings', { token: u.accessToken, body: { model: 'odd:embed-1', ...body } });

      // Two vectors for input 0 and none for input 1: not a 500 on the hole.
      oddity.now = 'same-index';
      const twice = await embed({ input: ['a', 'b'] });
      assert.equal(twice.status, 502, twice.text);
      assert.equal(twice.body.error.code, 'malformed_response');

      oddity.now = 'empty-vectors';
      const empty = await embed({ input: ['a', 'b'] });
      assert.equal(empty.status, 502, empty.text);
      assert.equal(empty.body.error.code, 'malformed_response');

      // Each batch well formed, the last one's vectors shorter: refused, and the call that was made is on the record.
      oddity.now = 'short-last-batch';
      const mixed = await embed({ input: Array.from({ length: 100 }, (_, i) => `text ${i}`) });
      assert.equal(mixed.status, 502, mixed.text);
      assert.equal(mixed.body.error.code, 'malformed_response');

      // A server that cannot shorten its vectors ignores `dimensions`: the caller did not get the size asked for.
      oddity.now = 'ignores-dimensions';
      const ignored = await embed({ input: 'a', dimensions: 8, encoding_format: 'float' });
      assert.equal(ignored.status, 400, ignored.text);
      assert.equal(ignored.body.error.code, 'dimensions_unsupported');
      assert.equal(ignored.body.error.param, 'dimensions');
      const unasked = await embed({ input: 'a', encoding_format: 'float' });
      assert.equal(unasked.status, 200, unasked.text);
      assert.equal(unasked.body.data[0].embedding.length, 16);

      await t.services.usage.recorder.flush();
      const events = await t.deps.db.select().from(usageEvents).where(eq(usageEvents.userId, u.id));
      assert.deepEqual(events.map((e) => e.status).sort(), ['failed', 'failed', 'failed', 'failed', 'ok']);
    });

    test('a token count from the provider that is not one (negative) is counted by Parley instead: never billed or settled below zero', async () => {
      const u = await createUser(t);
      oddity.now = 'negative-usage';
      const res = await t.api('POST', '/v1/embeddings', { token: u.accessToken, body: { model: 'odd:embed-1', input: ['alpha beta gamma', 'delta'], encoding_format: 'float' } });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.usage.prompt_tokens, 4);
      await t.services.usage.recorder.flush();
      const events = await t.deps.db.select().from(usageEvents).where(eq(usageEvents.userId, u.id));
      assert.deepEqual(events.map((e) => [e.status, e.inputTokens]), [['ok', 4]]);
    });
  });
}
