import { and, asc, eq, gte, isNull, sql, type SQL } from 'drizzle-orm';
import { AppError, NotFound, ValidationError } from '../../errors.ts';
import type { Broadcast } from '../../platform/broadcast/broadcast.ts';
import type { Db } from '../../platform/db/database.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { Amount, Ledger, LedgerEntry } from './ledger.ts';
import { periodOf, type Period } from './periods.ts';
import type { UsageEvent, UsageRecorder } from './recorder.ts';
import { budgets, usageEvents, type BudgetPeriod, type BudgetRow, type BudgetScope } from './schema.ts';

/** Whose usage a budget counts. */
export interface Subject {
  userId: string;
  apiKeyId?: string | null;
  projectId?: string | null;
}

export interface BudgetInput {
  period: BudgetPeriod;
  limitMicros: number | null;
  limitTokens: number | null;
}

/** One budget's counter for one period, as a call draws on it. */
export type BudgetEntry = LedgerEntry & { budget: BudgetRow; period: Period };

interface UserBudgets {
  loadedAt: number;
  timezone: string;
  own: BudgetRow[];
}

/** Broadcast topic: a user's budgets (or, with `*`, the defaults) changed. */
const CHANGED_TOPIC = 'budgets.changed';

/** A budget's period as its message says it ("the daily user budget"). */
const PERIOD_WORD: Record<BudgetPeriod, string> = { day: 'daily', month: 'monthly', total: 'total' };

export const budgetExceeded = (b: BudgetRow, period: Period) =>
  new AppError(402, 'budget_exceeded', 'Budget exceeded', `The ${PERIOD_WORD[b.period]} ${b.scope === 'default' ? 'user' : b.scope.replace('_', ' ')} budget is used up${period.resetsAt ? `; it resets at ${period.resetsAt.toISOString()}` : ''}`, {
    extra: { budgetId: b.id, scope: b.scope, period: b.period, resetsAt: period.resetsAt?.toISOString() ?? null },
    ...(period.resetsAt ? { headers: { 'retry-after': String(Math.max(1, Math.ceil((period.resetsAt.getTime() - Date.now()) / 1000))) } } : {}),
  });

/**
 * Budgets (caps in USD and/or tokens per day, month or in total) and their
 * counters. A user's budgets and timezone are cached per process for
 * `cacheTtlMs` and dropped on every instance when they change.
 */
/** What budgets ask of the modules that own the subjects: who exists, who owns what, and the user's time zone. */
export interface BudgetSubjects {
  userExists(userId: string): Promise<boolean>;
  timezone(userId: string): Promise<string | undefined>;
  ownsApiKey(userId: string, apiKeyId: string): Promise<boolean>;
  ownsProject(userId: string, projectId: string): Promise<boolean>;
}

export function createBudgets(d: { db: Db; ledger: Ledger; recorder: UsageRecorder; broadcast: Broadcast; subjects: BudgetSubjects; logger?: Logger; cacheTtlMs?: number }) {
  const ttl = d.cacheTtlMs ?? 60_000;
  const cache = new Map<string, UserBudgets>();
  let defaults: { loadedAt: number; rows: BudgetRow[] } | undefined;
  // One read per user (and one of the defaults) in flight: when a cache entry lapses under load,
  // every concurrent call of that user waits for the same read instead of each sending its own.
  const loading = new Map<string, Promise<UserBudgets>>();
  let loadingDefaults: Promise<BudgetRow[]> | undefined;
  // Moves with every change this process hears of (its own, or another instance's by broadcast).
  let version = 0;
  const forget = (who: string) => {
    version++;
    // A read already under way may predate the change: it is no longer shared, nor stored.
    if (who === '*') {
      defaults = undefined;
      loadingDefaults = undefined;
    } else {
      cache.delete(who);
      loading.delete(who);
    }
  };
  void d.broadcast.subscribe(CHANGED_TOPIC, forget);

  async function changed(userId: string | null) {
    const who = userId ?? '*';
    forget(who);
    // The change is committed: a lost notice leaves other instances on the old budgets for at most their cache TTL.
    await d.broadcast
      .publish(CHANGED_TOPIC, who)
      .catch((err: unknown) => d.logger?.error({ err, userId: who }, 'could not broadcast a budget change; other instances use their cached budgets until they expire'));
  }

  function userBudgets(userId: string): Promise<UserBudgets> | UserBudgets {
    const hit = cache.get(userId);
    if (hit && Date.now() - hit.loadedAt < ttl) return hit;
    const pending = loading.get(userId);
    if (pending) return pending;
    const load: Promise<UserBudgets> = Promise.all([d.subjects.timezone(userId), d.db.select().from(budgets).where(eq(budgets.userId, userId))])
      .then(([timezone, own]) => {
        const entry = { loadedAt: Date.now(), timezone: timezone ?? 'UTC', own };
        if (loading.get(userId) === load) {
          if (cache.size > 50_000) cache.clear();
          cache.set(userId, entry);
        }
        return entry;
      })
      .finally(() => {
        if (loading.get(userId) === load) loading.delete(userId);
      });
    loading.set(userId, load);
    return load;
  }

  function defaultBudgets(): Promise<BudgetRow[]> | BudgetRow[] {
    if (defaults && Date.now() - defaults.loadedAt < ttl) return defaults.rows;
    if (loadingDefaults) return loadingDefaults;
    const load: Promise<BudgetRow[]> = Promise.resolve(d.db.select().from(budgets).where(eq(budgets.scope, 'default')))
      .then((rows) => {
        if (loadingDefaults === load) defaults = { loadedAt: Date.now(), rows };
        return rows;
      })
      .finally(() => {
        if (loadingDefaults === load) loadingDefaults = undefined;
      });
    loadingDefaults = load;
    return load;
  }

  const subjectOf = (b: BudgetRow): Subject =>
    b.scope === 'api_key' ? { userId: b.userId!, apiKeyId: b.subjectId } : b.scope === 'project' ? { userId: b.userId!, projectId: b.subjectId } : { userId: b.userId! };

  const matches = (e: Pick<UsageEvent, 'userId' | 'apiKeyId' | 'projectId' | 'occurredAt'>, s: Subject, since: Date | null) =>
    e.userId === s.userId && (!s.apiKeyId || e.apiKeyId === s.apiKeyId) && (!s.projectId || e.projectId === s.projectId) && (!since || e.occurredAt >= since);

  /** What the subject spent since `since`: the database plus this process's events not yet written. */
  async function spent(s: Subject, since: Date | null): Promise<Amount> {
    const where: SQL[] = [eq(usageEvents.userId, s.userId)];
    if (s.apiKeyId) where.push(eq(usageEvents.apiKeyId, s.apiKeyId));
    if (s.projectId) where.push(eq(usageEvents.projectId, s.projectId));
    if (since) where.push(gte(usageEvents.occurredAt, since));
    const [row] = await d.db
      .select({
        micros: sql<string>`coalesce(sum(${usageEvents.costMicros}), 0)`,
        tokens: sql<string>`coalesce(sum(${usageEvents.inputTokens} + ${usageEvents.outputTokens}), 0)`,
      })
      .from(usageEvents)
      .where(and(...where));
    const amount = { micros: Number(row!.micros), tokens: Number(row!.tokens) };
    for (const e of d.recorder.pending()) {
      if (!matches(e, s, since)) continue;
      amount.micros += e.costMicros ?? 0;
      amount.tokens += (e.inputTokens ?? 0) + (e.outputTokens ?? 0);
    }
    return amount;
  }

  function entryFor(b: BudgetRow, subject: Subject, timezone: string, now: Date): BudgetEntry {
    const period = periodOf(b.period, timezone, now);
    return {
      // A default budget is one counter per user.
      key: b.scope === 'default' ? `budget:${b.id}:${subject.userId}:${period.key}` : `budget:${b.id}:${period.key}`,
      limitMicros: b.limitMicros,
      limitTokens: b.limitTokens,
      expiresAt: period.resetsAt,
      seed: () => spent(b.scope === 'default' ? subject : subjectOf(b), period.startsAt),
      budget: b,
      period,
    };
  }

  /**
   * The counters a call by this subject draws on: the user's own budgets (or
   * the default for a period they have none of), the key's and the project's.
   */
  async function entriesFor(s: Subject, now = new Date()) {
    const cachedMine = userBudgets(s.userId);
    const cachedDefs = defaultBudgets();
    // Both cached (nearly every call): no Promise.all on the gateway's hot path.
    const [mine, defs] = cachedMine instanceof Promise || cachedDefs instanceof Promise ? await Promise.all([cachedMine, cachedDefs]) : [cachedMine, cachedDefs];
    const applicable: BudgetRow[] = [];
    for (const b of mine.own) {
      if (b.scope === 'user' || (b.scope === 'api_key' && b.subjectId === s.apiKeyId) || (b.scope === 'project' && b.subjectId === s.projectId)) applicable.push(b);
    }
    for (const b of defs) if (!mine.own.some((o) => o.scope === 'user' && o.period === b.period)) applicable.push(b);
    return applicable.map((b) => entryFor(b, s, mine.timezone, now));
  }

  const owns = (userId: string, scope: 'api_key' | 'project', subjectId: string) =>
    scope === 'api_key' ? d.subjects.ownsApiKey(userId, subjectId) : d.subjects.ownsProject(userId, subjectId);
  const subjectNotFound = (scope: 'api_key' | 'project') => NotFound(scope === 'api_key' ? 'API key' : 'Project', scope === 'api_key' ? 'api_key_not_found' : 'project_not_found');

  async function upsert(scope: BudgetScope, userId: string | null, subjectId: string | null, input: BudgetInput): Promise<BudgetRow> {
    if (input.limitMicros === null && input.limitTokens === null) throw ValidationError('Set limitUsd, limitTokens or both', 'budget_without_limit');
    const [row] = await d.db
      .insert(budgets)
      .values({ scope, userId, subjectId, period: input.period, limitMicros: input.limitMicros, limitTokens: input.limitTokens })
      .onConflictDoUpdate({
        target: [budgets.scope, budgets.userId, budgets.subjectId, budgets.period],
        set: { limitMicros: input.limitMicros, limitTokens: input.limitTokens, updatedAt: new Date() },
      })
      .returning();
    await changed(userId);
    return row!;
  }

  async function remove(where: SQL): Promise<BudgetRow> {
    const [row] = await d.db.delete(budgets).where(where).returning();
    if (!row) throw NotFound('Budget', 'budget_not_found');
    await changed(row.userId);
    return row;
  }

  return {
    entriesFor,

    /**
     * Moves whenever a budget changes (here, or elsewhere as its broadcast arrives): a call that sees it
     * moved between its start and its end looks for budgets that apply to it now and did not then.
     */
    version: () => version,

    /** Every budget that concerns the user (theirs, their keys', their projects', and the defaults that apply), with usage and reset. */
    async limitsOf(userId: string, now = new Date()) {
      const [mine, defs] = await Promise.all([userBudgets(userId), defaultBudgets()]);
      const rows = [...mine.own, ...defs.filter((b) => !mine.own.some((o) => o.scope === 'user' && o.period === b.period))];
      const entries = rows.map((b) => entryFor(b, { userId }, mine.timezone, now));
      const counters = await d.ledger.read(entries);
      return { timezone: mine.timezone, limits: entries.map((e, i) => ({ ...e, counter: counters[i]! })) };
    },

    /** A user's own cap on one of their API keys or projects. */
    async setOwn(userId: string, scope: 'api_key' | 'project', subjectId: string, input: BudgetInput) {
      if (!(await owns(userId, scope, subjectId))) throw subjectNotFound(scope);
      const row = await upsert(scope, userId, subjectId, input);
      // Looked for again once the budget is committed: a deletion committed before this look is seen here (the
      // budget goes with a 404), and one committed after it finds the budget for its clean-up to remove. With
      // the first look alone, a key deleted (and its budgets cleared) between that look and the insert left
      // a budget behind for a key that no longer exists.
      if (!(await owns(userId, scope, subjectId))) {
        await d.db.delete(budgets).where(eq(budgets.id, row.id));
        await changed(userId);
        throw subjectNotFound(scope);
      }
      return row;
    },
    deleteOwn: (userId: string, id: string) => remove(and(eq(budgets.id, id), eq(budgets.userId, userId), sql`${budgets.scope} in ('api_key', 'project')`)!),

    /**
     * The key's or project's budgets go with it (`api_key.deleted`, `project.deleted`): no longer listed nor
     * applied. Idempotent, as an event may come twice; returns how many went.
     */
    async forgetSubject(userId: string, scope: 'api_key' | 'project', subjectId: string): Promise<number> {
      const rows = await d.db
        .delete(budgets)
        .where(and(eq(budgets.scope, scope), eq(budgets.userId, userId), eq(budgets.subjectId, subjectId)))
        .returning({ id: budgets.id });
      if (rows.length) await changed(userId);
      return rows.length;
    },

    /** Admins: a user's budget, or the default for users without one (userId null). */
    async setForUser(userId: string | null, input: BudgetInput) {
      if (userId) {
        if (!(await d.subjects.userExists(userId))) throw NotFound('User', 'user_not_found');
      }
      return upsert(userId ? 'user' : 'default', userId, null, input);
    },
    deleteAny: (id: string) => remove(eq(budgets.id, id)),
    /** A user's budgets, or the defaults; none for a user that does not exist (or whose account was deleted: its budgets await its erasure). */
    async listAll(userId?: string) {
      if (userId && !(await d.subjects.userExists(userId))) return [];
      return d.db
        .select()
        .from(budgets)
        .where(userId ? eq(budgets.userId, userId) : isNull(budgets.userId))
        .orderBy(asc(budgets.scope), asc(budgets.createdAt));
    },
  };
}

export type Budgets = ReturnType<typeof createBudgets>;
