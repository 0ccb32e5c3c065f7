import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP proxy in front of a real server (PostgreSQL, S3…), for outages a test can cause: `stall()` (connections
 * are accepted and nothing is forwarded, as on a frozen network: the open ones go silent for good), `cut()` (every
 * connection reset, new ones refused) and `heal()` (new connections pass again; stalled ones stay stalled, as after
 * a failover, until the client gives up on them).
 */
export async function startTcpProxy(target: { host: string; port: number }) {
  let mode: 'pass' | 'stall' = 'pass';
  const pairs = new Set<{ client: Socket; server?: Socket; stalled: boolean }>();
  const onConnection = (client: Socket) => {
    const pair: { client: Socket; server?: Socket; stalled: boolean } = { client, stalled: mode === 'stall' };
    pairs.add(pair);
    client.on('error', () => {});
    client.on('close', () => {
      pair.server?.destroy();
      pairs.delete(pair);
    });
    if (pair.stalled) return;
    const server = connect(target);
    pair.server = server;
    server.on('error', () => client.destroy());
    server.on('close', () => client.destroy());
    client.on('data', (d) => void (pair.stalled || server.write(d)));
    server.on('data', (d) => void (pair.stalled || client.write(d)));
  };
  let listener: Server = createServer(onConnection);
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as AddressInfo).port;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      listener = createServer(onConnection);
      listener.once('error', reject);
      listener.listen(port, '127.0.0.1', resolve);
    });
  return {
    host: '127.0.0.1',
    port,
    stall() {
      mode = 'stall';
      for (const p of pairs) p.stalled = true;
    },
    async cut() {
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      for (const p of pairs) {
        p.client.resetAndDestroy();
        p.server?.destroy();
      }
      await closed;
    },
    async heal() {
      mode = 'pass';
      if (!listener.listening) await listen();
    },
    async close() {
      const closed = listener.listening ? new Promise<void>((resolve) => listener.close(() => resolve())) : undefined;
      for (const p of pairs) {
        p.client.destroy();
        p.server?.destroy();
      }
      await closed;
    },
  };
}
