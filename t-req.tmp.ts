import { ask, child } from './bench/ipc.ts';
import { startApp } from './test/support/app.ts';
import { startBareProxy } from './bench/bare-proxy.ts';
const upstream = await child(new URL('./bench/upstream.ts', import.meta.url));
const client = await child(new URL('./bench/gateway-client.ts', import.meta.url));
const upstreamUrl: string = upstream.first.url;
const bareProxy = await startBareProxy(upstreamUrl);
const t = await startApp({ backend: 'postgres', env: { OPENAI_API_KEY: 'sk-bench', OPENAI_BASE_URL: `${upstreamUrl}/v1`, DEFAULT_MODEL: 'openai:gpt-4o-mini', AUTH_RATE_LIMIT_PER_IP: '1000000000' } });
const reg = await t.api('POST', '/v1/auth/register', { body: { email: `bench-${Date.now()}@example.com`, password: 'bench password 123' } });
const { secret } = await t.services.apiKeys.create(reg.body.user.id, { name: 'bench', scopes: ['chat', 'models:read'] });
const messages = [{ role: 'user', content: 'Say hello.' }];
const body = (model: string) => JSON.stringify({ model, messages, stream: false });
const targets = {
  bare: { url: `${bareProxy.url}/v1/chat/completions`, headers: {}, body: body('gpt-4o-mini') },
  parley: { url: `${t.url}/v1/chat/completions`, headers: { authorization: `Bearer ${secret}` }, body: body('openai:gpt-4o-mini') },
};
const cpu = () => { const u = process.cpuUsage(); return u.user + u.system; };
const N = Number(process.env.N ?? 3000);
const scripts = { words: { reply: 'Hello there, how can I help?' }, one: { chunks: ['Hello there, how can I help?'] } };
for (const [name, tg] of Object.entries(targets)) await ask(client.proc, { kind: 'requests', ...tg, count: 600, concurrency: 16 });
const results: Record<string, number[]> = {};
for (let round = 0; round < Number(process.env.ROUNDS ?? 3); round++) {
  for (const [sname, script] of Object.entries(scripts)) {
    await ask(upstream.proc, { defaults: script });
    for (const [name, tg] of Object.entries(targets)) {
      const before = cpu();
      const r = await ask<{ ok: number; failed: number }>(client.proc, { kind: 'requests', ...tg, count: N, concurrency: 16 });
      (results[`${name} ${sname}`] ??= []).push((cpu() - before) / r.ok);
    }
  }
}
for (const [k, v] of Object.entries(results)) console.log(k.padEnd(14), v.map((x) => x.toFixed(0)).join(' '), ' median', v.sort((a, b) => a - b)[Math.floor(v.length / 2)]!.toFixed(0));
if (process.env.PROF) {
  const { Session } = await import('node:inspector/promises'); const { writeFileSync } = await import('node:fs');
  await ask(upstream.proc, { defaults: scripts.words });
  const s = new Session(); s.connect(); await s.post('Profiler.enable'); await s.post('Profiler.setSamplingInterval', { interval: 500 }); await s.post('Profiler.start');
  await ask(client.proc, { kind: 'requests', ...targets.parley, count: N * 3, concurrency: 16 });
  const { profile } = await s.post('Profiler.stop'); writeFileSync(process.env.PROF, JSON.stringify(profile));
}
await bareProxy.close(); await t.close(); upstream.proc.kill(); client.proc.kill();
