// Portkey's AI gateway (`@portkey-ai/gateway` from npm) in a process of its own,
// for the gateway bench, only when it is installed: Parley does not depend on it.
// Reports `{ url }` once listening, or `{ missing }` when the import fails; then
// answers `{ cpu: true }` with its own CPU time in µs, as the bench reads Parley's.
import { createConnection } from 'node:net';

const port = Number(process.argv.find((a) => a.startsWith('--port='))?.slice(7));
let gateway: { default?: { fetch?: unknown } };
try {
  // The package's entry starts its server on `--port` as it loads; a build that exports the app instead is served here.
  gateway = await import('@portkey-ai/gateway' as string);
} catch (err) {
  process.send!({ missing: String((err as Error).message).split('\n')[0] });
  process.exit(0);
}
if (typeof gateway.default?.fetch === 'function') {
  const { serve } = await import('@hono/node-server' as string);
  serve({ fetch: gateway.default.fetch, port, hostname: '127.0.0.1' });
}
const listening = () =>
  new Promise<boolean>((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' }, () => (socket.end(), resolve(true)));
    socket.on('error', () => resolve(false));
  });
for (let i = 0; i < 100 && !(await listening()); i++) await new Promise((r) => setTimeout(r, 100));
process.on('message', () => {
  const used = process.cpuUsage();
  process.send!({ cpu: used.user + used.system });
});
process.on('disconnect', () => process.exit(0));
process.send!({ url: `http://127.0.0.1:${port}` });
