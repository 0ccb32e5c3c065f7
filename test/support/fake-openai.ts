import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { embeddingsResponse } from './fake-embeddings.ts';
import { chunksOf, roughTokens, sleep, sseWriter, startFakeUpstream, untilStop, type Reply, type Script } from './fake-upstream.ts';

export type { Script } from './fake-upstream.ts';

const ERROR_TYPES: Record<number, [type: string, code: string | null]> = {
  400: ['invalid_request_error', null],
  401: ['invalid_request_error', 'invalid_api_key'],
  403: ['invalid_request_error', 'unsupported_country_region_territory'],
  404: ['invalid_request_error', 'model_not_found'],
  429: ['requests', 'rate_limit_exceeded'],
  500: ['server_error', null],
  503: ['server_error', null],
};

/**
 * A local OpenAI speaking the Chat Completions wire format: POST
 * /v1/chat/completions (SSE `chat.completion.chunk`s ending in `[DONE]`, a usage
 * chunk when `stream_options.include_usage`; or one JSON `chat.completion`),
 * GET /v1/models, POST /v1/embeddings (bag-of-words vectors: see fake-embeddings.ts), and OpenAI's error bodies. Point a provider at `${url}/v1`.
 * Also serves as any OpenAI-compatible server (Ollama, vLLM, OpenRouter).
 */
export async function startFakeOpenAI(opts: { apiKey?: string; models?: string[] } = {}) {
  const models = opts.models ?? ['gpt-4o-mini', 'gpt-4o'];
  const fake = await startFakeUpstream('fake-openai', async ({ req, res, body, script }: Reply) => {
    const path = new URL(req.url!, 'http://fake').pathname;
    if (opts.apiKey && req.headers.authorization !== `Bearer ${opts.apiKey}`) return error(res, { status: 401 }, 'Incorrect API key provided.');
    if (req.method === 'GET' && path === '/v1/models') {
      return json(res, 200, { object: 'list', data: models.map((id) => ({ id, object: 'model', created: 1_700_000_000, owned_by: 'fake' })) });
    }
    if (req.method === 'POST' && path === '/v1/embeddings') {
      if (script.status) return error(res, script, script.errorMessage ?? `Scripted failure ${script.status}`);
      if (!Array.isArray(body?.input) && typeof body?.input !== 'string') return error(res, { status: 400 }, "'input' is a required property");
      return json(res, 200, embeddingsResponse(body));
    }
    if (req.method !== 'POST' || path !== '/v1/chat/completions') return error(res, { status: 404 }, `Unknown request URL: ${req.method} ${path}.`);
    if (script.status) return error(res, script, script.errorMessage ?? `Scripted failure ${script.status}`);
    if (body?.stream) return stream(res, body, script);
    return complete(res, body, script);
  });
  return { ...fake, env: { OPENAI_API_KEY: opts.apiKey ?? 'sk-test', OPENAI_BASE_URL: `${fake.url}/v1` } };
}

export type FakeOpenAI = Awaited<ReturnType<typeof startFakeOpenAI>>;

function usageOf(body: any, script: Script, outputChunks: number) {
  const input = script.usage?.input ?? roughTokens(body?.messages);
  const output = script.usage?.output ?? Math.max(1, outputChunks);
  const usage: Record<string, unknown> = { prompt_tokens: input, completion_tokens: output, total_tokens: input + output };
  if (script.usage?.cached !== undefined) usage.prompt_tokens_details = { cached_tokens: script.usage.cached };
  return usage;
}

const toolCallsOf = (script: Script) =>
  (script.toolCalls ?? []).map((c, i) => ({ id: c.id ?? `call_${i}_${randomBytes(4).toString('hex')}`, type: 'function' as const, function: { name: c.name, arguments: c.arguments } }));

const finishOf = (script: Script) => script.finishReason ?? (script.toolCalls?.length ? 'tool_calls' : 'stop');

async function stream(res: ServerResponse, body: any, script: Script) {
  const id = `chatcmpl-${randomBytes(8).toString('hex')}`;
  const base = { id, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: body.model, system_fingerprint: 'fp_fake' };
  const frame = (choices: unknown[], extra: Record<string, unknown> = {}) => `data: ${JSON.stringify({ ...base, choices, ...extra })}\n\n`;
  const out = sseWriter(res, script);
  const { pieces } = untilStop(chunksOf(script), body.stop);
  const includeUsage = body.stream_options?.include_usage === true && !script.noUsage;
  // As OpenAI does: with include_usage, every chunk carries `usage: null` until the usage chunk.
  const nullUsage = includeUsage ? { usage: null } : {};
  if (!out.control(frame([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]))) return;
  for (const text of pieces) {
    if (!(await out.content(frame([{ index: 0, delta: { content: text }, logprobs: null, finish_reason: null }], nullUsage)))) return;
  }
  for (const [index, call] of toolCallsOf(script).entries()) {
    // As OpenAI does: id and name first, then the arguments in pieces.
    const head = { index, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } };
    if (!(await out.content(frame([{ index: 0, delta: { tool_calls: [head] }, logprobs: null, finish_reason: null }])))) return;
    const args = call.function.arguments;
    const half = Math.ceil(args.length / 2);
    for (const part of [args.slice(0, half), args.slice(half)].filter(Boolean)) {
      if (!(await out.content(frame([{ index: 0, delta: { tool_calls: [{ index, function: { arguments: part } }] }, logprobs: null, finish_reason: null }])))) return;
    }
  }
  out.control(frame([{ index: 0, delta: {}, logprobs: null, finish_reason: finishOf(script) }], nullUsage));
  if (includeUsage) out.control(frame([], { usage: usageOf(body, script, pieces.length) }));
  out.control('data: [DONE]\n\n');
  out.end();
}

async function complete(res: ServerResponse, body: any, script: Script) {
  const { pieces } = untilStop(chunksOf(script), body?.stop);
  if (script.delayMs) await new Promise((r) => setTimeout(r, script.delayMs! * Math.max(1, pieces.length)));
  const calls = toolCallsOf(script);
  const answer = {
    id: `chatcmpl-${randomBytes(8).toString('hex')}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: body?.model,
    system_fingerprint: 'fp_fake',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: pieces.length || !calls.length ? pieces.join('') : null, refusal: null, ...(calls.length ? { tool_calls: calls } : {}) },
        logprobs: null,
        finish_reason: finishOf(script),
      },
    ],
    ...(script.noUsage ? {} : { usage: usageOf(body, script, pieces.length) }),
  };
  if (script.cutAfter === undefined && script.holdAfter === undefined && script.malformedAfter === undefined) {
    json(res, 200, answer);
    return;
  }
  // A stream's failures as a whole answer meets them: half the body, then the connection lost, or nothing more, or the end (not JSON then).
  const text = JSON.stringify(answer);
  res.writeHead(200, { 'content-type': 'application/json' });
  if (script.malformedAfter !== undefined) {
    res.end(text.slice(0, text.length >> 1));
    return;
  }
  res.write(text.slice(0, text.length >> 1));
  if (script.cutAfter !== undefined) {
    await sleep(50);
    res.socket?.destroy();
  }
}

function error(res: ServerResponse, script: Pick<Script, 'status' | 'retryAfter'>, message: string) {
  const status = script.status!;
  const [type, code] = ERROR_TYPES[status] ?? ['server_error', null];
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (script.retryAfter !== undefined) headers['retry-after'] = String(script.retryAfter);
  res.writeHead(status, headers).end(JSON.stringify({ error: { message, type, param: null, code } }));
}

function json(res: ServerResponse, status: number, value: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
}
