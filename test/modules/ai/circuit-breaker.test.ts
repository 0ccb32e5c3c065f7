import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createCircuitBreakers } from '../../../src/modules/ai/circuit-breaker.ts';
import { aiFrom, ask, collect, useFakeUpstreams } from './support.ts';

describe('circuit breaker states', () => {
  test('closed → open after N consecutive failures → half-open after the cool-down → closed on a good probe', () => {
    let now = 0;
    const b = createCircuitBreakers({ failureThreshold: 3, cooldownMs: 1000, now: () => now });
    b.failure('p');
    b.failure('p');
    b.success('p');
    b.failure('p');
    b.failure('p');
    assert.equal(b.state('p'), 'closed', 'a success resets the count: failures must be consecutive');
    b.failure('p');
    assert.equal(b.state('p'), 'open');
    assert.equal(b.allow('p'), false);
    assert.equal(b.allow('other'), true, 'per provider');
    now = 999;
    assert.equal(b.allow('p'), false);
    now = 1000;
    assert.equal(b.state('p'), 'half_open');
    assert.equal(b.allow('p'), true, 'one probe');
    assert.equal(b.allow('p'), false, 'only one probe at a time');
    b.success('p');
    assert.equal(b.state('p'), 'closed');
    assert.equal(b.allow('p'), true);
  });

  test('a failed probe opens the circuit for another cool-down; a released probe lets another through', () => {
    let now = 0;
    const b = createCircuitBreakers({ failureThreshold: 1, cooldownMs: 100, now: () => now });
    b.failure('p');
    now = 100;
    assert.equal(b.allow('p'), true);
    b.failure('p');
    assert.equal(b.state('p'), 'open');
    now = 150;
    assert.equal(b.allow('p'), false);
    now = 200;
    assert.equal(b.allow('p'), true);
    b.release('p');
    assert.equal(b.allow('p'), true, 'an aborted probe does not keep the circuit stuck');
  });
});

describe('ai: circuit breaker in the chain', () => {
  const fakes = useFakeUpstreams();

  test('opens after N failures and skips the provider, then probes it after the cool-down', async () => {
    const ai = aiFrom({ ...fakes.openai.env, ...fakes.anthropic.env, AI_RETRIES: '0', AI_CIRCUIT_FAILURES: '2', AI_CIRCUIT_COOLDOWN_MS: '300' });
    const chain = ['anthropic:claude-haiku-4-5', 'openai:gpt-4o-mini'];
    fakes.anthropic.state.defaults = { status: 503 };
    for (let i = 0; i < 2; i++) {
      const r = await collect(ai.streamChat(ask(chain)));
      assert.equal(r.failures[0]!.code, 'provider_error');
      assert.equal(r.finish?.provider, 'openai');
    }
    assert.equal(ai.circuitState('anthropic'), 'open');
    const skipped = await collect(ai.streamChat(ask(chain)));
    assert.equal(skipped.failures[0]!.code, 'circuit_open');
    assert.equal(skipped.failures[0]!.provider, 'anthropic');
    assert.equal(skipped.finish?.provider, 'openai');
    assert.equal(fakes.anthropic.requests.length, 2, 'the open circuit sent nothing upstream');
    assert.equal(skipped.events[0]!.type, 'attempt_failed', 'no attempt event for a skipped link');

    await new Promise((r) => setTimeout(r, 350));
    assert.equal(ai.circuitState('anthropic'), 'half_open');
    fakes.anthropic.state.defaults = { reply: 'Back again.' };
    const probe = await collect(ai.streamChat(ask(chain)));
    assert.equal(probe.text, 'Back again.');
    assert.equal(probe.failures.length, 0);
    assert.equal(ai.circuitState('anthropic'), 'closed');
  });

  test('request-specific rejections (400, 404) do not open the circuit', async () => {
    const ai = aiFrom({ ...fakes.openai.env, AI_RETRIES: '0', AI_CIRCUIT_FAILURES: '1' });
    fakes.openai.script({ status: 400 }, { status: 404 });
    await collect(ai.streamChat(ask(['openai:gpt-4o-mini'])));
    await collect(ai.streamChat(ask(['openai:gpt-4o-mini'])));
    assert.equal(ai.circuitState('openai'), 'closed');
    const r = await collect(ai.streamChat(ask(['openai:gpt-4o-mini'])));
    assert.equal(r.error, undefined);
  });
});

describe('ai: a request refused before it is sent', () => {
  const fakes = useFakeUpstreams();

  test('a tool call without its result is the caller’s 400, never retried, and no provider cools down; a link that takes it answers', async () => {
    const ai = aiFrom({ ...fakes.openai.env, ...fakes.anthropic.env, AI_RETRIES: '2', AI_CIRCUIT_FAILURES: '2' });
    const unanswered = ask(['anthropic:claude-haiku-4-5'], 'Hi', {
      messages: [
        { role: 'user', content: 'Weather?' },
        { role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'get_weather', arguments: '{}' }] },
        { role: 'user', content: 'And?' },
      ],
    });
    for (let i = 0; i < 3; i++) {
      const r = await collect(ai.streamChat(unanswered));
      assert.deepEqual([r.error?.status, r.error?.code], [400, 'invalid_request']);
      assert.deepEqual(r.failures.map((f) => f.code), ['invalid_request'], 'one attempt: a retry would be refused the same');
    }
    assert.equal(ai.circuitState('anthropic'), 'closed', 'the provider did nothing wrong');
    assert.equal(fakes.anthropic.requests.length, 0);
    fakes.anthropic.state.defaults = { reply: 'Sunny.' };
    assert.equal((await collect(ai.streamChat(ask(['anthropic:claude-haiku-4-5'])))).text, 'Sunny.');

    // A chain: the next link, whose upstream judges for itself, answers.
    fakes.openai.script({ reply: 'It is sunny.' });
    const chained = await collect(ai.streamChat({ ...unanswered, chain: ['anthropic:claude-haiku-4-5', 'openai:gpt-4o-mini'] }));
    assert.equal(chained.text, 'It is sunny.');
    assert.deepEqual(chained.failures.map((f) => f.code), ['invalid_request']);
  });
});
