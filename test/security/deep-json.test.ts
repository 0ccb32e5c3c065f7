import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { useChat } from '../modules/chat/generation-fixture.ts';
import { backends } from '../support/app.ts';
import { createUser, type TestUser } from '../support/factories.ts';

/** `{"a":{"a":…}}` with `depth` objects, around `inner`. */
const nested = (depth: number, inner = '{}') => '{"a":'.repeat(depth - 1) + inner + '}'.repeat(depth - 1);

/**
 * A JSON body nested deeper than 128 levels is refused at the door, in each API's own error format,
 * before anything walks or serializes it (5,000 levels used to overflow the stack: a 500, or a 502
 * blaming the upstream). Nothing goes upstream; 128 levels are fine.
 */
for (const backend of backends()) {
  describe(`deeply nested JSON [${backend}]`, () => {
    const f = useChat(backend);
    let u: TestUser;
    before(async () => {
      u = await createUser(f.t);
    });

    const tool = (parameters: string) => `{"type":"function","function":{"name":"deep","parameters":${parameters}}}`;
    const chat = (tools: string) => `{"model":"openai:gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"tools":[${tools}]}`;

    test('a problem route: 400 validation_failed with the path where it got too deep', async () => {
      const res = await f.t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, raw: `{"extra":${nested(200)}}` });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.code, 'validation_failed');
      assert.match(res.body.detail, /nested more than 128 levels deep/);
      assert.equal(res.body.errors[0].path, `/extra${'/a'.repeat(127)}`);
    });

    test('the OpenAI routes: a 400 in OpenAI\'s format, nothing sent upstream', async () => {
      for (const [path, body] of [
        ['/v1/chat/completions', chat(tool(nested(5000)))],
        ['/v1/responses', `{"model":"openai:gpt-4o-mini","input":"hi","tools":[{"type":"function","name":"deep","parameters":${nested(5000)}}]}`],
      ] as const) {
        const res = await f.t.api('POST', path, { token: u.accessToken, raw: body });
        assert.equal(res.status, 400, `${path}: ${res.text}`);
        assert.equal(res.body.error.type, 'invalid_request_error');
        assert.equal(res.body.error.code, 'validation_failed');
        assert.match(res.body.error.message, /nested more than 128 levels deep/);
      }
      assert.equal(f.openai.requests.length, 0);
    });

    test('the Messages API: a 400 in Anthropic\'s format, for a message and for count_tokens', async () => {
      const toolUse = `{"model":"openai:gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"deep","input":${nested(5000)}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}]}`;
      const count = `{"model":"openai:gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"tools":[{"name":"deep","input_schema":{"type":"object","properties":${nested(5000)}}}]}`;
      for (const [path, body] of [['/v1/messages', toolUse], ['/v1/messages/count_tokens', count]] as const) {
        const res = await f.t.api('POST', path, { token: u.accessToken, raw: body, headers: { 'anthropic-version': '2023-06-01' } });
        assert.equal(res.status, 400, `${path}: ${res.text}`);
        assert.equal(res.body.type, 'error');
        assert.equal(res.body.error.type, 'invalid_request_error');
        assert.match(res.body.error.message, /nested more than 128 levels deep/);
      }
      assert.equal(f.openai.requests.length, 0);
    });

    test('128 levels are taken (the body, tools, a tool, its function, then 124 in its parameters) and reach the upstream as sent', async () => {
      f.openai.script({ reply: 'fine' });
      const parameters = nested(124, '{"type":"object"}');
      const res = await f.t.api('POST', '/v1/chat/completions', { token: u.accessToken, raw: `{"model":"openai:gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"tools":[${tool(parameters)}]}` });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(f.openai.requests[0]!.body.tools[0].function.parameters, JSON.parse(parameters));
    });
  });
}
