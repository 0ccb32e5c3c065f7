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
      if (client === c) client = undefined;
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
    else client = c;
  };
  let current = connect();

  return {
    /** Settles once the first attempt to listen is over (listening or not). */
    ready: current,
    async close() {
      closed = true;
      clearTimeout(retry);
      await current;
      await client?.end().catch(() => {});
    },
  };
}
