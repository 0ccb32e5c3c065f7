import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { chunksOf, roughTokens, sseWriter, startFakeUpstream, untilStop, type Reply, type Script } from './fake-upstream.ts';

export type { Script } from './fake-upstream.ts';

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

/**
 * A local Anthropic speaking the Messages wire format: POST /v1/messages
 * (SSE events message_start, content_block_start, content_block_delta with
 * text_delta / input_json_delta, content_block_stop, message_delta with usage
 * and stop_reason, message_stop; or one JSON message), GET /v1/models, and
 * Anthropic's error bodies. It wants `x-api-key` and `anthropic-version`.
 * Point a provider at `${url}/v1`.
 */
export async function startFakeAnthropic(opts: { apiKey?: string; models?: string[] } = {}) {
  const apiKey = opts.apiKey ?? 'sk-ant-test';
  const models = opts.models ?? ['claude-sonnet-4-5', 'claude-haiku-4-5'];
  const fake = await startFakeUpstream('fake-anthropic', async ({ req, res, body, script }: Reply) => {
    const path = new URL(req.url!, 'http://fake').pathname;
    if (req.headers['x-api-key'] !== apiKey) return error(res, { status: 401 }, 'invalid x-api-key');
    if (!req.headers['anthropic-version']) return error(res, { status: 400 }, 'anthropic-version: header is required');
    if (req.method === 'GET' && path === '/v1/models') {
      const data = models.map((id) => ({ type: 'model', id, display_name: id, created_at: '2025-01-01T00:00:00Z' }));
      return json(res, 200, { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null });
    }
    if (req.method !== 'POST' || path !== '/v1/messages') return error(res, { status: 404 }, 'Not found');
    if (typeof body?.max_tokens !== 'number') return error(res, { status: 400 }, 'max_tokens: Field required');
    if (script.status) return error(res, script, `Scripted failure ${script.status}`);
    if (body.stream) return stream(res, body, script);
    return complete(res, body, script);
  });
  return { ...fake, env: { ANTHROPIC_API_KEY: apiKey, ANTHROPIC_BASE_URL: `${fake.url}/v1` } };
}

export type FakeAnthropic = Awaited<ReturnType<typeof startFakeAnthropic>>;

function usageOf(body: any, script: Script, outputChunks: number) {
  const cached = script.usage?.cached ?? 0;
  // Anthropic's input_tokens excludes tokens read from the cache.
  const input = (script.usage?.input ?? roughTokens([body?.system, body?.messages])) - cached;
  return { input_tokens: input, cache_creation_input_tokens: 0, cache_read_input_tokens: cached, output_tokens: script.usage?.output ?? Math.max(1, outputChunks) };
}

const toolUses = (script: Script) =>
  (script.toolCalls ?? []).map((c, i) => ({ type: 'tool_use' as const, id: c.id ?? `toolu_${i}${randomBytes(6).toString('hex')}`, name: c.name, input: JSON.parse(c.arguments || '{}') }));

const stopOf = (script: Script, stopped?: string) => script.finishReason ?? (stopped !== undefined ? 'stop_sequence' : script.toolCalls?.length ? 'tool_use' : 'end_turn');

async function stream(res: ServerResponse, body: any, script: Script) {
  const event = (type: string, data: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  const out = sseWriter(res, script);
  const { pieces, stopped } = untilStop(chunksOf(script), body.stop_sequences);
  const usage = usageOf(body, script, pieces.length);
  const message = { id: `msg_${randomBytes(12).toString('hex')}`, type: 'message', role: 'assistant', model: body.model, content: [], stop_reason: null, stop_sequence: null };
  if (!out.control(event('message_start', { message: { ...message, usage: { ...usage, output_tokens: 1 } } }))) return;
  let index = 0;
  if (pieces.length) {
    out.control(event('content_block_start', { index, content_block: { type: 'text', text: '' } }));
    out.control(event('ping', {}));
    for (const text of pieces) {
      if (!(await out.content(event('content_block_delta', { index, delta: { type: 'text_delta', text } })))) return;
    }
    out.control(event('content_block_stop', { index }));
    index++;
  }
  for (const use of toolUses(script)) {
    out.control(event('content_block_start', { index, content_block: { ...use, input: {} } }));
    const json = JSON.stringify(use.input);
    if (!(await out.content(event('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: json } })))) return;
    out.control(event('content_block_stop', { index }));
    index++;
  }
  out.control(event('message_delta', { delta: { stop_reason: stopOf(script, stopped), stop_sequence: stopped ?? null }, usage: { output_tokens: usage.output_tokens } }));
  out.control(event('message_stop', {}));
  out.end();
}

async function complete(res: ServerResponse, body: any, script: Script) {
  const { pieces, stopped } = untilStop(chunksOf(script), body?.stop_sequences);
  if (script.delayMs) await new Promise((r) => setTimeout(r, script.delayMs! * Math.max(1, pieces.length)));
  const content = [...(pieces.length ? [{ type: 'text', text: pieces.join('') }] : []), ...toolUses(script)];
  json(res, 200, {
    id: `msg_${randomBytes(12).toString('hex')}`,
    type: 'message',
    role: 'assistant',
    model: body.model,
    content,
    stop_reason: stopOf(script, stopped),
    stop_sequence: stopped ?? null,
    usage: usageOf(body, script, pieces.length),
  });
}

function error(res: ServerResponse, script: Pick<Script, 'status' | 'retryAfter'>, message: string) {
  const status = script.status!;
  const headers: Record<string, string> = { 'content-type': 'application/json', 'request-id': `req_${randomBytes(8).toString('hex')}` };
  if (script.retryAfter !== undefined) headers['retry-after'] = String(script.retryAfter);
  res.writeHead(status, headers).end(JSON.stringify({ type: 'error', error: { type: ERROR_TYPES[status] ?? 'api_error', message } }));
}

function json(res: ServerResponse, status: number, value: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
}
