import { Counter, type Registry } from 'prom-client';
import { sha256Hex } from '../../platform/crypto/cipher.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { CallOutcome, ChatRequest, MeterContext, Metering } from '../ai/index.ts';
import type { BudgetAlerts } from './budget-alerts.ts';
import { budgetExceeded, type BudgetEntry, type Budgets, type Subject } from './budgets.ts';
import type { Ledger } from './ledger.ts';
import type { UsageRecorder } from './recorder.ts';

/** A short fingerprint of the last user message: the abuse check counts repeats without storing prompts. */
function promptHash(request: ChatRequest): string | null {
  for (let i = request.messages.length - 1; i >= 0; i--) {
    const m = request.messages[i]!;
    if (m.role === 'user') return sha256Hex(m.content).slice(0, 16);
  }
  return null;
}

/**
 * Distinct (provider, model) pairs that get series of their own in one process; later ones count as model
 * `other`. A caller names any model under a provider (`openai:made-up-1`, `…-2`…), each a new series in every
 * counter for as long as the process lives: without a bound, a loop of them grows memory and every scrape.
 */
export const METRIC_MODELS_MAX = 200;

const NONE: readonly BudgetEntry[] = [];

/**
 * Budgets before a model call, a usage event after it. Nothing here waits on
 * the database on the request path: budgets come from a per-process cache,
 * counters from the ledger (memory, or a lease of Redis room held in
 * process), events go to the batching recorder.
 */
export function createMetering(d: {
  budgets: Budgets;
  ledger: Ledger;
  /** Told of every settled call, to tell owners of the thresholds their budgets reach. */
  alerts?: Pick<BudgetAlerts, 'touch'>;
  recorder: UsageRecorder;
  registry: Registry;
  logger?: Logger;
  /** Told the tokens every call used (tokens-per-minute limits). */
  onTokens?: (meter: MeterContext, tokens: number) => void;
}): Metering {
  const labelNames = ['provider', 'model'] as const;
  const tokens = new Counter({ name: 'parley_ai_tokens_total', help: 'Tokens by provider, model and kind (input, output, cached)', labelNames: [...labelNames, 'kind'], registers: [d.registry] });
  const cost = new Counter({ name: 'parley_ai_cost_micro_dollars_total', help: 'Cost in micro-dollars by provider and model (calls with a known price)', labelNames, registers: [d.registry] });
  const calls = new Counter({ name: 'parley_ai_calls_total', help: 'Model calls by provider, model and outcome', labelNames: [...labelNames, 'status'], registers: [d.registry] });
  const labelled = new Set<string>();
  const labelsOf = (provider: string, model: string) => {
    const pair = `${provider}\n${model}`;
    if (!labelled.has(pair) && labelled.size < METRIC_MODELS_MAX) labelled.add(pair);
    return { provider, model: labelled.has(pair) ? model : 'other' };
  };

  /**
   * Budgets that apply to a call now and did not when it started (set while it ran): it reserved nothing
   * on them, and their counters, if made meanwhile, were seeded without it. Each is made to exist before
   * the call's usage event is recorded, so its seed does not count the call and the call is added to it
   * once. Asked only when a budget changed meanwhile: otherwise no look-up, no round trip.
   */
  async function setSince(subject: Subject, startedAt: Date, entries: BudgetEntry[]): Promise<readonly BudgetEntry[]> {
    try {
      const reserved = new Set(entries.map((e) => e.key));
      // As of the start: the periods the call drew on, not those of a day that began while it ran.
      const late = (await d.budgets.entriesFor(subject, startedAt)).filter((e) => !reserved.has(e.key));
      if (late.length) await d.ledger.read(late);
      return late;
    } catch (err) {
      d.logger?.error({ err }, 'could not count a call against the budgets set while it ran');
      return NONE;
    }
  }

  return {
    async begin(admitted, request, estimate) {
      const subject = { userId: admitted.userId, apiKeyId: admitted.apiKeyId, projectId: admitted.projectId };
      // Read before the budgets: a change that lands while they load is seen at the end.
      const version = d.budgets.version();
      const startedAt = new Date();
      const entries = await d.budgets.entriesFor(subject, startedAt);
      if (entries.length) {
        const r = await d.ledger.reserve(entries, estimate);
        if (!r.ok) throw budgetExceeded(entries[r.index]!.budget, entries[r.index]!.period);
      }
      const hash = promptHash(request);
      let ended = false;
      // Not awaited: both ledgers settle in process at once, so that client's next call here already
      // sees what this one spent; Redis gets it in the next batch, or at once if it went beyond the lease.
      // If that fails, the reservation stays counted until the period ends: the budget errs on the side of refusing.
      const settle = (actual: { micros: number; tokens: number }, late: readonly BudgetEntry[] = NONE) => {
        if (entries.length) {
          d.ledger
            .settle(
              entries.map((e) => e.key),
              estimate,
              actual,
            )
            .catch((err: unknown) => d.logger?.error({ err }, 'could not settle budget counters'));
        }
        if (late.length) {
          d.ledger
            .add(
              late.map((e) => e.key),
              actual,
            )
            .catch((err: unknown) => d.logger?.error({ err }, 'could not add a call\'s spend to the budgets set while it ran'));
        }
        if ((entries.length || late.length) && (actual.micros || actual.tokens)) d.alerts?.touch(admitted.userId, late.length ? [...entries, ...late] : entries);
      };
      const release = () => {
        if (ended) return;
        ended = true;
        settle({ micros: 0, tokens: 0 });
      };
      const end = async (outcome: CallOutcome, meter: MeterContext) => {
        if (ended) return;
        ended = true;
        const { usage } = outcome;
        // Nearly every call: nothing changed, no await.
        const late = d.budgets.version() !== version && (usage.inputTokens || usage.outputTokens || outcome.costMicros) ? await setSince(subject, startedAt, entries) : NONE;
        d.recorder.record({
          // Only a success is deduplicated: see MeterContext.usageEventId.
          id: outcome.status === 'ok' ? meter.usageEventId : undefined,
          userId: meter.userId,
          apiKeyId: meter.apiKeyId ?? null,
          projectId: meter.projectId ?? null,
          conversationId: meter.conversationId ?? null,
          messageId: meter.messageId ?? null,
          source: meter.source,
          provider: outcome.provider ?? 'none',
          model: outcome.model ?? 'none',
          inputTokens: usage.inputTokens,
          outputTokens: usage.outputTokens,
          cachedTokens: usage.cachedTokens ?? 0,
          costMicros: outcome.costMicros,
          latencyMs: outcome.latencyMs,
          ttftMs: outcome.ttftMs,
          status: outcome.status,
          promptHash: hash,
          attempts: outcome.attempts,
        });
        const labels = labelsOf(outcome.provider ?? 'none', outcome.model ?? 'none');
        calls.inc({ ...labels, status: outcome.status });
        if (usage.inputTokens) tokens.inc({ ...labels, kind: 'input' }, usage.inputTokens);
        if (usage.outputTokens) tokens.inc({ ...labels, kind: 'output' }, usage.outputTokens);
        if (usage.cachedTokens) tokens.inc({ ...labels, kind: 'cached' }, usage.cachedTokens);
        if (outcome.costMicros) cost.inc(labels, outcome.costMicros);
        const used = usage.inputTokens + usage.outputTokens;
        if (used) d.onTokens?.(meter, used);
        settle({ micros: outcome.costMicros ?? 0, tokens: used }, late);
      };
      return { end, release };
    },
  };
}
