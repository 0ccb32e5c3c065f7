type Responses = Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>;
type Operation = { tags?: string[]; responses?: Responses };

/** The parts of an OpenAPI document this file reads and rewrites. */
interface Document {
  paths?: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, unknown> };
}

const PROBLEM_REF = '#/components/schemas/Problem';

/**
 * The generated document, made to say what the routes do: see problemErrors and gatewayErrors, applied to each
 * operation in one walk.
 */
export function refineOpenApi<T>(doc: T): T {
  const d = doc as Document;
  for (const operations of Object.values(d.paths ?? {})) {
    for (const [method, operation] of Object.entries(operations)) {
      problemErrors(operation);
      gatewayErrors(d, method, operation);
    }
  }
  return doc;
}

/**
 * Error responses as they are sent: a route's 4xx/5xx declared with the Problem schema goes out as
 * `application/problem+json` (sendProblem), whatever media type the route produces when it succeeds (JSON,
 * an HTML page), so the document says so instead of `application/json` or `text/html`.
 */
function problemErrors(op: Operation): void {
  for (const [status, response] of Object.entries(op.responses ?? {})) {
    if (!(Number(status) >= 400) || !response.content) continue;
    const problem = Object.values(response.content).find((c) => (c.schema as { $ref?: string } | undefined)?.$ref === PROBLEM_REF);
    if (problem) response.content = { 'application/problem+json': problem };
  }
}

/** The error bodies of the client APIs Parley speaks, as their SDKs read them (ai/gateway-format.ts, ai/messages-format.ts). */
const GATEWAY_ERRORS = {
  'openai-compatible': {
    name: 'OpenAIError',
    schema: {
      type: 'object',
      required: ['error'],
      properties: {
        error: {
          type: 'object',
          required: ['message', 'type'],
          properties: { message: { type: 'string' }, type: { type: 'string' }, code: { type: ['string', 'null'] }, param: { type: ['string', 'null'] } },
          description: "OpenAI's error shape; `code` is Parley's stable code. Some errors add fields (`attempts` of a fallback chain).",
        },
      },
    },
  },
  'anthropic-compatible': {
    name: 'AnthropicError',
    schema: {
      type: 'object',
      required: ['type', 'error'],
      properties: {
        type: { const: 'error' },
        error: {
          type: 'object',
          required: ['type', 'message'],
          properties: { type: { type: 'string' }, message: { type: 'string' }, details: { type: 'object', properties: { error_code: { type: 'string', description: "Parley's stable code" } } } },
        },
        request_id: { type: 'string' },
      },
    },
  },
} as const;

/** What a gateway operation may answer besides success: a request refused (body, key, scope, budget, limits, safety) or every provider failing. */
const GATEWAY_STATUSES = { read: ['401', '403', '404', '429', '500', '503'], write: ['400', '401', '402', '403', '404', '413', '415', '422', '429', '500', '502', '503'] };

/**
 * The OpenAI- and Anthropic-compatible operations answer errors in those APIs' own shapes (their error handlers),
 * not problem+json: the document declares them with those schemas, so a generated client parses them.
 */
function gatewayErrors(d: Document, method: string, op: Operation): void {
  const api = op.tags?.map((tag) => GATEWAY_ERRORS[tag as keyof typeof GATEWAY_ERRORS]).find(Boolean);
  if (!api) return;
  d.components ??= {};
  d.components.schemas ??= {};
  d.components.schemas[api.name] ??= api.schema;
  op.responses ??= {};
  for (const status of method === 'get' || method === 'delete' ? GATEWAY_STATUSES.read : GATEWAY_STATUSES.write) {
    op.responses[status] ??= { description: `Error (${api.name})`, content: { 'application/json': { schema: { $ref: `#/components/schemas/${api.name}` } } } };
  }
}
