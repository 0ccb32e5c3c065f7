import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { and, eq, lt } from 'drizzle-orm';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError, Conflict, ValidationError } from '../errors.ts';
import type { Db } from '../platform/db/database.ts';
import { idempotencyKeys } from './schema.ts';

/** The `Idempotency-Key` request header, as routes declare it (loose: the validated object replaces request.headers). */
export const idempotencyHeaders = z.looseObject({
  'idempotency-key': z
    .string()
    .min(1)
    .max(255)
    .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
    .optional()
    .describe('Any unique string (a UUID): a retried request with the same key and body returns the first result instead of doing the work again'),
});

export interface IdempotentRequest {
  userId: string;
  key: string;
  /** Where the key was used, e.g. `POST /v1/conversations/:id/messages`; the same key elsewhere is refused. */
  scope: string;
  /** Everything that makes two requests the same request (params and body). */
  request: unknown;
}

export interface IdempotencyResult {
  resourceId?: string | null;
  status?: number | null;
  body?: unknown;
}

/** What `begin` decides: do the work now (and record it), or answer with what the first request did. */
export type IdempotencyClaim =
  | { kind: 'first'; complete(result: IdempotencyResult): Promise<void>; abandon(): Promise<void> }
  | { kind: 'replay'; resourceId: string | null; status: number | null; body: unknown };

/** The key and scope of a request that carries an Idempotency-Key, or undefined without one. */
export function idempotencyOf(request: FastifyRequest, userId: string, payload: unknown): IdempotentRequest | undefined {
  const key = request.headers['idempotency-key'];
  if (key === undefined) return undefined;
  if (typeof key !== 'string') throw ValidationError('Send one Idempotency-Key header', 'invalid_idempotency_key');
  return { userId, key, scope: `${request.method} ${request.routeOptions.url}`, request: payload };
}

/** A stable hash of a JSON value: object keys sorted, so field order does not matter. */
export function requestHash(value: unknown): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canonical) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, canonical(x)])) : v;
  return createHash('sha256').update(JSON.stringify(canonical(value) ?? null)).digest('hex');
}

/**
 * Idempotency keys, stored per user. The first request claims its key with an
 * insert (the unique index makes concurrent duplicates queue behind it), does the
 * work, then records the result; a retry finds the record and replays it. A
 * duplicate arriving while the first is still working waits for it briefly.
 */
export function createIdempotency(db: Db, opts: { waitMs?: number } = {}) {
  const waitMs = opts.waitMs ?? 10_000;

  async function find(userId: string, key: string) {
    const [row] = await db.select().from(idempotencyKeys).where(and(eq(idempotencyKeys.userId, userId), eq(idempotencyKeys.key, key)));
    return row;
  }

  async function begin(r: IdempotentRequest): Promise<IdempotencyClaim> {
    const hash = requestHash(r.request);
    const [claimed] = await db
      .insert(idempotencyKeys)
      .values({ userId: r.userId, key: r.key, scope: r.scope, requestHash: hash })
      .onConflictDoNothing()
      .returning({ id: idempotencyKeys.id });
    if (claimed) {
      const where = eq(idempotencyKeys.id, claimed.id);
      return {
        kind: 'first',
        async complete(result) {
          await db
            .update(idempotencyKeys)
            .set({ resourceId: result.resourceId ?? null, responseStatus: result.status ?? null, responseBody: result.body ?? null })
            .where(where);
        },
        // The work failed before creating anything: let a retry try again.
        abandon: async () => void (await db.delete(idempotencyKeys).where(where)),
      };
    }
    for (const started = Date.now(); ; await delay(100)) {
      const row = await find(r.userId, r.key);
      if (!row) return begin(r); // the first request gave up; this one takes over
      if (row.scope !== r.scope || row.requestHash !== hash) {
        throw new AppError(422, 'idempotency_key_reused', 'Unprocessable content', 'This Idempotency-Key was already used for a different request');
      }
      if (row.resourceId || row.responseStatus) return { kind: 'replay', resourceId: row.resourceId, status: row.responseStatus, body: row.responseBody };
      if (Date.now() - started > waitMs) throw Conflict('A request with this Idempotency-Key is still being processed; retry shortly', 'idempotency_in_progress');
    }
  }

  return {
    begin,

    /**
     * Runs `work` (which creates a resource and returns its id) once per key:
     * without a key it just runs; a retry gets the first run's id back instead.
     */
    async once(r: IdempotentRequest | undefined, work: () => Promise<string>): Promise<{ resourceId: string; replayed: boolean }> {
      if (!r) return { resourceId: await work(), replayed: false };
      const claim = await begin(r);
      if (claim.kind === 'replay') {
        if (!claim.resourceId) throw Conflict('This Idempotency-Key belongs to a request that created nothing', 'idempotency_key_reused');
        return { resourceId: claim.resourceId, replayed: true };
      }
      let resourceId: string;
      try {
        resourceId = await work();
      } catch (err) {
        await claim.abandon();
        throw err;
      }
      await claim.complete({ resourceId });
      return { resourceId, replayed: false };
    },

    /** Forgets keys older than `before`; claims that never completed go too. */
    async purge(before: Date): Promise<void> {
      await db.delete(idempotencyKeys).where(lt(idempotencyKeys.createdAt, before));
    },
  };
}

export type Idempotency = ReturnType<typeof createIdempotency>;
