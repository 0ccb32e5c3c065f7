import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { aiFrom, ask, collect, useFakeUpstreams } from './support.ts';

describe('ai: streaming one link', () => {
  const fakes = useFakeUpstreams();

  test('OpenAI: deltas in order, usage, cost and what was sent', async () => {
    const ai = aiFrom({ ...fakes.openai.env });
    // Paced, so each chunk is its own read (chunks read together go on as one delta).
    fakes.openai.script({ reply: 'Hello there, friend.', usage: { input: 1000, output: 200, cached: 400 }, delayMs: 20 });
    const r = await collect(ai.streamChat(ask(['openai:gpt-4o-mini'], 'Say hello')));
    assert.equal(r.error, undefined, r.error?.stack);
    assert.equal(r.text, 'Hello there, friend.');
    assert.deepEqual(r.events[0], { type: 'attempt', provider: 'openai', model: 'gpt-4o-mini' });
    assert.ok(r.events.filter((e) => e.type === 'delta').length >= 3, 'streamed in pieces');
    assert.equal(r.finish?.finishReason, 'stop');
    assert.deepEqual(r.finish?.usage, { inputTokens: 1000, outputTokens: 200, cachedTokens: 400 });
    // gpt-4o-mini: $0.15 in, $0.075 cached, $0.60 out per MTok → 600×0.15 + 400×0.075 + 200×0.6 = 90 + 30 + 120 micro-dollars
    assert.equal(r.finish?.costMicros, 240);
    assert.ok(r.finish!.ttftMs! >= 0);
    const sent = fakes.openai.requests[0]!;
    assert.equal(sent.path, '/v1/chat/completions');
    assert.equal(sent.headers.authorization, 'Bearer sk-test');
    assert.equal(sent.body.model, 'gpt-4o-mini');
    assert.equal(sent.body.stream, true);
    assert.deepEqual(sent.body.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Say hello' },
    ]);
  });

  test('Anthropic: system prompt and history as the Messages API wants them', async () => {
    const ai = aiFrom({ ...fakes.anthropic.env });
    fakes.anthropic.script({ reply: 'Bonjour !', usage: { input: 50, output: 5 } });
    const r = await collect(
      ai.streamChat({
        chain: ['anthropic:claude-sonnet-4-5'],
        messages: [
          { role: 'system', content: 'You are French.' },
          { role: 'user', content: 'Hello' },
          { role: 'assistant', content: 'Salut.' },
          { role: 'user', content: 'Again' },
        ],
        maxTokens: 100,
      }),
    );
    assert.equal(r.error, undefined, r.error?.stack);
    assert.equal(r.text, 'Bonjour !');
    assert.deepEqual(r.finish?.usage, { inputTokens: 50, outputTokens: 5 });
    // $3 in, $15 out per MTok: (50 × 3,000,000 + 5 × 15,000,000) / 1e6 = 150 + 75 micro-dollars
    assert.equal(r.finish?.costMicros, 225);
    const sent = fakes.anthropic.requests[0]!.body;
    assert.equal(sent.model, 'claude-sonnet-4-5');
    assert.equal(sent.max_tokens, 100);
    assert.deepEqual(sent.system, [{ type: 'text', text: 'You are French.' }]);
    assert.deepEqual(
      sent.messages.map((m: any) => [m.role, m.content.map((c: any) => c.text).join('')]),
      [['user', 'Hello'], ['assistant', 'Salut.'], ['user', 'Again']],
    );
  });

  const weather = { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };

  for (const provider of ['openai', 'anthropic'] as const) {
    test(`${provider}: tool calls come back as tool_call events; a tool round trip is sent in the provider's format`, async () => {
      const fake = provider === 'openai' ? fakes.openai : fakes.anthropic;
      const id = provider === 'openai' ? 'openai:gpt-4o' : 'anthropic:claude-haiku-4-5';
      const ai = aiFrom({ ...fake.env });
      fake.script({ reply: 'Let me check.', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] });
      const r = await collect(ai.streamChat({ chain: [id], messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [weather], toolChoice: 'auto' }));
      assert.equal(r.error, undefined, r.error?.stack);
      assert.equal(r.text, 'Let me check.');
      const calls = r.events.flatMap((e) => (e.type === 'tool_call' ? [e.call] : []));
      assert.deepEqual(calls, [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }]);
      assert.equal(r.finish?.finishReason, 'tool-calls');
      const sentTools = fake.requests[0]!.body.tools;
      if (provider === 'openai') {
        assert.deepEqual(sentTools[0].function.name, 'get_weather');
        assert.deepEqual(sentTools[0].function.parameters.properties, weather.parameters.properties);
      } else {
        assert.equal(sentTools[0].name, 'get_weather');
        assert.deepEqual(sentTools[0].input_schema.properties, weather.parameters.properties);
      }

      fake.script({ reply: 'Sunny, 21 °C.' });
      const second = await collect(
        ai.streamChat({
          chain: [id],
          tools: [weather],
          messages: [
            { role: 'user', content: 'Weather in Paris?' },
            { role: 'assistant', content: 'Let me check.', toolCalls: calls },
            { role: 'tool', toolCallId: 'call_1', content: '{"temp":21,"sky":"sunny"}' },
          ],
        }),
      );
      assert.equal(second.text, 'Sunny, 21 °C.');
      const sent = fake.requests[1]!.body.messages;
      if (provider === 'openai') {
        assert.equal(sent[1].tool_calls[0].id, 'call_1');
        assert.equal(sent[1].tool_calls[0].function.arguments, '{"city":"Paris"}');
        assert.deepEqual(sent[2], { role: 'tool', tool_call_id: 'call_1', content: '{"temp":21,"sky":"sunny"}' });
      } else {
        assert.deepEqual(sent[1].content.find((c: any) => c.type === 'tool_use'), { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } });
        const result = sent[2].content[0];
        assert.equal(result.type, 'tool_result');
        assert.equal(result.tool_use_id, 'call_1');
      }
    });
  }

  test('toolChoice by name and generation settings reach the provider', async () => {
    const ai = aiFrom({ ...fakes.openai.env });
    fakes.openai.script({ toolCalls: [{ name: 'get_weather', arguments: '{"city":"Oslo"}' }] });
    const r = await collect(
      ai.streamChat({ chain: ['openai:gpt-4o'], messages: [{ role: 'user', content: 'x' }], tools: [weather], toolChoice: { name: 'get_weather' }, temperature: 0.2, maxTokens: 50 }),
    );
    assert.equal(r.error, undefined, r.error?.stack);
    const body = fakes.openai.requests[0]!.body;
    assert.deepEqual(body.tool_choice, { type: 'function', function: { name: 'get_weather' } });
    assert.equal(body.temperature, 0.2);
    assert.equal(body.max_tokens, 50);
  });

  test('Mistral, Ollama, OpenRouter and compatible endpoints reach their base URL with their own key', async () => {
    const compatible = JSON.stringify([{ name: 'vllm', baseUrl: `${fakes.openai.url}/v1`, apiKey: 'vllm-key' }]);
    const ai = aiFrom({ MISTRAL_API_KEY: 'mk', MISTRAL_BASE_URL: `${fakes.openai.url}/v1`, OLLAMA_BASE_URL: fakes.openai.url, OPENROUTER_API_KEY: 'ork', OPENROUTER_BASE_URL: `${fakes.openai.url}/v1`, OPENAI_COMPATIBLE_ENDPOINTS: compatible });
    const cases = [
      ['mistral:mistral-small-latest', 'mistral-small-latest', 'Bearer mk'],
      ['ollama:llama3.2:3b', 'llama3.2:3b', undefined],
      ['openrouter:anthropic/claude-sonnet-4.5', 'anthropic/claude-sonnet-4.5', 'Bearer ork'],
      ['vllm:qwen3-32b', 'qwen3-32b', 'Bearer vllm-key'],
    ] as const;
    for (const [id, model, authorization] of cases) {
      fakes.openai.script({ reply: `hi from ${model}` });
      const r = await collect(ai.streamChat(ask([id])));
      assert.equal(r.error, undefined, `${id}: ${r.error?.stack}`);
      assert.equal(r.text, `hi from ${model}`);
      const sent = fakes.openai.requests.at(-1)!;
      assert.equal(sent.path, '/v1/chat/completions', id);
      assert.equal(sent.body.model, model);
      assert.equal(sent.headers.authorization, authorization, id);
      // Unknown prices stay unknown: a cost of null, not zero.
      if (!id.startsWith('mistral:')) assert.equal(r.finish?.costMicros, null, id);
    }
  });
});
