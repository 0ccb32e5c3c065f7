import { z } from 'zod';
import type { ModerationSettings } from './settings.ts';

/** One input's verdict, as OpenAI's `/v1/moderations` answers it. */
export interface ModerationResult {
  flagged: boolean;
  categories: Record<string, boolean>;
  scores: Record<string, number>;
  /** The model that answered (the provider's name for it). */
  model: string;
}

const response = z.object({
  model: z.string().optional(),
  results: z
    .array(
      z.object({
        flagged: z.boolean(),
        categories: z.record(z.string(), z.boolean().nullable()),
        category_scores: z.record(z.string(), z.number()).default({}),
      }),
    )
    .min(1),
});

/** The provider could not give a verdict: unreachable, too slow, an error status, or an answer not in the wire format. */
export class ModerationUnavailable extends Error {}

/**
 * A client of OpenAI's moderation endpoint (`POST {url}/moderations`, `{model, input}`), which
 * OpenAI-compatible servers (LiteLLM, Azure's OpenAI proxy, local guard models behind one) speak too.
 */
export function createModerationClient(settings: ModerationSettings) {
  return {
    settings,
    async classify(text: string): Promise<ModerationResult> {
      let res: Response;
      try {
        res = await fetch(`${settings.url}/moderations`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(settings.apiKey && { authorization: `Bearer ${settings.apiKey}` }) },
          body: JSON.stringify({ model: settings.model, input: text }),
          signal: AbortSignal.timeout(settings.timeoutMs),
        });
      } catch (err) {
        const timedOut = (err as Error).name === 'TimeoutError';
        throw new ModerationUnavailable(timedOut ? `no answer within ${settings.timeoutMs} ms` : `unreachable (${(err as Error).message})`, { cause: err });
      }
      let body: unknown;
      try {
        body = await res.json();
      } catch (err) {
        throw new ModerationUnavailable(`HTTP ${res.status} with a body that is not JSON`, { cause: err });
      }
      if (!res.ok) {
        const message = (body as { error?: { message?: unknown } } | null)?.error?.message;
        throw new ModerationUnavailable(`HTTP ${res.status}${typeof message === 'string' ? `: ${message.slice(0, 200)}` : ''}`);
      }
      const parsed = response.safeParse(body);
      if (!parsed.success) throw new ModerationUnavailable('an answer not in the moderation wire format');
      const [result] = parsed.data.results;
      const categories = Object.fromEntries(Object.entries(result!.categories).map(([k, v]) => [k, v === true]));
      return { flagged: result!.flagged, categories, scores: result!.category_scores, model: parsed.data.model ?? settings.model };
    },
  };
}

export type ModerationClient = ReturnType<typeof createModerationClient>;
