import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eq } from 'drizzle-orm';
import OpenAI from 'openai';
import { usageEvents } from '../../../src/modules/usage/schema.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import type { FakeOpenAI } from '../../support/fake-openai.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { useFakeUpstreams } from './support.ts';

const weather = {
  type: 'function' as const,
  name: 'get_weather',
  description: 'Weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  strict: false,
};
const model = 'openai:gpt-4o-mini';

/** An item as a line: its type, role and text, to compare lists whatever their ids. */
function line(item: any): string {
  if (item.type === 'message') return `${item.role}: ${item.content.map((c: any) => c.text).join('')}`;
  if (item.type === 'function_call') return `call ${item.call_id} ${item.name} ${item.arguments}`;
  if (item.type === 'function_call_output') return `output ${item.call_id}: ${item.output}`;
  return item.type;
}

for (const backend of backends()) {
  describe(`OpenAI Responses API: input items and input tokens [${backend}]`, () => {
    let t: TestApp;
    const fakes = useFakeUpstreams();
    let openai: FakeOpenAI;
    let user: TestUser;
    let client: OpenAI;
    let key: string;

    before(async () => {
      ({ openai } = fakes);
      t = await startApp({ backend, env: { ...openai.env, AI_RETRIES: '0', DEFAULT_MODEL: model } });
      user = await createUser(t);
      const res = await t.api('POST', '/v1/api-keys', { token: user.accessToken, body: { name: 'sdk', scopes: ['chat'] } });
      assert.equal(res.status, 201, res.text);
      key = res.body.key;
      client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: key, maxRetries: 0 });
    });
    after(async () => {
      await t.close();
    });

    /** Three turns continuing one another: a text answer, a tool call, and the call's output answered. */
    async function chain() {
      openai.script({ reply: 'Hi Ada.' }, { toolCalls: [{ id: 'call_w', name: 'get_weather', arguments: '{"city":"Oslo"}' }] }, { reply: 'Snow in Oslo.' });
      const first = await client.responses.create({ model, tools: [weather], input: 'I am Ada.' });
      const second = await client.responses.create({ model, tools: [weather], previous_response_id: first.id, input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Weather?' }] }] });
      const third = await client.responses.create({ model, tools: [weather], previous_response_id: second.id, input: [{ type: 'function_call_output', call_id: 'call_w', output: 'snow' }] });
      return [first, second, third] as const;
    }

    /** One page of a response's input items, as the wire has it. */
    async function page(id: string, query = '') {
      const res = await fetch(`${t.url}/v1/responses/${id}/input_items${query}`, { headers: { authorization: `Bearer ${key}` } });
      return { status: res.status, body: (await res.json()) as any };
    }

    test("input_items: a chain's earlier turns expanded, then the response's own input, each with an id; newest first by default", async () => {
      const [first, second, third] = await chain();
      const asc = await page(third.id, '?order=asc');
      assert.equal(asc.status, 200, JSON.stringify(asc.body));
      assert.deepEqual(Object.keys(asc.body).sort(), ['data', 'first_id', 'has_more', 'last_id', 'object']);
      assert.equal(asc.body.object, 'list');
      assert.deepEqual(asc.body.data.map(line), ['user: I am Ada.', 'assistant: Hi Ada.', 'user: Weather?', 'call call_w get_weather {"city":"Oslo"}', 'output call_w: snow']);
      const [ada, hi, ask, call, output] = asc.body.data;
      // Items as OpenAI lists them: a string content became a text part; each has a status.
      assert.deepEqual(ada, { id: ada.id, type: 'message', role: 'user', content: [{ type: 'input_text', text: 'I am Ada.' }], status: 'completed' });
      assert.match(ada.id, /^msg_[0-9a-f]{48}$/);
      assert.match(ask.id, /^msg_[0-9a-f]{48}$/);
      assert.match(output.id, /^fco_[0-9a-f]{48}$/);
      // The answers carried on keep the ids they were given in their response's output.
      assert.equal(hi.id, first.output[0]!.id);
      assert.equal(call.id, (second.output[0] as OpenAI.Responses.ResponseFunctionToolCall).id);
      assert.equal(new Set(asc.body.data.map((i: any) => i.id)).size, 5);
      assert.deepEqual([asc.body.first_id, asc.body.last_id, asc.body.has_more], [ada.id, output.id, false]);

      const desc = await client.responses.inputItems.list(third.id);
      assert.deepEqual(desc.data, [...asc.body.data].reverse(), 'desc is the default, the same items with the same ids');
      assert.deepEqual((await page(third.id, '?order=asc')).body, asc.body, 'the same ids on every call');

      assert.deepEqual((await page(first.id, '?order=asc')).body.data.map(line), ['user: I am Ada.']);
      assert.deepEqual((await page(second.id, '?order=asc')).body.data.map(line), ['user: I am Ada.', 'assistant: Hi Ada.', 'user: Weather?']);
      assert.equal(openai.requests.length, 3, 'nothing more went upstream');
    });

    test('input_items pages with limit and after, either way; has_more says when more are left', async () => {
      const [, , third] = await chain();
      const all = (await page(third.id, '?order=asc')).body.data;
      const ids = all.map((i: any) => i.id);

      const one = await page(third.id, '?order=asc&limit=2');
      assert.deepEqual([one.body.data.map((i: any) => i.id), one.body.first_id, one.body.last_id, one.body.has_more], [ids.slice(0, 2), ids[0], ids[1], true]);
      const two = await page(third.id, `?order=asc&limit=2&after=${one.body.last_id}`);
      assert.deepEqual([two.body.data.map((i: any) => i.id), two.body.has_more], [ids.slice(2, 4), true]);
      const three = await page(third.id, `?order=asc&limit=2&after=${two.body.last_id}`);
      assert.deepEqual([three.body.data.map((i: any) => i.id), three.body.has_more], [ids.slice(4), false]);
      const past = await page(third.id, `?order=asc&after=${ids[4]}`);
      assert.deepEqual(past.body, { object: 'list', data: [], first_id: null, last_id: null, has_more: false });

      const back = await page(third.id, `?order=desc&limit=2&after=${ids[3]}`);
      assert.deepEqual([back.body.data.map((i: any) => i.id), back.body.has_more], [[ids[2], ids[1]], true]);
      const exact = await page(third.id, '?limit=5');
      assert.equal(exact.body.has_more, false, 'a page that ends with the last item has no more after it');

      // The SDK's auto-pagination follows the cursor to the end.
      const seen: string[] = [];
      for await (const item of client.responses.inputItems.list(third.id, { order: 'asc', limit: 2 })) seen.push(item.id!);
      assert.deepEqual(seen, ids);
    });

    test('input_items after a response in the middle of the chain was deleted: the same items, the same ids', async () => {
      const [first, second, third] = await chain();
      const before = (await page(third.id)).body;
      await client.responses.delete(second.id);
      assert.deepEqual((await page(third.id)).body, before);
      await assert.rejects(client.responses.inputItems.list(second.id), OpenAI.NotFoundError);
      await client.responses.delete(first.id);
      assert.deepEqual((await page(third.id)).body, before);
    });

    test("input_items: another user's id, a missing one and a store: false one are the same 404; bad parameters a 400 on their param", async () => {
      const [, , third] = await chain();
      const other = await createUser(t);
      const intruder = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: other.accessToken, maxRetries: 0 });
      const theirs = await intruder.responses.inputItems.list(third.id).catch((e) => e);
      assert.ok(theirs instanceof OpenAI.NotFoundError, String(theirs));
      const missing = await client.responses.inputItems.list('resp_missing').catch((e) => e);
      assert.ok(missing instanceof OpenAI.NotFoundError, String(missing));
      /** The error body, the id it names left out. */
      const named = (err: any, id: string) => ({ ...err.error, message: err.error.message.replace(id, 'ID') });
      assert.deepEqual(Object.keys(named(theirs, third.id)).sort(), ['code', 'message', 'param', 'type']);
      assert.deepEqual(named(theirs, third.id), named(missing, 'resp_missing'));

      openai.script({ reply: 'Not kept.' });
      const unkept = await client.responses.create({ model, input: 'Secret', store: false });
      await assert.rejects(client.responses.inputItems.list(unkept.id), OpenAI.NotFoundError);

      for (const [query, param] of [
        ['?limit=0', 'limit'],
        ['?limit=101', 'limit'],
        ['?order=up', 'order'],
        ['?after=msg_unknown', 'after'],
      ]) {
        const bad = await page(third.id, query);
        assert.equal(bad.status, 400, query);
        assert.equal(bad.body.error.param, param, JSON.stringify(bad.body));
      }
      assert.equal((await t.api('GET', `/v1/responses/${third.id}/input_items`)).status, 401);
    });

    test("an input item's id is one `after` takes back: longer, or not a string, is a 400 on it before any upstream call (nothing to store)", async () => {
      const longest = `msg_${'a'.repeat(196)}`;
      openai.script({ reply: 'Kept.' });
      const kept = await client.responses.create({ model, input: [{ type: 'message', role: 'user', content: 'One', id: longest } as OpenAI.Responses.ResponseInputItem, { role: 'user', content: 'Two' }] });
      const first = await page(kept.id, '?order=asc&limit=1');
      assert.equal(first.body.last_id, longest);
      const next = await page(kept.id, `?order=asc&limit=1&after=${longest}`);
      assert.equal(next.status, 200, JSON.stringify(next.body));
      assert.deepEqual(next.body.data.map(line), ['user: Two']);

      const before = openai.requests.length;
      for (const id of [`${longest}a`, 5]) {
        const res = await t.api('POST', '/v1/responses', { token: key, body: { model, input: [{ role: 'user', content: 'Hi' }, { role: 'user', content: 'Too long', id }] } });
        assert.equal(res.status, 400, res.text);
        assert.equal(res.body.error.param, 'input[1].id', res.text);
      }
      assert.equal(openai.requests.length, before, 'no upstream call');
    });

    test('input_tokens counts a request as /v1/messages/count_tokens counts the same content, without calling a model or metering', async () => {
      const usage = async () => {
        await t.services.usage.recorder.flush();
        return (await t.deps.db.select().from(usageEvents).where(eq(usageEvents.userId, user.id))).length;
      };
      const metered = await usage();
      const upstream = openai.requests.length;
      // Long enough to be counted on a counting thread.
      const text = 'Hello there, '.repeat(500);
      const counted = await client.responses.inputTokens.count({ model, instructions: 'Be brief.', input: text, tools: [weather] });
      assert.equal(counted.object, 'response.input_tokens');
      const messages = await t.api('POST', '/v1/messages/count_tokens', {
        token: key,
        body: { model, system: 'Be brief.', messages: [{ role: 'user', content: text }], tools: [{ name: weather.name, description: weather.description, input_schema: weather.parameters }] },
      });
      assert.equal(messages.status, 200, messages.text);
      assert.equal(counted.input_tokens, messages.body.input_tokens);
      assert.ok(counted.input_tokens > 1000);
      // An output schema counts as its JSON text, as count_tokens counts output_config.format's.
      const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false };
      const formatted = await client.responses.inputTokens.count({ model, input: 'Where do I live?', text: { format: { type: 'json_schema', name: 'place', schema } } });
      const plain = await client.responses.inputTokens.count({ model, input: 'Where do I live?' });
      const withSchema = await t.api('POST', '/v1/messages/count_tokens', { token: key, body: { model, messages: [{ role: 'user', content: 'Where do I live?' }], output_config: { format: { type: 'json_schema', schema } } } });
      assert.equal(withSchema.status, 200, withSchema.text);
      assert.equal(formatted.input_tokens, withSchema.body.input_tokens);
      assert.ok(formatted.input_tokens > plain.input_tokens, JSON.stringify([formatted, plain]));

      const short = await client.responses.inputTokens.count({ model, input: 'Where do I live?' });
      assert.equal(short.input_tokens, (await client.responses.inputTokens.count({ input: 'Where do I live?' })).input_tokens, 'without a model, DEFAULT_MODEL counts it');
      assert.equal(openai.requests.length, upstream, 'no model was called');
      assert.equal(await usage(), metered, 'nothing metered');
    });

    test('input_tokens with previous_response_id counts the earlier turns too; an unknown model or response is a 404', async () => {
      openai.script({ reply: 'Hi Ada.' });
      const first = await client.responses.create({ model, instructions: 'Not carried over.', input: 'I am Ada.' });
      const alone = await client.responses.inputTokens.count({ model, input: 'Where do I live?' });
      const continued = await client.responses.inputTokens.count({ model, previous_response_id: first.id, input: 'Where do I live?' });
      assert.ok(continued.input_tokens > alone.input_tokens, JSON.stringify([continued, alone]));
      const messages = await t.api('POST', '/v1/messages/count_tokens', {
        token: key,
        body: { model, messages: [{ role: 'user', content: 'I am Ada.' }, { role: 'assistant', content: 'Hi Ada.' }, { role: 'user', content: 'Where do I live?' }] },
      });
      assert.equal(continued.input_tokens, messages.body.input_tokens);

      const unknownModel = await client.responses.inputTokens.count({ model: 'nope', input: 'x' }).catch((e) => e);
      assert.ok(unknownModel instanceof OpenAI.NotFoundError, String(unknownModel));
      assert.equal(unknownModel.param, 'model');
      const other = await createUser(t);
      const intruder = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: other.accessToken, maxRetries: 0 });
      for (const [as, id] of [[client, 'resp_missing'], [intruder, first.id]] as const) {
        const err = await as.responses.inputTokens.count({ model, previous_response_id: id, input: 'x' }).catch((e) => e);
        assert.ok(err instanceof OpenAI.NotFoundError, String(err));
        assert.deepEqual([err.code, err.param], ['previous_response_not_found', 'previous_response_id']);
      }
      const bad = await client.responses.inputTokens.count({ model, input: [{ type: 'function_call_output', call_id: 'nope', output: 'x' }] }).catch((e) => e);
      assert.ok(bad instanceof OpenAI.BadRequestError, String(bad));
      assert.equal(bad.param, 'input[0].call_id');
      assert.equal(openai.requests.length, 1, 'only the first response went upstream');
    });

    test('input_tokens without a model, where the deployment has no default one, is a 400 on model', async () => {
      const bare = await startApp({ backend, env: { ...openai.env, AI_RETRIES: '0' } });
      try {
        const someone = await createUser(bare);
        const err = await new OpenAI({ baseURL: `${bare.url}/v1`, apiKey: someone.accessToken, maxRetries: 0 }).responses.inputTokens.count({ input: 'x' }).catch((e) => e);
        assert.ok(err instanceof OpenAI.BadRequestError, String(err));
        assert.deepEqual([err.code, err.param], ['missing_required_parameter', 'model']);
      } finally {
        await bare.close();
      }
    });

    test('the routes are in /openapi.json', async () => {
      const doc = await t.api('GET', '/openapi.json');
      assert.ok(doc.body.paths['/v1/responses/{id}/input_items'].get);
      assert.ok(doc.body.paths['/v1/responses/input_tokens'].post);
    });
  });
}
