import { AppError, RateLimited } from '../../errors.ts';
import type { Broadcast } from '../../platform/broadcast/broadcast.ts';
import type { Db } from '../../platform/db/database.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { CounterHit, Limiter, LimiterFactory, LimitResult } from '../../platform/ratelimit/limiter.ts';
import type { Audit, AuditContext } from '../audit/index.ts';
import type { Principal } from '../auth/index.ts';
import type { ActiveBan } from './ban-cache.ts';
import { clientKey, normalizeIp } from '../../platform/net/client-address.ts';
import { createBans, type BansDeps } from './bans.ts';
import type { BanKind, BanRow } from './schema.ts';
import type { LimitSettings, Role } from './settings.ts';

const WINDOW_SECONDS = 60;
/**
 * Tokens used are added to the shared counters together, this long after the
 * first of them: one script call for every call that ended meanwhile, not one
 * each. This process's own checks count them at once (see checkTokens); other
 * instances see them this much later, and a crash loses at most this long.
 */
const TOKEN_FLUSH_MS = 20;
/** Token counters read from the store and kept (see checkTokens) beyond which old ones are swept. */
const PEEKED_MAX = 10_000;
const ROLES: Role[] = ['user', 'admin'];
const LABELS: Record<BanKind, string> = { user: 'account', api_key: 'API key', ip: 'IP address' };

/** The tightest request limit a request ran into, for the RateLimit-* response headers. */
export interface LimitState {
  limit: number;
  remaining: number;
  resetSeconds: number;
  windowSeconds: number;
}

export function rateLimitHeaders(s: LimitState): Record<string, string> {
  return {
    'ratelimit-limit': String(s.limit),
    'ratelimit-remaining': String(s.remaining),
    'ratelimit-reset': String(s.resetSeconds),
    'ratelimit-policy': `${s.limit};w=${s.windowSeconds}`,
  };
}

export interface RequestLimitsDeps {
  db: Db;
  audit: Audit;
  broadcast: Broadcast;
  exists: BansDeps['exists'];
  queue: BansDeps['queue'];
  limiters: LimiterFactory;
  settings: LimitSettings;
  logger?: Logger;
  /** How often each instance re-reads the active bans (a lost broadcast is healed by then). */
  bansRefreshMs?: number;
}

type Counters = Partial<Record<BanKind, Limiter>>;
interface Hit {
  kind: BanKind;
  subject: string;
  limiter: Limiter;
}

const banned = (ban: ActiveBan) => {
  const retryAfter = Math.max(1, Math.ceil((ban.expiresAt.getTime() - Date.now()) / 1000));
  const until = ban.expiresAt.toISOString();
  return new AppError(403, 'banned', 'Forbidden', `This ${LABELS[ban.kind]} is banned until ${until} after repeated rate-limit violations or by an administrator`, {
    headers: { 'retry-after': String(retryAfter) },
    extra: { expiresAt: until, retryAfter },
  });
};

/**
 * Requests and tokens per minute per user, API key and IP (an IPv6 /64), by role; refused
 * requests count as violations, and enough of them within the window ban the
 * subject for a while. Counters live in the limiter store (memory or Redis);
 * bans are checked in process.
 *
 * Admins are never banned automatically and never refused by an IP ban, so a
 * shared office address cannot lock out the people who lift bans.
 */
export function createRequestLimits(deps: RequestLimitsDeps) {
  const { settings } = deps;
  const counter = (name: string, points: number) =>
    settings.enabled && points > 0 ? deps.limiters.create({ name, points, durationSeconds: WINDOW_SECONDS }) : undefined;
  const requests = {} as Record<Role, Counters>;
  const tokens = {} as Record<Role, Counters>;
  for (const role of ROLES) {
    const r = settings.roles[role];
    requests[role] = { user: counter(`req:user:${role}`, r.userRpm), api_key: counter(`req:key:${role}`, r.keyRpm), ip: counter(`req:ip:${role}`, r.ipRpm) };
    tokens[role] = { user: counter(`tok:user:${role}`, r.userTpm), api_key: counter(`tok:key:${role}`, r.keyTpm) };
  }
  const violations =
    settings.enabled && settings.ban.violations > 0
      ? deps.limiters.create({ name: 'violations', points: settings.ban.violations, durationSeconds: settings.ban.windowSeconds })
      : undefined;

  /** Once lifted, a subject starts afresh: its counters would otherwise refuse it until the window ends. */
  async function resetCounters(ban: BanRow) {
    const all = ROLES.flatMap((role) => [requests[role][ban.kind], tokens[role][ban.kind]]);
    await Promise.all([...all.filter((l) => l !== undefined).map((l) => l.reset(ban.subject)), violations?.reset(`${ban.kind}:${ban.subject}`)]);
    for (const l of all) if (l) peeked.delete(counterId({ kind: ban.kind, subject: ban.subject, limiter: l }));
  }

  const bans = createBans({ db: deps.db, audit: deps.audit, broadcast: deps.broadcast, exists: deps.exists, queue: deps.queue, logger: deps.logger, refreshMs: deps.bansRefreshMs, onLifted: resetCounters });

  function hits(counters: Counters, p: Principal, ip?: string): Hit[] {
    const out: Hit[] = [];
    if (counters.user) out.push({ kind: 'user', subject: p.userId, limiter: counters.user });
    if (counters.api_key && p.apiKeyId) out.push({ kind: 'api_key', subject: p.apiKeyId, limiter: counters.api_key });
    if (counters.ip && ip) out.push({ kind: 'ip', subject: ip, limiter: counters.ip });
    return out;
  }

  /** Counts one violation per refused subject; the one that reaches the threshold bans it. */
  async function violated(p: Principal, refused: Hit[]) {
    if (!violations || p.role === 'admin') return;
    await Promise.all(
      refused.map(async ({ kind, subject }) => {
        const key = `${kind}:${subject}`;
        const r = await violations.consume(key);
        // Exactly one request sees the count reach the threshold, on whichever instance.
        if (!r.allowed || r.remaining > 0 || bans.isBanned(kind, subject)) return;
        const count = settings.ban.violations;
        await bans.create({ kind, subject, seconds: settings.ban.seconds, violations: count, reason: `${count} rate-limit violations within ${settings.ban.windowSeconds}s` });
        await violations.reset(key);
        deps.logger?.warn({ kind, subject, userId: p.userId }, 'rate-limit violations: subject banned');
      }),
    ).catch((err: unknown) => deps.logger?.error({ err, userId: p.userId }, 'could not count a rate-limit violation'));
  }

  /** Tokens counted in this process and not yet sent to the limiter store, by limiter and subject. */
  let unflushed = new Map<string, CounterHit & { points: number }>();
  const counterId = (h: Hit) => `${h.limiter.spec.name}\0${h.subject}`;
  /**
   * A token counter as read from the store (see checkTokens), and the points this process sent to
   * it after the read was sent, which the read cannot hold. Commands reach the store in the order
   * they are sent, so what was sent before the read is in it, and nothing is counted twice.
   */
  interface Read {
    at: number;
    result?: LimitResult;
    since: number;
  }
  const peeked = new Map<string, Read>();
  /** Reads sent and not yet answered, by counter. */
  const reading = new Map<string, Set<Read>>();
  let flushTimer: NodeJS.Timeout | undefined;
  const flushes = new Set<Promise<unknown>>();
  let closed = false;
  /** Sends what is counted and not yet sent; resolves once every write begun so far has ended. */
  async function flushTokens(): Promise<void> {
    clearTimeout(flushTimer);
    flushTimer = undefined;
    if (unflushed.size) {
      const batch = unflushed;
      unflushed = new Map();
      const written = deps.limiters
        .consumeMany([...batch.values()])
        .catch((err: unknown) => deps.logger?.warn({ err, counters: batch.size }, 'could not count model tokens against the rate limit'))
        .finally(() => flushes.delete(written));
      flushes.add(written);
      for (const [id, { points }] of batch) {
        const read = peeked.get(id);
        if (read) read.since += points;
        for (const r of reading.get(id) ?? []) r.since += points;
      }
    }
    await Promise.all(flushes);
  }

  /** The refused limit that frees up last, or else the one with the least left. */
  function tightest(results: LimitResult[]): number {
    let best = 0;
    for (let i = 1; i < results.length; i++) {
      const a = results[i]!;
      const b = results[best]!;
      if (a.allowed !== b.allowed) {
        if (!a.allowed) best = i;
      } else if (!a.allowed ? a.resetMs > b.resetMs : a.remaining < b.remaining || (a.remaining === b.remaining && a.limit < b.limit)) best = i;
    }
    return best;
  }

  /** The address's ban subjects: its own, and for IPv6 the one address too (bans set on a single IPv6 address before they covered the /64). */
  function addressSubjects(address: string): Array<[BanKind, string]> {
    const subject = clientKey(address);
    const ip = normalizeIp(address);
    return subject === ip ? [['ip', ip]] : [['ip', subject], ['ip', ip]];
  }

  /** 403 `banned` when the user, their key or (but for admins) their IP is banned; counts nothing. */
  async function refuseBannedAt(address: string, p: Pick<Principal, 'userId' | 'role' | 'apiKeyId'>): Promise<void> {
    const subjects: Array<[BanKind, string]> = [['user', p.userId]];
    if (p.apiKeyId) subjects.push(['api_key', p.apiKeyId]);
    if (p.role !== 'admin') subjects.push(...addressSubjects(address));
    const ban = await bans.find(subjects);
    if (ban) throw banned(ban);
  }

  return {
    /**
     * Once per authenticated request: refuses a banned user, key or IP (403
     * `banned`), then counts the request against each per-minute limit of the
     * caller's role at once. Over a limit → 429 `rate_limited`, and a
     * violation counted. Returns the tightest limit for the RateLimit-* headers.
     */
    async check(request: { ip: string }, p: Principal): Promise<LimitState | undefined> {
      await refuseBannedAt(request.ip, p);
      const all = hits(requests[p.role], p, clientKey(request.ip));
      if (!all.length) return undefined;
      const results = await deps.limiters.consumeMany(all.map((h) => ({ limiter: h.limiter, key: h.subject })));
      const i = tightest(results);
      const t = results[i]!;
      const state = { limit: t.limit, remaining: t.remaining, resetSeconds: Math.ceil(t.resetMs / 1000), windowSeconds: WINDOW_SECONDS };
      if (t.allowed) return state;

      const refused = all.filter((_, i) => !results[i]!.allowed);
      await violated(p, refused);
      const err = RateLimited(t.resetMs / 1000, `Too many requests for this ${LABELS[all[i]!.kind]} (${t.limit} per minute); retry after the Retry-After delay`);
      Object.assign(err.headers, rateLimitHeaders(state));
      throw err;
    },

    /** 403 `banned` when the user, their key or (but for admins) their IP is banned; counts nothing. */
    refuseBanned: (request: { ip: string }, p: Pick<Principal, 'userId' | 'role' | 'apiKeyId'>) => refuseBannedAt(request.ip, p),

    /**
     * Calls `listener` when an IP ban reaches this instance (on every instance), with whether it covers a given client
     * address (an IPv6 /64 covers its addresses): an open WebSocket from such an address is checked again at once.
     */
    onAddressBanned(listener: (covers: (address: string) => boolean) => void): void {
      bans.onBan((ban) => {
        if (ban.kind === 'ip') listener((address) => addressSubjects(address).some(([, subject]) => subject === ban.subject));
      });
    },

    /** 403 `banned` when the IP of a caller nobody knows yet (signing up, resetting a password) is banned. */
    async refuseBannedAddress(request: { ip: string }): Promise<void> {
      const ban = await bans.find(addressSubjects(request.ip));
      if (ban) throw banned(ban);
    },

    /**
     * Before a model call: 429 `token_rate_limited` when the user's or key's tokens for this minute are
     * used up. A counter read from the store is reused for TOKEN_FLUSH_MS, so a busy subject costs a
     * read every few milliseconds rather than one per call.
     */
    async checkTokens(p: Principal): Promise<void> {
      const all = hits(tokens[p.role], p);
      if (!all.length) return;
      const now = Date.now();
      const ids = all.map(counterId);
      const reads = ids.map((id) => peeked.get(id));
      const stale = all.flatMap((_, i) => (now - (reads[i]?.at ?? -Infinity) < TOKEN_FLUSH_MS ? [] : [i]));
      if (stale.length) {
        const sent = stale.map((i) => {
          const read: Read = { at: now, since: 0 };
          reading.set(ids[i]!, (reading.get(ids[i]!) ?? new Set()).add(read));
          return read;
        });
        try {
          const results = await deps.limiters.peekMany(stale.map((i) => ({ limiter: all[i]!.limiter, key: all[i]!.subject })));
          if (peeked.size > PEEKED_MAX) for (const [id, r] of peeked) if (now - r.at >= TOKEN_FLUSH_MS) peeked.delete(id);
          stale.forEach((i, j) => {
            sent[j]!.result = results[j];
            peeked.set(ids[i]!, (reads[i] = sent[j]));
          });
        } finally {
          stale.forEach((i, j) => {
            const pending = reading.get(ids[i]!);
            pending?.delete(sent[j]!);
            if (!pending?.size) reading.delete(ids[i]!);
          });
        }
      }
      // What this process counted after the read, or has not sent yet, counts as well.
      const left = (i: number) => reads[i]!.result!.remaining - reads[i]!.since - (unflushed.get(ids[i]!)?.points ?? 0);
      const refusedAt = all.flatMap((_, i) => (left(i) <= 0 ? [i] : []));
      if (!refusedAt.length) return;
      // A counter the store did not hold yet (the tokens not written when it was read) starts its window with the write.
      const resetMs = Math.max(...refusedAt.map((i) => (reads[i]!.result!.resetMs > 0 ? reads[i]!.result!.resetMs - (now - reads[i]!.at) : all[i]!.limiter.spec.durationSeconds * 1000)));
      const refused = refusedAt.map((i) => all[i]!);
      await violated(p, refused);
      throw RateLimited(resetMs / 1000, `Token rate limit for this ${LABELS[refused[0]!.kind]} reached; retry after the Retry-After delay`, 'token_rate_limited');
    },

    /** After a model call: counts the tokens it used (written within TOKEN_FLUSH_MS). Never refuses; an exhausted window fails the next checkTokens. */
    addTokens(p: Principal, n: number): void {
      const points = Math.ceil(n);
      if (!(points > 0)) return;
      for (const h of hits(tokens[p.role], p)) {
        const id = counterId(h);
        const known = unflushed.get(id);
        if (known) known.points += points;
        else unflushed.set(id, { limiter: h.limiter, key: h.subject, points });
      }
      // After close (a call that ended during shutdown), write at once rather than wait for a timer.
      if (closed) void flushTokens();
      else if (unflushed.size && !flushTimer) flushTimer = setTimeout(() => void flushTokens(), TOKEN_FLUSH_MS).unref();
    },

    /** Writes the tokens counted and not yet written (graceful shutdown); those counted later are written at once. */
    close() {
      closed = true;
      return flushTokens();
    },

    listBans: bans.list,

    /** An admin bans a user id, API key id or IP address for `seconds`. */
    ban: (kind: BanKind, subject: string, seconds: number, reason: string, by?: { adminId: string } & AuditContext) => bans.create({ kind, subject, seconds, reason }, by),

    lift: (id: string, adminId: string, ctx?: AuditContext) => bans.lift(id, adminId, ctx),

    /** Bans that ended over RATE_LIMIT_BAN_HISTORY_DAYS ago leave the list (the audit log keeps each one); none with 0. */
    purgeEndedBans: async (now = new Date()) => (settings.ban.historyDays ? bans.purgeEnded(new Date(now.getTime() - settings.ban.historyDays * 86_400_000)) : 0),
  };
}

export type RequestLimits = ReturnType<typeof createRequestLimits>;
