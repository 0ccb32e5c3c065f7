import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { startFakeAnthropic, type FakeAnthropic } from '../../support/fake-anthropic.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';
import { aiFrom, ask, collect } from './support.ts';

describe('ai: streaming one link', () => {
  let openai: FakeOpenAI;
  let anthropic: FakeAnthropic;
  before(async () => {
    openai = await startFakeOpenAI();
    anthropic = await startFakeAnthropic();
  });
  after(async () => {
    await openai.close();
    await anthropic.close();
  });
  beforeEach(() => {
    openai.reset();
    anthropic.reset();
  });

  test('OpenAI: deltas in order, usage, cost and what was sent', async () => {
    const ai = aiFrom({ ...openai.env });
    openai.script({ reply: 'Hello there, friend.', usage: { input: 1000, output: 200, cached: 400 } });
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
    const sent = openai.requests[0]!;
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
    const ai = aiFrom({ ...anthropic.env });
    anthropic.script({ reply: 'Bonjour !', usage: { input: 50, output: 5 } });
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
    const sent = anthropic.requests[0]!.body;
    assert.equal(sent.model, 'claude-sonnet-4-5');
    assert.equal(sent.max_tokens, 100);
    assert.deepEqual(sent.system, [{ type: 'text', text: 'You are French.' }]);
    assert.deepEqual(
      sent.messages.map((m: any) => [m.role, m.content.map((c: any) => c.text).join('')]),
      [['user', 'Hello'], ['assistant', 'Salut.'], ['user', 'Again']],
    );
  });
});
