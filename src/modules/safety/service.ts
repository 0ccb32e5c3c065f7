import { eq } from 'drizzle-orm';
import { Counter } from 'prom-client';
import { AppError, NotFound, ValidationError } from '../../errors.ts';
import type { Deps } from '../../deps.ts';
import { createCircuitBreakers, type Metering } from '../ai/index.ts';
import type { Audit } from '../audit/index.ts';
import type { Projects } from '../projects/index.ts';
import type { Usage } from '../usage/index.ts';
import { createModerationClient, ModerationUnavailable, type ModerationResult } from './moderation.ts';
import { createPatternMatcher } from './pattern-matcher.ts';
import { findTerm, normalizeText, validateRules, type TextRules } from './rules.ts';
import { safetyRules, type ModerationPolicy, type SafetyRulesRow } from './schema.ts';
import type { SafetySettings } from './settings.ts';

/** Who a text is checked for: flags name them, the moderation call is metered to them. */
export interface SafetyScope {
  userId: string;
  projectId?: string | null;
  apiKeyId?: string | null;
  conversationId?: string | null;
  /** The answer being checked (checkOutput), when it has an id already. */
  messageId?: string | null;
}

/** What flagged a text: the moderation provider, the deployment's rules (SAFETY_RULES) or the project's. */
export type FlagSource = 'provider' | 'deployment' | 'project';

export interface Flag {
  /**
   * Provider categories (`harassment`, `violence/graphic`), or `blocked_term` / `blocked_pattern`, or
   * `pattern_timeout` when the text could not be searched through the patterns in time (refused, not let through).
   */
  categories: string[];
  source: FlagSource;
  /** Which rule: `blockedTerms[3]`, `patterns[0]`; absent for the provider. */
  rule?: string;
}

export type OutputVerdict = { flagged: false } | ({ flagged: true } & Flag);

/** A project's rules as its editors see and send them. */
export interface ProjectRules extends TextRules {
  moderation: ModerationPolicy;
}

const NO_POLICY: ModerationPolicy = { categories: null, thresholds: {} };
const EMPTY: ProjectRules = { blockedTerms: [], patterns: [], maxInputChars: null, moderation: NO_POLICY };

// The provider's circuit opens after this many failures in a row and stays open this long:
// while it is open, checks answer at once (fail open or 503) instead of each waiting out the timeout.
const CIRCUIT = { failureThreshold: 5, cooldownMs: 30_000 };
const PROVIDER = 'moderation';

const unavailable = (reason: string) =>
  new AppError(503, 'moderation_unavailable', 'Service unavailable', `The moderation provider cannot check this text now (${reason}); try again shortly`, {
    headers: { 'retry-after': '5' },
    extra: { retryAfter: 5 },
  });

/** The categories a verdict flags under a project's policy and the deployment's always-enforced ones. */
export function flaggedCategories(result: ModerationResult, policy: ModerationPolicy, always: readonly string[]): string[] {
  const out: string[] = [];
  for (const category of new Set([...Object.keys(result.categories), ...Object.keys(result.scores)])) {
    const on = result.categories[category] === true;
    const threshold = policy.thresholds[category];
    if (on && always.includes(category)) out.push(category);
    else if (threshold !== undefined) {
      if ((result.scores[category] ?? 0) >= threshold) out.push(category);
    } else if (on && (policy.categories === null || policy.categories.includes(category))) out.push(category);
  }
  return out;
}

/**
 * The checks a chat turn runs before the model sees the input and after it answers: the deployment's
 * rules, the project's, then the moderation provider when one is configured (metered as a model call,
 * source `moderation`). Every flag is written to the audit log (`content.flagged`) and raised as an
 * abuse flag (`content_flagged`) for admins; the flagged text itself is stored by neither.
 */
export function createSafety(d: {
  db: Deps['db'];
  logger: Deps['logger'];
  registry: Deps['metrics']['registry'];
  settings: SafetySettings;
  projects: Pick<Projects, 'exists'>;
  audit: Pick<Audit, 'record'>;
  abuse: Pick<Usage['abuse'], 'raise'>;
  metering?: Metering;
}) {
  const { db, settings } = d;
  const moderation = settings.moderation && createModerationClient(settings.moderation);
  const patterns = createPatternMatcher({ timeoutMs: settings.patternTimeoutMs, logger: d.logger });
  const circuit = createCircuitBreakers(CIRCUIT);
  const flags = new Counter({ name: 'parley_safety_flags_total', help: 'Texts the safety checks flagged, by direction and source', labelNames: ['direction', 'source'], registers: [d.registry] });

  const toRules = (row: SafetyRulesRow | undefined): ProjectRules =>
    row ? { blockedTerms: row.blockedTerms, patterns: row.patterns, maxInputChars: row.maxInputChars, moderation: row.moderation } : EMPTY;

  async function projectRules(projectId: string | null | undefined): Promise<ProjectRules> {
    if (!projectId) return EMPTY;
    const [row] = await db.select().from(safetyRules).where(eq(safetyRules.projectId, projectId));
    return toRules(row);
  }

  /** Asks the provider, metered; undefined when none is configured, nothing is enforced, or it is down and failing open. */
  async function moderate(scope: SafetyScope, text: string, policy: ModerationPolicy): Promise<Flag | undefined> {
    if (!moderation) return undefined;
    const always = settings.rules.moderationCategories;
    if (policy.categories?.length === 0 && !Object.keys(policy.thresholds).length && !always.length) return undefined;
    const failed = (reason: string) => {
      if (moderation.settings.failOpen) {
        d.logger.warn({ reason, userId: scope.userId, projectId: scope.projectId }, 'moderation provider unavailable; text let through unchecked (MODERATION_FAIL_OPEN)');
        return undefined;
      }
      throw unavailable(reason);
    };
    if (!circuit.allow(PROVIDER)) return failed('it failed repeatedly and is rested for a while');
    const meter = { source: 'moderation' as const, userId: scope.userId, apiKeyId: scope.apiKeyId ?? null, projectId: scope.projectId ?? null, conversationId: scope.conversationId ?? null, messageId: scope.messageId ?? null };
    let call;
    try {
      // No messages: the chat turn's own event already carries the prompt's fingerprint for the abuse check.
      call = await d.metering?.begin(meter, { chain: [], messages: [] }, { micros: 0, tokens: 0 });
    } catch (err) {
      circuit.release(PROVIDER);
      throw err;
    }
    const started = performance.now();
    const end = (status: 'ok' | 'failed', model: string) =>
      call?.end({ status, provider: PROVIDER, model, usage: { inputTokens: 0, outputTokens: 0 }, costMicros: 0, latencyMs: Math.round(performance.now() - started), ttftMs: null, attempts: [] }, meter);
    let result: ModerationResult;
    try {
      result = await moderation.classify(text);
    } catch (err) {
      await end('failed', moderation.settings.model);
      if (!(err instanceof ModerationUnavailable)) throw err;
      circuit.failure(PROVIDER);
      return failed(err.message);
    }
    circuit.success(PROVIDER);
    await end('ok', result.model);
    const categories = flaggedCategories(result, policy, always);
    return categories.length ? { categories, source: 'provider' } : undefined;
  }

  /** What a rule set finds in a text (normalized): the first term, else the first pattern, by its place in the set. */
  async function matchRules(normalized: string, rules: Pick<TextRules, 'blockedTerms' | 'patterns'>, source: FlagSource): Promise<Flag | undefined> {
    const term = findTerm(normalized.toLowerCase(), rules.blockedTerms);
    if (term !== undefined) return { categories: ['blocked_term'], source, rule: `blockedTerms[${rules.blockedTerms.indexOf(term)}]` };
    const found = await patterns.firstMatch(normalized, rules.patterns);
    if (found === 'timeout') return { categories: ['pattern_timeout'], source, rule: 'patterns' };
    return found >= 0 ? { categories: ['blocked_pattern'], source, rule: `patterns[${found}]` } : undefined;
  }

  async function check(scope: SafetyScope, text: string, rules: ProjectRules): Promise<Flag | undefined> {
    if (settings.rules.blockedTerms.length || settings.rules.patterns.length || rules.blockedTerms.length || rules.patterns.length) {
      const normalized = normalizeText(text);
      const flag = (await matchRules(normalized, settings.rules, 'deployment')) ?? (await matchRules(normalized, rules, 'project'));
      if (flag) return flag;
    }
    return moderate(scope, text, rules.moderation);
  }

  /** Whether `check` reads a text at all under these rules: terms, patterns or a provider. */
  const checksContent = (rules: ProjectRules) =>
    Boolean(moderation) || settings.rules.blockedTerms.length > 0 || settings.rules.patterns.length > 0 || rules.blockedTerms.length > 0 || rules.patterns.length > 0;

  /** Records a flag on what a caller sent and refuses it: 422 `content_flagged` (`what`: "This message", "This document"). */
  async function refuse(scope: SafetyScope, flag: Flag, what: string): Promise<never> {
    await report(scope, 'input', flag);
    throw new AppError(422, 'content_flagged', 'Content flagged', `${what} was flagged (${flag.categories.join(', ')}) and not sent to the model`, { extra: { ...flag } });
  }

  /** Audit entry and abuse flag; a failure to write them is logged, never turned into the caller's error. */
  async function report(scope: SafetyScope, direction: 'input' | 'output', flag: Flag) {
    flags.inc({ direction, source: flag.source });
    const by = flag.source === 'provider' ? 'the moderation provider' : `the ${flag.source}'s ${flag.rule}`;
    const where = scope.projectId ? ` in project ${scope.projectId}` : '';
    const results = await Promise.allSettled([
      d.audit.record({
        action: 'content.flagged',
        userId: scope.userId,
        metadata: { direction, ...flag, projectId: scope.projectId ?? null, conversationId: scope.conversationId ?? null, messageId: scope.messageId ?? null, apiKeyId: scope.apiKeyId ?? null },
      }),
      d.abuse.raise({ userId: scope.userId, kind: 'content_flagged', evidence: `${direction === 'input' ? 'a message' : 'an answer'} flagged by ${by} (${flag.categories.join(', ')})${where}` }),
    ]);
    for (const r of results) if (r.status === 'rejected') d.logger.error({ err: r.reason, userId: scope.userId, direction }, 'could not record a safety flag');
  }

  async function assertEditor(userId: string, projectId: string) {
    if (!(await d.projects.exists(userId, projectId))) throw NotFound('Project', 'project_not_found');
  }

  const r = settings.rules;
  /** Whether the deployment checks anything without a project: rules of its own or a moderation provider. */
  const deploymentChecks = Boolean(moderation) || r.blockedTerms.length > 0 || r.patterns.length > 0 || r.maxInputChars !== null;

  return {
    /** Whether a moderation provider is configured (MODERATION_URL). */
    moderationEnabled: Boolean(moderation),
    /** Ends the patterns' thread (the process is stopping). */
    close: () => patterns.close(),
    /** Whether checkRequest checks anything for a caller without a project (the deployment has rules or a provider). */
    checksRequests: deploymentChecks,

    /**
     * Checks what a gateway caller sends (the text of its user and system messages) with the deployment's
     * rules and the moderation provider, as one text: one provider call per request. Each message is held to
     * `maxInputChars`. Throws as checkInput does; returns at once when the deployment checks nothing.
     */
    async checkRequest(scope: SafetyScope, texts: string[]): Promise<void> {
      if (!deploymentChecks && !scope.projectId) return;
      const rules = await projectRules(scope.projectId);
      const caps = [r.maxInputChars, rules.maxInputChars].filter((n): n is number => n !== null);
      const max = caps.length ? Math.min(...caps) : null;
      if (max !== null && texts.some((t) => t.length > max)) throw ValidationError(`A message may hold at most ${max} characters here`, 'message_too_long', { max });
      const flag = await check(scope, texts.join('\n\n'), rules);
      if (flag) await refuse(scope, flag, 'This request');
    },

    /**
     * Checks a user's message, with the text of its `attached` files, before any model sees it. Throws 422 `content_flagged` (extra:
     * `categories`, `source`, `rule`) when flagged, 400 `message_too_long` past the shorter of the
     * deployment's and the project's `maxInputChars`, 503 `moderation_unavailable` when the provider
     * cannot answer and MODERATION_FAIL_OPEN is false, 402 when a budget refuses the moderation call.
     */
    async checkInput(scope: SafetyScope, text: string, attached?: () => Promise<string[]>): Promise<void> {
      const rules = await projectRules(scope.projectId);
      const caps = [settings.rules.maxInputChars, rules.maxInputChars].filter((n): n is number => n !== null);
      const max = caps.length ? Math.min(...caps) : null;
      if (max !== null && text.length > max) throw ValidationError(`A message may hold at most ${max} characters here`, 'message_too_long', { max });
      // The files' text goes to the model with the message: checked with it, in the same call (read only when something checks it).
      const texts = attached && checksContent(rules) ? [text, ...(await attached())] : [text];
      const flag = await check(scope, texts.filter(Boolean).join('\n\n'), rules);
      if (flag) await refuse(scope, flag, 'This message');
    },

    /**
     * Checks content a user hands the model that is not a message (a document to summarize) with the rules
     * and the provider, as checkInput does but with no length cap. Throws as checkInput; returns at once when
     * nothing is checked (the text is read only then).
     */
    async checkContent(scope: SafetyScope, text: () => string, what: string): Promise<void> {
      const rules = await projectRules(scope.projectId);
      if (!checksContent(rules)) return;
      const flag = await check(scope, text(), rules);
      if (flag) await refuse(scope, flag, what);
    },

    /**
     * Checks a model's answer (whole, or as far as it got). A flag is a result, never a throw: the
     * caller stops the answer and marks it. Throws only what checkInput throws for other reasons (503, 402).
     */
    async checkOutput(scope: SafetyScope, text: string): Promise<OutputVerdict> {
      const flag = await check(scope, text, await projectRules(scope.projectId));
      if (!flag) return { flagged: false };
      await report(scope, 'output', flag);
      return { flagged: true, ...flag };
    },

    /** A project's own rules, for someone who may edit the project (404 for anyone else). */
    async getProjectRules(userId: string, projectId: string): Promise<ProjectRules & { updatedAt: Date | null }> {
      await assertEditor(userId, projectId);
      const [row] = await db.select().from(safetyRules).where(eq(safetyRules.projectId, projectId));
      return { ...toRules(row), updatedAt: row?.updatedAt ?? null };
    },

    /** Replaces a project's rules; patterns are refused (400) unless they compile and have a safe shape. */
    async setProjectRules(userId: string, projectId: string, input: ProjectRules): Promise<ProjectRules & { updatedAt: Date | null }> {
      await assertEditor(userId, projectId);
      const rules = validateRules(input);
      for (const [category, threshold] of Object.entries(input.moderation.thresholds)) {
        if (!(threshold >= 0 && threshold <= 1)) throw ValidationError(`moderation.thresholds.${category} must be between 0 and 1`, 'invalid_safety_rules');
      }
      const values = { ...rules, moderation: input.moderation, updatedAt: new Date(), updatedBy: userId };
      const [row] = await db
        .insert(safetyRules)
        .values({ projectId, ...values })
        .onConflictDoUpdate({ target: safetyRules.projectId, set: values })
        .returning();
      return { ...toRules(row), updatedAt: row!.updatedAt };
    },
  };
}

export type Safety = ReturnType<typeof createSafety>;
