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
    c.on('error', (err) => {
      logger.warn({ err, channel }, 'LISTEN connection lost; polling until it is back');
      c.end().catch(() => {});
      if (client === c) client = undefined;
      if (!closed) retry = setTimeout(() => void connect(), 1000).unref();
    });
    c.on('notification', (n) => onNotify(n.payload ?? ''));
    try {
      await c.connect();
      await c.query(`LISTEN ${channel}`);
      if (closed) await c.end();
      else client = c;
    } catch (err) {
      logger.warn({ err, channel }, 'LISTEN failed; polling instead');
      c.end().catch(() => {});
      if (!closed) retry = setTimeout(() => void connect(), 1000).unref();
    }
  };
  const ready = connect();

  return {
    ready,
    async close() {
      closed = true;
      clearTimeout(retry);
      await ready;
      await client?.end().catch(() => {});
    },
  };
}
