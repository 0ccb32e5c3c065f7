import { and, desc, eq, gte, inArray, isNull, lt, sql, type SQL } from 'drizzle-orm';
import { NotFound } from '../../errors.ts';
import type { Db } from '../../platform/db/database.ts';
import type { ApiKeys } from '../api-keys/index.ts';
import { abuseFlags, type AbuseFlagRow } from './schema.ts';
import { usageEvents } from './schema.ts';

export interface AbuseSettings {
  /** A user's tokens in the last hour above this many times their hourly average of the week before… */
  spikeFactor: number;
  /** …and above this many tokens (so a quiet account's first busy hour is not a spike). */
  spikeMinTokens: number;
  /** The same prompt this many times in an hour looks automated. */
  repeatedPrompts: number;
  /** This many API keys created in an hour. */
  keyBurst: number;
  /** When > 0, a flagged user is also banned for this long. */
  autoThrottleSeconds: number;
}

export type AbuseKind = 'usage_spike' | 'repeated_prompts' | 'key_burst' | 'content_flagged';
interface Finding {
  userId: string;
  kind: AbuseKind;
  evidence: string;
}

const HOUR = 3600_000;
const BASELINE_HOURS = 7 * 24;

/**
 * The scheduled abuse check: flags accounts whose last hour of use jumps far
 * above their own baseline, that send the same prompt over and over, or that
 * create many API keys at once. A user is flagged for a kind at most once a
 * day while an earlier flag is uncleared. Admins list and clear flags; with
 * autoThrottleSeconds set, a flag also bans the user for that long.
 */
export function createAbuseCheck(d: { db: Db; apiKeys: Pick<ApiKeys, 'createdSince'>; settings: AbuseSettings; ban?: (userId: string, seconds: number, reason: string) => Promise<unknown> }) {
  const { db, settings: s } = d;

  async function spikes(now: Date): Promise<Finding[]> {
    const hourAgo = new Date(now.getTime() - HOUR);
    const weekAgo = new Date(hourAgo.getTime() - BASELINE_HOURS * HOUR);
    const tokens = sql<string>`sum(${usageEvents.inputTokens} + ${usageEvents.outputTokens})`;
    const recent = await db
      .select({ userId: usageEvents.userId, tokens })
      .from(usageEvents)
      .where(gte(usageEvents.occurredAt, hourAgo))
      .groupBy(usageEvents.userId)
      .having(sql`${tokens} >= ${s.spikeMinTokens}`);
    if (!recent.length) return [];
    // Every such user's week in one query (one each took 2,000 queries an hour with 2,000 busy users).
    const baselines = new Map(
      (
        await db
          .select({ userId: usageEvents.userId, tokens })
          .from(usageEvents)
          .where(and(inArray(usageEvents.userId, recent.map((r) => r.userId)), gte(usageEvents.occurredAt, weekAgo), lt(usageEvents.occurredAt, hourAgo)))
          .groupBy(usageEvents.userId)
      ).map((b) => [b.userId, Number(b.tokens)]),
    );
    const found: Finding[] = [];
    for (const r of recent) {
      const hourly = (baselines.get(r.userId) ?? 0) / BASELINE_HOURS;
      const last = Number(r.tokens);
      if (last >= s.spikeFactor * hourly) {
        found.push({ userId: r.userId, kind: 'usage_spike', evidence: `${last} tokens in the last hour against an hourly average of ${Math.round(hourly)} over the week before (more than ${s.spikeFactor}×)` });
      }
    }
    return found;
  }

  async function repeats(now: Date): Promise<Finding[]> {
    const count = sql<number>`count(*)::int`;
    const rows = await db
      .select({ userId: usageEvents.userId, hash: usageEvents.promptHash, count })
      .from(usageEvents)
      .where(and(gte(usageEvents.occurredAt, new Date(now.getTime() - HOUR)), sql`${usageEvents.promptHash} is not null`))
      .groupBy(usageEvents.userId, usageEvents.promptHash)
      .having(sql`count(*) >= ${s.repeatedPrompts}`);
    return rows.map((r) => ({ userId: r.userId, kind: 'repeated_prompts' as const, evidence: `the same prompt (fingerprint ${r.hash}) ${r.count} times in the last hour` }));
  }

  async function keyBursts(now: Date): Promise<Finding[]> {
    const rows = await d.apiKeys.createdSince(new Date(now.getTime() - HOUR), s.keyBurst);
    return rows.map((r) => ({ userId: r.userId, kind: 'key_burst' as const, evidence: `${r.count} API keys created in the last hour` }));
  }

  return {
    /** Runs every check; returns the flags it raised. */
    async run(now = new Date()): Promise<AbuseFlagRow[]> {
      const findings = [...(await spikes(now)), ...(await repeats(now)), ...(await keyBursts(now))];
      const raised: AbuseFlagRow[] = [];
      for (const f of findings) {
        const [open] = await db
          .select({ id: abuseFlags.id })
          .from(abuseFlags)
          .where(and(eq(abuseFlags.userId, f.userId), eq(abuseFlags.kind, f.kind), isNull(abuseFlags.clearedAt), gte(abuseFlags.createdAt, new Date(now.getTime() - 24 * HOUR))));
        if (open) continue;
        const [row] = await db.insert(abuseFlags).values(f).returning();
        raised.push(row!);
        if (s.autoThrottleSeconds > 0 && d.ban) await d.ban(f.userId, s.autoThrottleSeconds, `Automatic throttle: ${f.kind.replace('_', ' ')} (${f.evidence})`);
      }
      return raised;
    },

    /**
     * Raises a flag another module found (the safety checks: `content_flagged`), for admins to review and
     * clear. Each one is kept, with no once-a-day rule and no automatic throttle: one flagged message is
     * evidence to read, not proof of abuse.
     */
    async raise(finding: { userId: string; kind: AbuseKind; evidence: string }): Promise<AbuseFlagRow> {
      const [row] = await db.insert(abuseFlags).values(finding).returning();
      return row!;
    },

    list(opts: { limit: number; cursor?: string; userId?: string; active?: boolean }) {
      const where: SQL[] = [];
      if (opts.cursor) where.push(lt(abuseFlags.id, opts.cursor));
      if (opts.userId) where.push(eq(abuseFlags.userId, opts.userId));
      if (opts.active) where.push(isNull(abuseFlags.clearedAt));
      return db.select().from(abuseFlags).where(and(...where)).orderBy(desc(abuseFlags.id)).limit(opts.limit);
    },

    async clear(id: string, adminId: string): Promise<AbuseFlagRow> {
      const [row] = await db.update(abuseFlags).set({ clearedAt: new Date(), clearedBy: adminId }).where(and(eq(abuseFlags.id, id), isNull(abuseFlags.clearedAt))).returning();
      if (row) return row;
      const [existing] = await db.select().from(abuseFlags).where(eq(abuseFlags.id, id));
      if (!existing) throw NotFound('Abuse flag', 'abuse_flag_not_found');
      return existing; // already cleared: clearing is idempotent
    },
  };
}

export type AbuseCheck = ReturnType<typeof createAbuseCheck>;
