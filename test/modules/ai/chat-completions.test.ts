import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { aiFrom, ask, collect, useFakeUpstreams } from './support.ts';

describe('ai: the Chat Completions driver', () => {
  const fakes = useFakeUpstreams();

  test("OpenAI reasoning models get OpenAI's rules: developer messages, max_completion_tokens, no temperature", async () => {
    const ai = aiFrom({ ...fakes.openai.env });
    for (const [model, reasoning] of [['gpt-5-mini', true], ['o4-mini', true], ['gpt-5-chat-latest', false], ['gpt-4.1', false]] as const) {
      const r = await collect(ai.streamChat(ask([`openai:${model}`], 'Hi', { temperature: 0.5, maxTokens: 20 })));
      assert.equal(r.error, undefined, r.error?.stack);
      const body = fakes.openai.requests.at(-1)!.body;
      assert.equal(body.messages[0].role, reasoning ? 'developer' : 'system', model);
      assert.equal(body.temperature, reasoning ? undefined : 0.5, model);
      assert.equal(body.max_completion_tokens, reasoning ? 20 : undefined, model);
      assert.equal(body.max_tokens, reasoning ? undefined : 20, model);
      assert.deepEqual(body.stream_options, { include_usage: true });
    }
  });

  test('compatible servers keep system messages whatever the model is called', async () => {
    const ai = aiFrom({ OPENAI_COMPATIBLE_ENDPOINTS: JSON.stringify([{ name: 'vllm', baseUrl: `${fakes.openai.url}/v1` }]) });
    const r = await collect(ai.streamChat(ask(['vllm:gpt-5'], 'Hi', { temperature: 0.5 })));
    assert.equal(r.error, undefined, r.error?.stack);
    const sent = fakes.openai.requests[0]!;
    assert.equal(sent.body.messages[0].role, 'system');
    assert.equal(sent.body.temperature, 0.5);
    assert.equal(sent.headers.authorization, undefined, 'no key configured, no Authorization header');
  });

  test('requests ask for a keep-alive connection', async () => {
    const ai = aiFrom({ ...fakes.openai.env });
    assert.equal((await collect(ai.streamChat(ask(['openai:gpt-4o-mini'])))).error, undefined);
    assert.equal(fakes.openai.requests[0]!.headers.connection, 'keep-alive');
  });
});
