import pg from 'pg';
import type { Logger } from '../observability/logger.ts';

/**
 * LISTEN on a PostgreSQL channel with a connection of its own. A NOTIFY sent
 * inside a transaction is delivered only when it commits, which is what wakes
 * workers and the outbox relay right after the write. Polling stays the
 * fallback: while the connection is down nothing is lost, only later.
 */
export function listenPostgres(url: string, channel: string, onNotify: (payload: string) => void, logger: Logger) {
  let client: pg.Client | undefined;
  /** Session advisory locks the current connection holds: they end with it. */
  let locks = new Set<number>();
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  const connect = async () => {
    const c = new pg.Client({ connectionString: url });
    let lost = false;
    // A failed connect and an 'error' event can both report one loss: reconnect once, or clients leak.
    const reconnect = (err: unknown, msg: string) => {
      if (lost) return;
      lost = true;
      logger.warn({ err, channel }, msg);
      c.end().catch(() => {});
      if (client === c) {
        client = undefined;
        locks = new Set();
      }
      if (!closed) retry = setTimeout(() => void (current = connect()), 1000).unref();
    };
    c.on('error', (err) => reconnect(err, 'LISTEN connection lost; polling until it is back'));
    c.on('notification', (n) => onNotify(n.payload ?? ''));
    try {
      await c.connect();
      await c.query(`LISTEN ${channel}`);
    } catch (err) {
      reconnect(err, 'LISTEN failed; polling instead');
      return;
    }
    if (closed || lost) await c.end().catch(() => {});
    else {
      client = c;
      locks = new Set();
    }
  };
  let current = connect();

  return {
    /** Settles once the first attempt to listen is over (listening or not). */
    ready: current,
    /** Whether this connection holds the advisory lock `key` (taken with tryLock). */
    holds: (key: number) => locks.has(key),
    /**
     * Takes the session advisory lock `key` on this connection if no other session holds it: a way to elect
     * one process of many for a task. It is held until the connection ends (close, or a lost connection).
     */
    async tryLock(key: number): Promise<boolean> {
      const c = client;
      if (!c) return false;
      if (locks.has(key)) return true;
      try {
        const { rows } = await c.query<{ ok: boolean }>('select pg_try_advisory_lock($1) as ok', [key]);
        if (rows[0]?.ok && c === client) locks.add(key);
      } catch {
        // The connection is failing: its 'error' handler reconnects.
      }
      return locks.has(key);
    },
    async close() {
      closed = true;
      clearTimeout(retry);
      await current;
      await client?.end().catch(() => {});
    },
  };
}
