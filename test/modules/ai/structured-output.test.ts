import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { zodResponseFormat, zodTextFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser } from '../../support/factories.ts';
import { useFakeUpstreams } from './support.ts';

/** What the model is asked for: with zodResponseFormat, a strict schema whose objects are closed. */
const Weather = z.object({ city: z.string(), celsius: z.number() });
const paris = { city: 'Paris', celsius: 21 };

const citySchema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };

/** A format as it goes over the wire (the SDK's helpers add parsers that JSON leaves out). */
const wire = (format: object) => JSON.parse(JSON.stringify(format));

async function streamedText(stream: AsyncIterable<{ choices: Array<{ delta: { content?: string | null } }> }>) {
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  return text;
}

for (const backend of backends()) {
  describe(`Structured output through the gateway [${backend}]`, () => {
    const fakes = useFakeUpstreams();
    let t: TestApp;
    let client: OpenAI;
    let key: string;

    before(async () => {
      const { openai, anthropic } = fakes;
      const local = JSON.stringify([{ name: 'local', baseUrl: `${openai.url}/v1`, models: ['qwen3'] }]);
      // Mistral's wire format is OpenAI's: the OpenAI fake stands in for it.
      const mistral = { MISTRAL_API_KEY: 'mk', MISTRAL_BASE_URL: `${openai.url}/v1` };
      t = await startApp({ backend, env: { ...openai.env, ...anthropic.env, ...mistral, OPENAI_COMPATIBLE_ENDPOINTS: local, AI_RETRIES: '0', DEFAULT_MODEL: 'openai:gpt-4o-mini' } });
      const user = await createUser(t);
      const res = await t.api('POST', '/v1/api-keys', { token: user.accessToken, body: { name: 'sdk', scopes: ['chat'] } });
      key = res.body.key;
      client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: key, maxRetries: 0 });
    });
    after(async () => {
      await t.close();
    });

    describe('Chat Completions', () => {
      test('json_schema with strict reaches an OpenAI upstream as the client sent it, streaming and not; parse() reads the answer', async () => {
        const { openai } = fakes;
        const format = zodResponseFormat(Weather, 'weather');
        openai.script({ reply: JSON.stringify(paris) });
        const completion = await client.chat.completions.parse({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Weather in Paris?' }], response_format: format });
        assert.deepEqual(completion.choices[0]!.message.parsed, paris);
        const sent = openai.requests[0]!.body;
        assert.deepEqual(sent.response_format, wire(format));
        assert.equal(sent.response_format.json_schema.strict, true);

        openai.script({ reply: JSON.stringify(paris) });
        const text = await streamedText(await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Weather?' }], response_format: format, stream: true }));
        assert.deepEqual(JSON.parse(text), paris);
        assert.equal(openai.requests[1]!.body.stream, true);
        assert.deepEqual(openai.requests[1]!.body.response_format, wire(format));

        // A description and strict: false are passed on too.
        const described = { type: 'json_schema' as const, json_schema: { name: 'city_only', description: 'Just the city', schema: citySchema, strict: false } };
        await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Where?' }], response_format: described });
        assert.deepEqual(openai.requests[2]!.body.response_format, described);
      });

      test('json_object reaches an OpenAI-compatible server, streaming and not; text, or none, sends no response_format', async () => {
        const { openai } = fakes;
        openai.script({ reply: '{"ok":true}' });
        const whole = await client.chat.completions.create({ model: 'local:qwen3', messages: [{ role: 'user', content: 'JSON please' }], response_format: { type: 'json_object' } });
        assert.equal(whole.choices[0]!.message.content, '{"ok":true}');
        openai.script({ reply: '{"ok":true}' });
        const text = await streamedText(await client.chat.completions.create({ model: 'local:qwen3', messages: [{ role: 'user', content: 'JSON please' }], response_format: { type: 'json_object' }, stream: true }));
        assert.equal(text, '{"ok":true}');
        assert.deepEqual(openai.requests.map((r) => r.body.response_format), [{ type: 'json_object' }, { type: 'json_object' }]);

        // Without it (or as text), the body is what it always was.
        for (const extra of [{}, { response_format: { type: 'text' as const } }, { response_format: null as never }]) {
          openai.reset();
          await client.chat.completions.create({ model: 'local:qwen3', messages: [{ role: 'user', content: 'Hi' }], ...extra });
          await streamedText(await client.chat.completions.create({ model: 'local:qwen3', messages: [{ role: 'user', content: 'Hi' }], stream: true, ...extra }));
          assert.deepEqual(
            openai.requests.map((r) => r.body),
            [
              { model: 'qwen3', messages: [{ role: 'user', content: 'Hi' }] },
              { model: 'qwen3', messages: [{ role: 'user', content: 'Hi' }], stream: true, stream_options: { include_usage: true } },
            ],
            JSON.stringify(extra),
          );
        }
      });

      test('a malformed response_format is a 400 naming its param, before any upstream call', async () => {
        const { openai } = fakes;
        const cases: Array<[unknown, string]> = [
          [{ type: 'xml' }, 'response_format.type'],
          ['json', 'response_format'],
          [{ type: 'json_schema' }, 'response_format.json_schema'],
          [{ type: 'json_schema', json_schema: { name: 'a weather', schema: citySchema } }, 'response_format.json_schema.name'],
          [{ type: 'json_schema', json_schema: { name: 'w'.repeat(65), schema: citySchema } }, 'response_format.json_schema.name'],
          [{ type: 'json_schema', json_schema: { schema: citySchema } }, 'response_format.json_schema.name'],
          [{ type: 'json_schema', json_schema: { name: 'weather', schema: [] } }, 'response_format.json_schema.schema'],
          [{ type: 'json_schema', json_schema: { name: 'weather', schema: citySchema, strict: 'yes' } }, 'response_format.json_schema.strict'],
        ];
        for (const [format, param] of cases) {
          const res = await t.api('POST', '/v1/chat/completions', { token: key, body: { model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], response_format: format } });
          assert.equal(res.status, 400, `${JSON.stringify(format)}: ${res.text}`);
          assert.deepEqual(Object.keys(res.body), ['error']);
          assert.equal(res.body.error.type, 'invalid_request_error');
          assert.equal(res.body.error.param, param, JSON.stringify(format));
        }
        const viaSdk = await client.chat.completions.create({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'xml' } as never }).catch((e) => e);
        assert.ok(viaSdk instanceof OpenAI.BadRequestError, String(viaSdk));
        assert.equal(viaSdk.param, 'response_format.type');
        assert.equal(openai.requests.length, 0);
      });

      test("to Anthropic, a schema goes as its structured output, or to a model without it as a forced json tool; the client gets the JSON as text", async () => {
        const { anthropic } = fakes;
        const format = zodResponseFormat(Weather, 'weather');
        anthropic.script({ reply: JSON.stringify(paris) });
        const native = await client.chat.completions.parse({ model: 'anthropic:claude-haiku-4-5', messages: [{ role: 'user', content: 'Weather?' }], response_format: format });
        assert.deepEqual(native.choices[0]!.message.parsed, paris);
        const nativeSent = anthropic.requests[0]!.body;
        assert.equal(nativeSent.output_config?.format?.type, 'json_schema', JSON.stringify(nativeSent));
        assert.deepEqual(nativeSent.output_config.format.schema.properties, format.json_schema.schema!.properties);
        assert.equal(nativeSent.tools, undefined);

        for (const stream of [false, true]) {
          anthropic.reset();
          anthropic.script({ toolCalls: [{ name: 'json', arguments: '{"city":"Oslo"}' }] });
          // Claude Sonnet 4 has no structured output: the AI SDK forces a tool whose input is the answer.
          const body = { model: 'anthropic:claude-sonnet-4-0', messages: [{ role: 'user' as const, content: 'Where?' }], response_format: { type: 'json_schema' as const, json_schema: { name: 'city', schema: citySchema } } };
          let text: string | null;
          if (stream) text = await streamedText(await client.chat.completions.create({ ...body, stream: true }));
          else {
            const completion = await client.chat.completions.create(body);
            text = completion.choices[0]!.message.content;
            assert.equal(completion.choices[0]!.finish_reason, 'stop', 'an answer, not a tool call');
            assert.equal(completion.choices[0]!.message.tool_calls, undefined);
          }
          assert.deepEqual(JSON.parse(text!), { city: 'Oslo' }, `stream: ${stream}`);
          const sent = anthropic.requests[0]!.body;
          // Its only tool, which it must call.
          assert.deepEqual(sent.tools.map((t: any) => [t.name, t.input_schema.properties]), [['json', citySchema.properties]], JSON.stringify(sent));
          assert.equal(sent.tool_choice.type, 'any');
          assert.equal(sent.output_config, undefined);
        }
      });

      test('to Mistral (through the AI SDK): its response_format, strict as its strict mode', async () => {
        const { openai } = fakes;
        const format = zodResponseFormat(Weather, 'weather');
        openai.script({ reply: JSON.stringify(paris) });
        const completion = await client.chat.completions.parse({ model: 'mistral:mistral-small-latest', messages: [{ role: 'user', content: 'Weather?' }], response_format: format });
        assert.deepEqual(completion.choices[0]!.message.parsed, paris);
        const { name, schema } = format.json_schema;
        assert.deepEqual(openai.requests[0]!.body.response_format, { type: 'json_schema', json_schema: { name, schema, strict: true } });
        assert.equal(openai.requests[0]!.headers.authorization, 'Bearer mk');

        await client.chat.completions.create({ model: 'mistral:mistral-small-latest', messages: [{ role: 'user', content: 'JSON please' }], response_format: { type: 'json_object' } });
        assert.deepEqual(openai.requests[1]!.body.response_format, { type: 'json_object' });
      });

      test('json_object, which Anthropic cannot honour: that link fails (unsupported_parameter) before any request to Anthropic and the next answers; with no other link, a 400', async () => {
        const { openai, anthropic } = fakes;
        for (const stream of [false, true]) {
          openai.reset();
          openai.script({ reply: '{"ok":true}' });
          const body = { model: 'anthropic:claude-haiku-4-5,openai:gpt-4o-mini', messages: [{ role: 'user' as const, content: 'JSON please' }], response_format: { type: 'json_object' as const } };
          let text: string | null;
          if (stream) text = await streamedText(await client.chat.completions.create({ ...body, stream: true }));
          else {
            const fallen = await client.chat.completions.create(body);
            assert.equal(fallen.model, 'openai:gpt-4o-mini');
            text = fallen.choices[0]!.message.content;
          }
          assert.equal(text, '{"ok":true}', `stream: ${stream}`);
          assert.deepEqual(openai.requests[0]!.body.response_format, { type: 'json_object' });
        }
        // Refused before sending: Anthropic was never called (a call cut off at its first event may still bill the input).
        assert.deepEqual(anthropic.requests, []);

        for (const stream of [false, true]) {
          anthropic.script({ reply: 'Free text, not JSON.' });
          const refused = await client.chat.completions.create({ model: 'anthropic:claude-haiku-4-5', messages: [{ role: 'user', content: 'JSON please' }], response_format: { type: 'json_object' }, stream }).catch((e) => e);
          assert.ok(refused instanceof OpenAI.BadRequestError, `stream: ${stream}: ${String(refused)}`);
          assert.equal(refused.code, 'unsupported_parameter');
          assert.equal(refused.param, 'response_format');
          assert.match(refused.message, /response_format is not supported by anthropic/);
        }
        assert.deepEqual(anthropic.requests, []);
      });
    });

    describe('Responses API', () => {
      test('text.format json_schema reaches the upstream as response_format; the response echoes it, stored too; parse() reads the answer', async () => {
        const { openai } = fakes;
        const format = zodTextFormat(Weather, 'weather');
        openai.script({ reply: JSON.stringify(paris) });
        const response = await client.responses.parse({ model: 'openai:gpt-4o-mini', input: 'Weather in Paris?', text: { format } });
        assert.deepEqual(response.output_parsed, paris);
        const { type, name, schema, strict } = wire(format);
        assert.deepEqual(openai.requests[0]!.body.response_format, { type, json_schema: { name, schema, strict } });
        assert.deepEqual(response.text?.format, { type, name, description: null, schema, strict: true });
        const stored = await client.responses.retrieve(response.id);
        assert.deepEqual(stored.text?.format, response.text?.format);
      });

      test('text.format json_object, streaming, echoed by the events; json_schema to Anthropic, whose json tool answers; none: text', async () => {
        const { openai, anthropic } = fakes;
        openai.script({ reply: '{"ok":true}' });
        const stream = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'JSON please', text: { format: { type: 'json_object' } }, stream: true });
        let completed: any;
        for await (const event of stream) if (event.type === 'response.completed') completed = event.response;
        assert.equal(completed.output_text ?? completed.output[0].content[0].text, '{"ok":true}');
        assert.deepEqual(completed.text.format, { type: 'json_object' });
        assert.deepEqual(openai.requests[0]!.body.response_format, { type: 'json_object' });

        anthropic.script({ toolCalls: [{ name: 'json', arguments: '{"city":"Oslo"}' }] });
        const viaAnthropic = await client.responses.create({ model: 'anthropic:claude-sonnet-4-0', input: 'Where?', text: { format: { type: 'json_schema', name: 'city', schema: citySchema } } });
        assert.deepEqual(JSON.parse(viaAnthropic.output_text), { city: 'Oslo' });
        assert.deepEqual(anthropic.requests[0]!.body.tools.map((t: any) => t.name), ['json']);

        const plain = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'Hi' });
        assert.deepEqual(plain.text?.format, { type: 'text' });
        assert.equal('response_format' in openai.requests.at(-1)!.body, false);
      });

      test('text.format json_object, which Anthropic cannot honour: refused before sending, the 400 naming text.format as this API calls it', async () => {
        const { anthropic } = fakes;
        for (const stream of [false, true]) {
          const refused = await client.responses.create({ model: 'anthropic:claude-haiku-4-5', input: 'JSON please', text: { format: { type: 'json_object' } }, stream }).catch((e) => e);
          assert.ok(refused instanceof OpenAI.BadRequestError, `stream: ${stream}: ${String(refused)}`);
          assert.equal(refused.code, 'unsupported_parameter');
          assert.equal(refused.param, 'text.format');
          assert.match(refused.message, /\btext\.format is not supported by anthropic/);
        }
        assert.deepEqual(anthropic.requests, []);
      });

      test('a malformed text.format is a 400 naming its param', async () => {
        const { openai } = fakes;
        const cases: Array<[unknown, string]> = [
          [{ type: 'xml' }, 'text.format.type'],
          [{ type: 'json_schema', schema: citySchema }, 'text.format.name'],
          [{ type: 'json_schema', name: 'bad name', schema: citySchema }, 'text.format.name'],
          [{ type: 'json_schema', name: 'city' }, 'text.format.schema'],
        ];
        for (const [format, param] of cases) {
          const res = await client.responses.create({ model: 'openai:gpt-4o-mini', input: 'x', text: { format: format as never } }).catch((e) => e);
          assert.ok(res instanceof OpenAI.BadRequestError, `${JSON.stringify(format)}: ${String(res)}`);
          assert.equal(res.param, param, JSON.stringify(format));
        }
        assert.equal(openai.requests.length, 0);
      });
    });
  });
}
