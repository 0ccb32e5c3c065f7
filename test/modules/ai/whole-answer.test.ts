import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';
import { eventually } from '../../support/eventually.ts';
import { aiFrom, ask, collect, useFakeUpstreams } from './support.ts';

// A caller that wants the answer only when it is whole (a non-streaming gateway call) sets `whole`:
// an OpenAI-compatible upstream is then asked without streaming, as LiteLLM and Portkey ask it.
describe('ai: whole answers', () => {
  const fakes = useFakeUpstreams();
  let env: Record<string, string>;
  beforeEach(() => {
    env = { ...fakes.openai.env, ...fakes.anthropic.env, AI_RETRIES: '0' };
    fakes.anthropic.state.defaults = { reply: 'From Anthropic.' };
  });

  test('the upstream is asked without streaming; text, tool calls, finish, usage and cost come as a stream would give them', async () => {
    const ai = aiFrom(env);
    const text = 'Hé "quoted" back\\slash 😀 ';
    fakes.openai.script({ reply: text, toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Oslo"}' }], usage: { input: 1000, output: 200, cached: 400 } });
    const r = await collect(ai.streamChat(ask(['openai:gpt-4o-mini'], 'Weather?', { whole: true })));
    assert.equal(r.error, undefined, r.error?.stack);
    assert.equal(r.text, text);
    assert.deepEqual(
      r.events.filter((e) => e.type !== 'finish').map((e) => e.type),
      ['attempt', 'delta', 'tool_call'],
      'one delta for the whole text',
    );
    const call = r.events.find((e) => e.type === 'tool_call');
    assert.deepEqual(call?.type === 'tool_call' && call.call, { id: 'call_1', name: 'get_weather', arguments: '{"city":"Oslo"}' });
    assert.equal(r.finish?.finishReason, 'tool-calls');
    assert.deepEqual(r.finish?.usage, { inputTokens: 1000, outputTokens: 200, cachedTokens: 400 });
    assert.equal(r.finish?.costMicros, 240);
    const sent = fakes.openai.requests[0]!;
    assert.equal(sent.body.stream, undefined);
    assert.equal(sent.body.stream_options, undefined);
    assert.equal(sent.headers.accept, 'application/json');
    assert.deepEqual(sent.body.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Weather?' },
    ]);

    // The same call without `whole` streams.
    await collect(ai.streamChat(ask(['openai:gpt-4o-mini'])));
    assert.equal(fakes.openai.requests[1]!.body.stream, true);
  });

  test('the answer timeout bounds a whole answer, not the first-token one; a hung link falls back once it passes', async () => {
    // Five pieces 100 ms apart: the whole answer comes after 500 ms, past a 200 ms first-token timeout.
    const slow = aiFrom({ ...env, AI_FIRST_TOKEN_TIMEOUT_MS: '200', AI_ANSWER_TIMEOUT_MS: '5000' });
    fakes.openai.script({ reply: 'one two three four five', delayMs: 100 });
    const r = await collect(slow.streamChat(ask(['openai:gpt-4o-mini'], 'Hi', { whole: true })));
    assert.equal(r.error, undefined, r.error?.stack);
    assert.equal(r.text, 'one two three four five');
    assert.ok(r.finish!.ttftMs! >= 400, `the first text came with the whole answer (${r.finish!.ttftMs} ms)`);

    const bounded = aiFrom({ ...env, AI_ANSWER_TIMEOUT_MS: '300' });
    fakes.openai.script({ hang: true });
    const started = Date.now();
    const fell = await collect(bounded.streamChat(ask(['openai:gpt-4o-mini', 'anthropic:claude-haiku-4-5'], 'Hi', { whole: true })));
    assert.equal(fell.error, undefined, fell.error?.stack);
    assert.deepEqual(fell.failures.map((f) => [f.code, f.error]), [['timeout', 'No answer within 300 ms']]);
    assert.equal(fell.text, 'From Anthropic.');
    assert.ok(Date.now() - started < 5000);
    await eventually(() => assert.equal(fakes.openai.requests.at(-1)!.aborted, true, 'the abandoned request was closed'));
  });

  test('a model that cannot answer whole streams as before, under the first-token timeout', async () => {
    // Anthropic goes through the AI SDK, which streams: `whole` changes nothing there.
    const ai = aiFrom({ ...env, AI_FIRST_TOKEN_TIMEOUT_MS: '300' });
    fakes.anthropic.script({ hang: true });
    fakes.openai.script({ reply: 'From OpenAI.' });
    const r = await collect(ai.streamChat(ask(['anthropic:claude-haiku-4-5', 'openai:gpt-4o-mini'], 'Hi', { whole: true })));
    assert.equal(r.error, undefined, r.error?.stack);
    assert.deepEqual(r.failures.map((f) => f.code), ['timeout']);
    assert.equal(r.text, 'From OpenAI.');
    assert.equal(fakes.openai.requests[0]!.body.stream, undefined, 'the link that can answer whole still does');
  });

  test('a whole answer cut off is retried; one that is not JSON fails its link; a provider error status is classified as ever', async () => {
    const ai = aiFrom({ ...env, AI_RETRIES: '1' });
    fakes.openai.script({ reply: 'never seen', cutAfter: 0 }, { reply: 'Second time lucky.' });
    const cut = await collect(ai.streamChat(ask(['openai:gpt-4o-mini'], 'Hi', { whole: true })));
    assert.equal(cut.error, undefined, cut.error?.stack);
    assert.deepEqual(cut.failures.map((f) => f.code), ['connection_lost']);
    assert.equal(cut.text, 'Second time lucky.');

    const once = aiFrom(env);
    fakes.openai.script({ reply: 'a b c', malformedAfter: 0 });
    const malformed = await collect(once.streamChat(ask(['openai:gpt-4o-mini', 'anthropic:claude-haiku-4-5'], 'Hi', { whole: true })));
    assert.equal(malformed.error, undefined, malformed.error?.stack);
    assert.deepEqual(malformed.failures.map((f) => f.code), ['malformed_response']);
    assert.equal(malformed.text, 'From Anthropic.');

    fakes.openai.script({ status: 429, retryAfter: 30 });
    const limited = await collect(once.streamChat(ask(['openai:gpt-4o-mini', 'anthropic:claude-haiku-4-5'], 'Hi', { whole: true })));
    assert.deepEqual(limited.failures.map((f) => [f.code, f.status]), [['rate_limited', 429]]);
    assert.equal(limited.text, 'From Anthropic.');
  });

  test("an endpoint's URL credentials are sent as Basic auth, whole or streamed; an answer past 32 MiB is refused, not buffered on", async () => {
    const base = new URL(`${fakes.openai.url}/v1`);
    base.username = 'parley';
    base.password = 'p@ss word';
    const ai = aiFrom({ ...env, OPENAI_COMPATIBLE_ENDPOINTS: JSON.stringify([{ name: 'local', baseUrl: base.href, models: ['qwen3'] }]) });
    for (const whole of [true, false]) {
      const r = await collect(ai.streamChat(ask(['local:qwen3'], 'Hi', { whole })));
      assert.equal(r.error, undefined, r.error?.stack);
      assert.equal(fakes.openai.requests.at(-1)!.headers.authorization, `Basic ${Buffer.from('parley:p@ss word').toString('base64')}`, `whole: ${whole}`);
    }

    fakes.openai.script({ reply: 'x'.repeat(33 * 1024 * 1024) });
    const huge = await collect(ai.streamChat(ask(['local:qwen3', 'anthropic:claude-haiku-4-5'], 'Hi', { whole: true })));
    assert.equal(huge.error, undefined, huge.error?.stack);
    assert.deepEqual(huge.failures.map((f) => f.code), ['malformed_response']);
    assert.equal(huge.text, 'From Anthropic.');
  });

  test('without usage in the answer, tokens are counted locally; a caller that aborts stops the upstream call', async () => {
    const ai = aiFrom(env);
    fakes.openai.script({ reply: 'Counted here.', noUsage: true });
    const r = await collect(ai.streamChat(ask(['openai:gpt-4o-mini'], 'Hi', { whole: true })));
    assert.equal(r.error, undefined, r.error?.stack);
    assert.equal(r.finish!.usage.outputTokens, ai.countTokens('openai:gpt-4o-mini', 'Counted here.'));
    assert.ok(r.finish!.usage.inputTokens > 0);

    fakes.openai.script({ hang: true });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const aborted = await collect(ai.streamChat(ask(['openai:gpt-4o-mini'], 'Hi', { whole: true, signal: controller.signal })));
    assert.equal(aborted.error?.name, 'AbortError');
    await eventually(() => assert.equal(fakes.openai.requests.at(-1)!.aborted, true));
  });
});
