import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { types, type PGlite, type QueryOptions, type Transaction } from '@electric-sql/pglite';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import pg from 'pg';
import { isConnectionError } from '../net/connection-errors.ts';
import { lockDataDir, openPglite } from './pglite.ts';

/** What every module sees: a Drizzle database, identical on PGlite and PostgreSQL. */
export type Db = PgDatabase<PgQueryResultHKT>;

/**
 * Runs `fn` in a transaction, handing it the transaction as a `Db`, so the same
 * repository functions serve inside and outside one. (Drizzle's transaction
 * object is a PgDatabase at run time, but its type does not assign to ours.)
 */
export function inTransaction<T>(db: Db, fn: (tx: Db) => Promise<T>): Promise<T> {
  return db.transaction((tx) => fn(tx as unknown as Db));
}

/**
 * Inside a transaction: whoever takes the same `key` waits here until this transaction ends (a transaction-level
 * advisory lock), so what it reads next (a count against a cap, a quota) cannot change before it writes.
 */
export async function lockWithinTransaction(tx: Db, key: string): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`);
}

/**
 * A row made only while fewer than `max` are held (a per-user or per-document cap): in one transaction, under the
 * advisory lock on `key`, `held` counts and `make` writes, so makers side by side each count the others' rows and
 * none passes the cap. Undefined when the cap is reached (nothing written).
 */
export function withinCap<T>(db: Db, key: string, max: number, held: (tx: Db) => Promise<number>, make: (tx: Db) => Promise<T>): Promise<T | undefined> {
  return inTransaction(db, async (tx) => {
    await lockWithinTransaction(tx, key);
    return (await held(tx)) >= max ? undefined : make(tx);
  });
}

/**
 * A statement written as SQL text with numbered parameters (`$1`…), run as a prepared statement of this name on
 * a database or inside a transaction. For a hot path whose SQL never changes: nothing is built per call (Drizzle
 * renders a `sql` template's whole tree again on each run) and on PostgreSQL each connection parses it once.
 * Parameters go to the driver as they are (arrays as arrays; JSON as text, cast in the SQL).
 */
export function preparedStatement<Row>(name: string, text: string) {
  return async (db: Db, params: unknown[]): Promise<Row[]> => {
    const result = (await db._.session.prepareQuery({ sql: text, params }, undefined, name, false).execute()) as { rows: Row[] };
    return result.rows;
  };
}

/**
 * The types Drizzle's PGlite session asks, on every query, to have as PostgreSQL's text: timestamps, dates,
 * intervals, and arrays of those and of numeric.
 */
const DRIZZLE_TEXT_TYPES = [types.TIMESTAMP, types.TIMESTAMPTZ, types.INTERVAL, types.DATE, 1231, 1115, 1185, 1187, 1182];

/**
 * The PGlite client Drizzle is given: the instance reads those types as text itself (set once it is ready,
 * after PGlite has registered its array types), and each query's options go without the parsers Drizzle adds
 * to every call. Given parsers, PGlite copies its whole table of some 300 type parsers into a new object per
 * query: about 80 µs, a third of a small query's time here. A call asking for a parser the instance lacks
 * (a later Drizzle) keeps its options.
 */
function withoutQueryParsers(client: PGlite): PGlite {
  type Options = QueryOptions | undefined;
  void client.waitReady.then(() => {
    for (const oid of DRIZZLE_TEXT_TYPES) client.parsers[oid] = (value: string) => value;
  });
  const installed = new Set(DRIZZLE_TEXT_TYPES.map(String));
  const lean = (options: Options): Options => {
    if (!options?.parsers) return options;
    for (const oid in options.parsers) if (!installed.has(oid)) return options;
    const { parsers: _, ...rest } = options;
    return rest;
  };
  const wrap = <C extends Pick<PGlite, 'query'>>(c: C): C => {
    const query = (text: string, params?: unknown[], options?: Options) => c.query(text, params, lean(options));
    const transaction = <T>(fn: (tx: Transaction) => Promise<T>) => (c as unknown as PGlite).transaction((tx) => fn(wrap(tx)));
    return new Proxy(c, {
      get(target, key, receiver) {
        if (key === 'query') return query;
        if (key === 'transaction') return transaction;
        const value = Reflect.get(target, key, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  };
  return wrap(client);
}

export interface Database {
  db: Db;
  kind: 'pglite' | 'postgres';
  /** Applies the migrations not yet applied, from db/migrations (or `folder`: an older release's set, in tests). */
  migrate(folder?: string): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

const MIGRATION_LOCK = 7_270_539_001;
const migrationsFolder = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../db/migrations');
/** How long a readiness ping waits for the database: a stalled one is "down", not a hung probe. */
const PING_TIMEOUT_MS = 2_000;

/** node-postgres's words for the same, and for its own timeouts. */
const UNREACHABLE_MESSAGE = /^(Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error)/;

/**
 * Whether an error (or its cause: Drizzle wraps the driver's) says PostgreSQL could not be reached or
 * stopped answering: refused, reset, timed out, shutting down (SQLSTATE 08xxx, 57P0x). Such a failure is
 * the dependency's, a 503, not a bug's 500.
 */
export function isDatabaseUnreachable(err: unknown): boolean {
  return causes(err).some((e) => {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (isConnectionError(e) || (typeof code === 'string' && (code.startsWith('08') || /^57P0[1-3]$/.test(code)))) return true;
    return typeof message === 'string' && UNREACHABLE_MESSAGE.test(message);
  });
}

/**
 * Whether an error (or its cause) is a foreign key violation (SQLSTATE 23503): on a write, the row it
 * refers to was deleted by another request after this one checked it was there.
 */
export const isMissingReference = (err: unknown): boolean => causes(err).some((e) => (e as { code?: unknown }).code === '23503');

/** An error and the causes under it (Drizzle wraps the driver's error), a few deep. */
function causes(err: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = err; e && chain.length < 4; e = (e as { cause?: unknown }).cause) chain.push(e);
  return chain;
}

/**
 * Drizzle's transactions on a pool, with the connection handled safely: Drizzle runs BEGIN before the
 * try/finally that returns its connection, and returns it healthy whatever happened, so a BEGIN that fails
 * (a connection that died, a query bound reached) leaks a connection for good, and one whose query timed
 * out goes back to the pool with that query still waiting (drizzle-orm#6114, #6241; open). Here the
 * transaction runs on a connection taken from the pool (Drizzle's own transaction on it, savepoints for
 * nested ones), which always goes back, and is destroyed when the failure says it is broken.
 */
function pooledTransactions(db: Db, pool: pg.Pool): void {
  const onClient = new WeakMap<pg.PoolClient, Db>();
  const transaction = async <T>(fn: (tx: never) => Promise<T>, config?: unknown): Promise<T> => {
    const client = await pool.connect();
    let broken: Error | undefined;
    // The pool listens for errors only on idle connections: a checked-out one whose socket fails (a reset between
    // two statements) emits an 'error' nobody hears, which would take the whole process down. Its queries fail too.
    const onError = (err: Error) => void (broken = err);
    client.on('error', onError);
    try {
      let clientDb = onClient.get(client);
      if (!clientDb) onClient.set(client, (clientDb = drizzlePg(client) as unknown as Db));
      return await clientDb.transaction(fn as never, config as never);
    } catch (err) {
      if (isDatabaseUnreachable(err)) broken = err as Error;
      throw err;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  };
  Object.defineProperty(db, 'transaction', { value: transaction });
}

function withinMs<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/**
 * PostgreSQL when a URL is given, otherwise PGlite: in memory for `memory://`,
 * else persisted under `<dataDir>/pg`.
 */
export function openDatabase(opts: {
  url?: string;
  dataDir: string;
  poolSize?: number;
  /** PostgreSQL: the longest a query may go unanswered (0: no limit), and a new connection may take. */
  queryTimeoutMs?: number;
  connectTimeoutMs?: number;
  onIdleError?: (err: Error) => void;
  /** In memory only: start from this dump of a data directory (`dumpDataDir()`), e.g. one already migrated. */
  pgliteSnapshot?: Blob;
  /** PGlite's shared_buffers (its page cache in WebAssembly memory); a default when not given. */
  pgliteSharedBuffersMb?: number;
}): Database {
  if (opts.url) {
    // Bounded: a database that accepts connections and never answers (a stalled network, a frozen failover) fails a
    // query after queryTimeoutMs and a connection after connectTimeoutMs, and the connection is replaced, instead of
    // holding every request, and the pool, for as long as the kernel keeps the socket.
    const bounds = { connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000, keepAlive: true };
    const pool = new pg.Pool({ connectionString: opts.url, max: opts.poolSize ?? 10, query_timeout: opts.queryTimeoutMs || undefined, ...bounds });
    // An idle connection the server drops (restart, failover, pg_terminate_backend) is an 'error'
    // on the pool; unheard, it would crash the process. The pool replaces the connection by itself.
    pool.on('error', (err) => opts.onIdleError?.(err));
    const db = drizzlePg(pool) as unknown as Db;
    pooledTransactions(db, pool);
    return {
      db,
      kind: 'postgres',
      async migrate(folder = migrationsFolder) {
        // Instances starting together take turns: one applies, the others then find nothing to do. A connection of
        // its own, without the query bound: an index built over a large table may take minutes.
        const client = new pg.Client({ connectionString: opts.url, ...bounds });
        // A connection that drops fails the migration's query; unheard, its 'error' would also crash the process.
        client.on('error', () => {});
        await client.connect();
        try {
          await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK]);
          await migratePg(drizzlePg(client), { migrationsFolder: folder });
        } finally {
          await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
          await client.end();
        }
      },
      ping: () => withinMs(db.execute(sql`select 1`).then(() => undefined), PING_TIMEOUT_MS, 'PostgreSQL'),
      close: () => pool.end(),
    };
  }
  const memory = opts.dataDir === 'memory://';
  const dir = memory ? undefined : path.join(opts.dataDir, 'pg');
  // pgvector is loaded (not yet created: see the knowledge module) so the embedded database can index embeddings.
  const unlock = dir ? lockDataDir(dir) : () => {};
  let client: PGlite;
  try {
    client = openPglite({ dir, snapshot: memory ? opts.pgliteSnapshot : undefined, sharedBuffersMb: opts.pgliteSharedBuffersMb });
  } catch (err) {
    unlock();
    throw err;
  }
  const db = drizzlePglite({ client: withoutQueryParsers(client) }) as unknown as Db;
  return {
    db,
    kind: 'pglite',
    migrate: (folder = migrationsFolder) => migratePglite(db as never, { migrationsFolder: folder }),
    ping: async () => void (await db.execute(sql`select 1`)),
    close: () => client.close().finally(unlock),
  };
}
