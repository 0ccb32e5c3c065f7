import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { startFakeUpstream } from './fake-upstream.ts';

/** omni-moderation-latest's categories, in the order OpenAI lists them. */
export const MODERATION_CATEGORIES = [
  'harassment',
  'harassment/threatening',
  'hate',
  'hate/threatening',
  'illicit',
  'illicit/violent',
  'self-harm',
  'self-harm/intent',
  'self-harm/instructions',
  'sexual',
  'sexual/minors',
  'violence',
  'violence/graphic',
] as const;

interface KeywordRule {
  keyword: string;
  /** Scores this keyword gives; a category at or above 0.5 is also flagged (`categories[c]: true`). */
  scores: Record<string, number>;
}

/**
 * A local OpenAI moderation endpoint: POST /v1/moderations with `{model, input: string | string[]}`
 * answers `{id, model, results: [{flagged, categories, category_scores, category_applied_input_types}]}`,
 * one result per input, every category present. A text is scored by the keywords it contains
 * (`flag('stab', { violence: 0.97 })`); the script queue makes the next request fail (`status`) or hang.
 * Point MODERATION_URL at `${url}/v1`.
 */
export async function startFakeModeration(opts: { apiKey?: string } = {}) {
  const rules: KeywordRule[] = [];
  const fake = await startFakeUpstream('fake-moderation', ({ req, res, body, script }) => {
    const path = new URL(req.url!, 'http://fake').pathname;
    if (opts.apiKey && req.headers.authorization !== `Bearer ${opts.apiKey}`) return error(res, 401, 'Incorrect API key provided.', 'invalid_api_key');
    if (req.method !== 'POST' || path !== '/v1/moderations') return error(res, 404, `Unknown request URL: ${req.method} ${path}.`, 'unknown_url');
    if (script.status) return error(res, script.status, script.errorMessage ?? `Scripted failure ${script.status}`, null);
    const input = body?.input;
    const inputs = typeof input === 'string' ? [input] : Array.isArray(input) && input.every((i) => typeof i === 'string') ? (input as string[]) : undefined;
    if (!inputs) return error(res, 400, "'input' must be a string or an array of strings", null);
    const model = typeof body?.model === 'string' ? body.model : 'omni-moderation-latest';
    json(res, 200, { id: `modr-${randomBytes(8).toString('hex')}`, model: model === 'omni-moderation-latest' ? 'omni-moderation-2024-09-26' : model, results: inputs.map(verdict) });
  });

  function verdict(text: string) {
    const scores: Record<string, number> = Object.fromEntries(MODERATION_CATEGORIES.map((c) => [c, 0.0001]));
    for (const r of rules) {
      if (!text.toLowerCase().includes(r.keyword)) continue;
      for (const [c, s] of Object.entries(r.scores)) scores[c] = Math.max(scores[c] ?? 0, s);
    }
    const categories = Object.fromEntries(Object.entries(scores).map(([c, s]) => [c, s >= 0.5]));
    const applied = Object.fromEntries(Object.keys(scores).map((c) => [c, ['text']]));
    return { flagged: Object.values(categories).some(Boolean), categories, category_scores: scores, category_applied_input_types: applied };
  }

  return {
    ...fake,
    /** Texts containing `keyword` (case-insensitive) get these scores. */
    flag(keyword: string, scores: Record<string, number>) {
      rules.push({ keyword: keyword.toLowerCase(), scores });
    },
    env: { MODERATION_URL: `${fake.url}/v1`, ...(opts.apiKey && { MODERATION_API_KEY: opts.apiKey }) } as Record<string, string>,
  };
}

export type FakeModeration = Awaited<ReturnType<typeof startFakeModeration>>;

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function error(res: ServerResponse, status: number, message: string, code: string | null) {
  json(res, status, { error: { message, type: status >= 500 ? 'server_error' : 'invalid_request_error', param: null, code } });
}
