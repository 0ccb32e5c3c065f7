import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { eventually } from '../../support/eventually.ts';
import { aiFrom, ask, collect, useFakeUpstreams } from './support.ts';

/** 8 MB of text in numbered 2 KB chunks: an upstream could not finish sending it while nothing reads it. */
const eightMegabytes = () => Array.from({ length: 4000 }, (_, i) => `${String(i).padStart(4, '0')}${'x'.repeat(2044)}`);

describe('ai: the Chat Completions driver', () => {
  const fakes = useFakeUpstreams();

  test("OpenAI reasoning models get OpenAI's rules: developer messages, max_completion_tokens, no temperature or top_p; no model of OpenAI's gets top_k", async () => {
    const ai = aiFrom({ ...fakes.openai.env });
    for (const [model, reasoning] of [['gpt-5-mini', true], ['o4-mini', true], ['gpt-5-chat-latest', false], ['gpt-4.1', false]] as const) {
      const r = await collect(ai.streamChat(ask([`openai:${model}`], 'Hi', { temperature: 0.5, topP: 0.8, topK: 40, maxTokens: 20 })));
      assert.equal(r.error, undefined, r.error?.stack);
      const body = fakes.openai.requests.at(-1)!.body;
      assert.equal(body.messages[0].role, reasoning ? 'developer' : 'system', model);
      assert.equal(body.temperature, reasoning ? undefined : 0.5, model);
      assert.equal(body.top_p, reasoning ? undefined : 0.8, model);
      assert.equal('top_k' in body, false, model);
      assert.equal(body.max_completion_tokens, reasoning ? 20 : undefined, model);
      assert.equal(body.max_tokens, reasoning ? undefined : 20, model);
      assert.deepEqual(body.stream_options, { include_usage: true });
    }
  });

  test('compatible servers keep system messages and sampling settings whatever the model is called, top_k included', async () => {
    const ai = aiFrom({ OPENAI_COMPATIBLE_ENDPOINTS: JSON.stringify([{ name: 'vllm', baseUrl: `${fakes.openai.url}/v1` }]) });
    const r = await collect(ai.streamChat(ask(['vllm:gpt-5'], 'Hi', { temperature: 0.5, topP: 0.8, topK: 40 })));
    assert.equal(r.error, undefined, r.error?.stack);
    const sent = fakes.openai.requests[0]!;
    assert.equal(sent.body.messages[0].role, 'system');
    assert.equal(sent.body.temperature, 0.5);
    assert.equal(sent.body.top_p, 0.8);
    assert.equal(sent.body.top_k, 40, 'compatible servers (vLLM, Ollama, llama.cpp…) sample with top_k');
    assert.equal(sent.headers.authorization, undefined, 'no key configured, no Authorization header');
  });

  test('a relay that waits for its client to drain stops the upstream being read until then; nothing is lost', async () => {
    const chunks = eightMegabytes();
    fakes.openai.script({ chunks });
    const ai = aiFrom({ ...fakes.openai.env });
    let relayed = '';
    let release!: () => void;
    const drainedOnce = new Promise<void>((resolve) => (release = resolve));
    // Every forward asks for a drain, which comes only once released.
    const relay = { text: '', forward: (_frames: string, text: string) => ((relayed += text), false), drained: () => drainedOnce };
    const done = collect(ai.streamChat({ ...ask(['openai:gpt-4o-mini']), relay }));
    await eventually(() => assert.ok(relayed.length > 0, 'relaying began'));
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(relayed.length < 1024 * 1024, `held back after ${relayed.length} characters`);
    assert.equal(fakes.openai.requests[0]!.finished, false);
    release();
    const r = await done;
    assert.equal(r.error, undefined, r.error?.stack);
    assert.ok(r.text + relayed === chunks.join(''), `the first text as a delta, the rest relayed, in order (${r.text.length} + ${relayed.length} characters)`);
    assert.equal(fakes.openai.requests[0]!.finished, true);
  });

  test('a consumer that stops asking for parts stops the upstream being read; nothing is lost when it asks again', async () => {
    const chunks = eightMegabytes();
    fakes.openai.script({ chunks });
    const ai = aiFrom({ ...fakes.openai.env });
    const events = ai.streamChat(ask(['openai:gpt-4o-mini']))[Symbol.asyncIterator]();
    let text = '';
    while (!text) {
      const e = await events.next();
      if (e.done) break;
      if (e.value.type === 'delta') text += e.value.text;
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(fakes.openai.requests[0]!.finished, false, 'held back while nobody reads');
    for (let e = await events.next(); !e.done; e = await events.next()) if (e.value.type === 'delta') text += e.value.text;
    assert.ok(text === chunks.join(''), `all the text, in order (${text.length} characters)`);
    assert.equal(fakes.openai.requests[0]!.finished, true);
  });

  test('requests ask for a keep-alive connection', async () => {
    const ai = aiFrom({ ...fakes.openai.env });
    assert.equal((await collect(ai.streamChat(ask(['openai:gpt-4o-mini'])))).error, undefined);
    assert.equal(fakes.openai.requests[0]!.headers.connection, 'keep-alive');
  });

  test('chunks that arrive in one read go on as one delta, nothing lost or reordered; a bad chunk after them still fails the stream', async () => {
    const frame = (delta: object, finish: string | null = null) => `data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    const words = ['Alpha ', 'beta ', 'gamma ', 'delta'];
    let tail = frame({}, 'stop') + 'data: [DONE]\n\n';
    const server = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // Everything in one write: the driver reads it as one piece.
      res.end(frame({ role: 'assistant', content: '' }) + words.map((w) => frame({ content: w })).join('') + tail);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const ai = aiFrom({ OPENAI_COMPATIBLE_ENDPOINTS: JSON.stringify([{ name: 'local', baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1` }]) });
      const r = await collect(ai.streamChat(ask(['local:m'], 'Hi')));
      assert.equal(r.error, undefined, r.error?.stack);
      assert.deepEqual(r.events.filter((e) => e.type === 'delta').map((e) => e.type === 'delta' && e.text), [words.join('')]);
      assert.equal(r.finish?.finishReason, 'stop');

      tail = 'data: {"choices":[{"delta":{"content":"oo\n\n';
      const broken = await collect(ai.streamChat(ask(['local:m'], 'Hi')));
      assert.equal(broken.text, words.join(''), 'the text before the bad chunk reached the caller');
      assert.equal((broken.error as { code?: string } | undefined)?.code, 'stream_interrupted');
    } finally {
      server.close();
    }
  });

  test('text chunks read without a parse keep escapes and non-ASCII text exactly; the chunks around them that need the parser (reasoning, a tool call, usage) still count', async () => {
    const frame = (chunk: object) => `data: ${JSON.stringify(chunk)}\n\n`;
    const text = (content: string) => frame({ id: 'c', choices: [{ index: 0, delta: { content }, finish_reason: null }], usage: null });
    const pieces = ['Say "hi"\\n', 'line\nbreak\t', 'caf\u00e9 \u{1F600} ', '"content":"not a key"', ' \u2028end'];
    const body =
      frame({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] }) +
      text(pieces[0]!) +
      frame({ choices: [{ index: 0, delta: { reasoning_content: 'thinking' }, finish_reason: null }] }) +
      pieces.slice(1).map(text).join('') +
      frame({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_1', function: { name: 'lookup', arguments: '{"q":1}' } }] }, finish_reason: null }] }) +
      frame({ choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] }) +
      frame({ choices: [], usage: { prompt_tokens: 7, completion_tokens: 11 } }) +
      'data: [DONE]\n\n';
    const server = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const ai = aiFrom({ OPENAI_COMPATIBLE_ENDPOINTS: JSON.stringify([{ name: 'local', baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1` }]) });
      const r = await collect(ai.streamChat(ask(['local:m'], 'Hi')));
      assert.equal(r.error, undefined, r.error?.stack);
      assert.equal(r.text, pieces.join(''));
      assert.deepEqual(r.events.filter((e) => e.type === 'tool_call').map((e) => e.type === 'tool_call' && [e.call.name, e.call.arguments]), [['lookup', '{"q":1}']]);
      assert.equal(r.finish?.finishReason, 'tool-calls');
      assert.deepEqual([r.finish?.usage?.inputTokens, r.finish?.usage?.outputTokens], [7, 11]);
    } finally {
      server.close();
    }
  });
});
