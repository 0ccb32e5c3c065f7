import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { before, beforeEach, describe, test } from 'node:test';
import { AppError } from '../../../src/errors.ts';
import { aiFrom, ask, collect, useFakeUpstreams } from './support.ts';
import { eventually } from '../../support/eventually.ts';

const CHAIN = ['anthropic:claude-sonnet-4-5', 'openai:gpt-4o-mini'];

/** A port nothing listens on: bind, note it, close. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe('ai: retries and fallback', () => {
  const fakes = useFakeUpstreams();
  let env: Record<string, string>;
  before(() => {
    env = { ...fakes.openai.env, ...fakes.anthropic.env, AI_RETRIES: '1' };
  });
  beforeEach(() => {
    fakes.openai.state.defaults = { reply: 'From OpenAI.' };
  });

  test('500s retry the link, then fall back to the next; attempts are reported', async () => {
    const ai = aiFrom(env);
    fakes.anthropic.script({ status: 500 }, { status: 529 });
    const r = await collect(ai.streamChat(ask(CHAIN)));
    assert.equal(r.error, undefined, r.error?.stack);
    assert.equal(r.text, 'From OpenAI.');
    assert.equal(fakes.anthropic.requests.length, 2, 'one try and one retry');
    assert.equal(fakes.openai.requests.length, 1);
    assert.deepEqual(
      r.events.filter((e) => e.type === 'attempt' || e.type === 'attempt_failed').map((e) => (e.type === 'attempt' ? `try ${e.provider}` : `fail ${e.attempt.code} ${e.attempt.status}`)),
      ['try anthropic', 'fail provider_error 500', 'try anthropic', 'fail provider_error 529', 'try openai'],
    );
    assert.equal(r.failures[0]!.provider, 'anthropic');
    assert.equal(r.failures[0]!.model, 'claude-sonnet-4-5');
    assert.ok(Date.parse(r.failures[0]!.at) > 0);
    assert.equal(r.finish?.provider, 'openai');
  });

  test('429 with Retry-After: the retry waits at least that long, on the same link', async () => {
    const ai = aiFrom(env);
    fakes.anthropic.script({ status: 429, retryAfter: 1 }, { reply: 'Patience pays.' });
    const r = await collect(ai.streamChat(ask(CHAIN)));
    assert.equal(r.error, undefined, r.error?.stack);
    assert.equal(r.text, 'Patience pays.');
    assert.equal(r.failures[0]!.code, 'rate_limited');
    assert.equal(fakes.anthropic.requests.length, 2);
    assert.equal(fakes.openai.requests.length, 0);
    const gap = fakes.anthropic.requests[1]!.at - fakes.anthropic.requests[0]!.at;
    assert.ok(gap >= 950, `retried after ${gap} ms`);
  });

  test('a Retry-After longer than the cap moves on to the next link at once', async () => {
    const ai = aiFrom({ ...env, AI_RETRY_MAX_MS: '500' });
    fakes.anthropic.script({ status: 429, retryAfter: 30 });
    const started = Date.now();
    const r = await collect(ai.streamChat(ask(CHAIN)));
    assert.equal(r.text, 'From OpenAI.');
    assert.equal(fakes.anthropic.requests.length, 1);
    assert.ok(Date.now() - started < 5000, 'did not wait out the 30 s');
  });

  test('400, 401 and 404 are not retried: straight to the next link', async () => {
    for (const status of [400, 401, 404]) {
      fakes.anthropic.reset();
      const ai = aiFrom({ ...env, AI_RETRIES: '3' });
      fakes.anthropic.script({ status });
      const r = await collect(ai.streamChat(ask(CHAIN)));
      assert.equal(r.text, 'From OpenAI.', `status ${status}`);
      assert.equal(fakes.anthropic.requests.length, 1, `status ${status}`);
      assert.equal(r.failures[0]!.status, status);
    }
  });

  test('a hanging upstream is abandoned after the first-token timeout', async () => {
    const ai = aiFrom({ ...env, AI_RETRIES: '0', AI_FIRST_TOKEN_TIMEOUT_MS: '300' });
    fakes.anthropic.script({ hang: true });
    const r = await collect(ai.streamChat(ask(CHAIN)));
    assert.equal(r.error, undefined, r.error?.stack);
    assert.equal(r.failures[0]!.code, 'timeout');
    assert.equal(r.text, 'From OpenAI.');
    assert.equal(fakes.anthropic.requests[0]!.aborted, true, 'the abandoned request was closed, not left hanging');
  });

  test('a slow-but-alive stream is not cut by the first-token timeout', async () => {
    const ai = aiFrom({ ...env, AI_FIRST_TOKEN_TIMEOUT_MS: '400' });
    fakes.anthropic.script({ reply: 'one two three four five six', delayMs: 150 });
    const r = await collect(ai.streamChat(ask(CHAIN)));
    assert.equal(r.error, undefined, r.error?.stack);
    assert.equal(r.text, 'one two three four five six');
  });

  test('connection refused moves on to the next link', async () => {
    const ai = aiFrom({ ...env, AI_RETRIES: '0', ANTHROPIC_BASE_URL: `http://127.0.0.1:${await closedPort()}/v1` });
    const r = await collect(ai.streamChat(ask(CHAIN)));
    assert.equal(r.error, undefined, r.error?.stack);
    assert.equal(r.failures[0]!.code, 'connection_failed');
    assert.match(r.failures[0]!.error, /ECONNREFUSED/);
    assert.equal(r.text, 'From OpenAI.');
  });

  test('a stream cut after the first tokens is not retried: stream_interrupted, partial text delivered', async () => {
    const ai = aiFrom(env);
    fakes.anthropic.script({ reply: 'one two three four', cutAfter: 2 });
    const r = await collect(ai.streamChat(ask(CHAIN)));
    assert.ok(r.error instanceof AppError);
    assert.equal(r.error.code, 'stream_interrupted');
    assert.equal(r.error.status, 502);
    assert.equal(r.text, 'one two ');
    assert.equal(r.finish, undefined);
    assert.equal(fakes.anthropic.requests.length, 1, 'no retry');
    assert.equal(fakes.openai.requests.length, 0, 'no fallback');
    assert.deepEqual(r.failures, [], 'attempt_failed is only for failures that are followed by another attempt');
    assert.equal(r.error.extra.provider, 'anthropic');
    assert.deepEqual((r.error.extra.attempts as Array<{ code: string }>).map((a) => a.code), ['stream_interrupted']);
  });

  test('a stream cut before any token is retried like any early failure', async () => {
    const ai = aiFrom(env);
    fakes.openai.script({ reply: 'never seen', cutAfter: 0 }, { reply: 'Second time lucky.' });
    const r = await collect(ai.streamChat(ask(['openai:gpt-4o-mini'])));
    assert.equal(r.error, undefined, r.error?.stack);
    assert.equal(r.text, 'Second time lucky.');
    assert.equal(fakes.openai.requests.length, 2);
  });

  test('a malformed chunk before output fails the attempt; after output it interrupts the stream', async () => {
    const ai = aiFrom({ ...env, AI_RETRIES: '0' });
    fakes.anthropic.script({ reply: 'a b c', malformedAfter: 0 });
    const early = await collect(ai.streamChat(ask(CHAIN)));
    assert.equal(early.failures[0]!.code, 'malformed_response');
    assert.equal(early.text, 'From OpenAI.');

    fakes.openai.script({ reply: 'a b c d', malformedAfter: 2 });
    const late = await collect(ai.streamChat(ask(['openai:gpt-4o-mini'])));
    assert.equal(late.error?.code, 'stream_interrupted');
    assert.equal(late.text, 'a b ');
  });

  test('a stream that stalls after output started ends with stream_interrupted', async () => {
    const ai = aiFrom({ ...env, AI_STREAM_IDLE_TIMEOUT_MS: '300' });
    // The first chunk comes well within the first-token timeout; the gap to the second exceeds the idle timeout.
    fakes.openai.script({ chunks: ['slow ', 'slower'], delayMs: 700 });
    const r = await collect(ai.streamChat(ask(['openai:gpt-4o-mini'])));
    assert.equal(r.error?.code, 'stream_interrupted');
    assert.equal(r.text, 'slow ');
  });

  test('every link failing: 502 all_providers_failed with every attempt', async () => {
    const ai = aiFrom(env);
    fakes.anthropic.script({ status: 500 }, { status: 500 });
    fakes.openai.script({ status: 503 }, { status: 503 });
    const r = await collect(ai.streamChat(ask(CHAIN)));
    assert.ok(r.error instanceof AppError);
    assert.equal(r.error.status, 502);
    assert.equal(r.error.code, 'all_providers_failed');
    const attempts = r.error.extra.attempts as Array<{ provider: string; code: string }>;
    assert.deepEqual(attempts.map((a) => a.provider), ['anthropic', 'anthropic', 'openai', 'openai']);
    assert.deepEqual(attempts, r.failures);
  });

  test('a link that cannot honour the response format fails unretried and uncounted, the next answers; refused by every link, a 400', async () => {
    const ai = aiFrom({ ...env, AI_CIRCUIT_FAILURES: '2' });
    // Anthropic takes JSON only with a schema: without one, the AI SDK would warn and answer in free text, so the link is refused before sending.
    const json = { responseFormat: { type: 'json' as const } };
    for (let i = 0; i < 3; i++) {
      fakes.openai.script({ reply: '{"ok":true}' });
      const r = await collect(ai.streamChat(ask(CHAIN, 'JSON please', json)));
      assert.equal(r.error, undefined, r.error?.stack);
      assert.equal(r.text, '{"ok":true}');
      assert.deepEqual(r.failures.map((f) => f.code), ['unsupported_parameter'], 'not retried, nor skipped as a broken provider');
    }
    assert.equal(fakes.anthropic.requests.length, 0, 'nothing sent to a provider that cannot honour it');
    const refused = await collect(ai.streamChat(ask(['anthropic:claude-sonnet-4-5'], 'JSON please', json)));
    assert.ok(refused.error instanceof AppError);
    assert.equal(refused.error.status, 400);
    assert.equal(refused.error.code, 'unsupported_parameter');
    assert.equal(refused.error.extra.param, 'response_format');
    assert.match(refused.error.message, /response_format is not supported by anthropic\.messages without a schema \(json_object\): it takes json_schema/);
  });

  test('an unknown model or unconfigured provider is a validation error before any request', async () => {
    const ai = aiFrom(env);
    for (const chain of [['nope:gpt-4o'], ['gpt-4o-mini'], ['openai:gpt-4o-mini', 'mistral:mistral-small-latest'], []]) {
      const r = await collect(ai.streamChat(ask(chain)));
      assert.equal(r.error?.status, 400, JSON.stringify(chain));
      assert.equal(r.error?.code, 'unknown_model');
    }
    assert.equal(fakes.openai.requests.length, 0);
  });

  test('the caller aborting stops the upstream request and rethrows the abort', async () => {
    const ai = aiFrom(env);
    fakes.openai.script({ reply: 'a b c d e f g h', delayMs: 100 });
    const controller = new AbortController();
    const seen: string[] = [];
    let error: any;
    try {
      for await (const e of ai.streamChat(ask(['openai:gpt-4o-mini'], 'Hi', { signal: controller.signal }))) {
        if (e.type === 'delta') {
          seen.push(e.text);
          if (seen.length === 2) controller.abort();
        }
      }
    } catch (err) {
      error = err;
    }
    assert.equal(error?.name, 'AbortError');
    assert.equal(seen.length, 2);
    assert.equal(fakes.openai.requests.length, 1, 'not retried');
    await eventually(() => assert.equal(fakes.openai.requests[0]!.aborted, true, 'the upstream request was closed'));
  });

  test('no usage from the provider: tokens are counted locally rather than billed as zero', async () => {
    const ai = aiFrom(env);
    fakes.openai.script({ reply: 'Counted here.', noUsage: true });
    const r = await collect(ai.streamChat(ask(['openai:gpt-4o-mini'])));
    assert.ok(r.finish!.usage.inputTokens > 0);
    assert.equal(r.finish!.usage.outputTokens, ai.countTokens('openai:gpt-4o-mini', 'Counted here.'));
    assert.ok(r.finish!.costMicros! >= 0);
  });
});
