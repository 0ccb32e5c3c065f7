// The floor for any Node.js gateway on this machine: node:http in, node:http out
// over keep-alive sockets, the body forwarded and the answer piped back, and
// nothing else (no auth, validation, accounting or persistence). The gateway
// bench measures it beside Parley, so "added by Parley" can be read against
// what a second HTTP hop costs here before any feature.
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export async function startBareProxy(upstreamOrigin: string): Promise<{ url: string; close(): Promise<void> }> {
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  const upstream = new URL(upstreamOrigin);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const out = request(
        { hostname: upstream.hostname, port: upstream.port, path: req.url, method: req.method, agent, headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench', 'content-length': body.length } },
        (up) => {
          res.writeHead(up.statusCode ?? 502, { 'content-type': up.headers['content-type'] ?? 'application/json' });
          up.pipe(res);
        },
      );
      out.on('error', () => res.destroy());
      out.end(body);
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
        agent.destroy();
      }),
  };
}
