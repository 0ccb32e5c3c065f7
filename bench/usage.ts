// npm run bench:usage — what metering and budgets add to the gateway, side by
// side in one run: the same gateway with METERING_ENABLED=false and with
// metering on and the caller under a user budget and a key budget (so every
// call reserves and settles), then how many metered calls per second are
// persisted, and whether a graceful stop loses any. A fake OpenAI upstream and
// the load client run in processes of their own. PGlite by default; PostgreSQL
// + Redis when DATABASE_URL/REDIS_URL are set.
import { ask, child } from './ipc.ts';
import { cpus, loadavg } from 'node:os';
import { eq, sql } from 'drizzle-orm';
import { usageEvents } from '../src/modules/usage/schema.ts';
import { startApp, type TestApp } from '../test/support/app.ts';
import type { LatencyJob } from './gateway-client.ts';
import { runScenario } from './load.ts';

const LATENCY_REQUESTS = 1000;
const THROUGHPUT_SECONDS = 8;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const f = (n: number) => n.toFixed(2);

async function gateway(upstreamUrl: string, metering: boolean, withBudgets = metering) {
  const t = await startApp({
    backend: process.env.DATABASE_URL ? 'postgres' : 'embedded',
    env: { OPENAI_API_KEY: 'sk-bench', OPENAI_BASE_URL: `${upstreamUrl}/v1`, DEFAULT_MODEL: 'openai:gpt-4o-mini', AUTH_RATE_LIMIT_PER_IP: '1000000000', METERING_ENABLED: String(metering) },
  });
  const reg = await t.api('POST', '/v1/auth/register', { body: { email: `bench-${Date.now()}@example.com`, password: 'bench password 123' } });
  const userId: string = reg.body.user.id;
  const { key, secret } = await t.services.apiKeys.create(userId, { name: 'bench', scopes: ['chat'] });
  if (withBudgets) {
    // Budgets far above what the bench spends: every call reserves and settles against both, none is refused.
    await t.services.usage.budgets.setForUser(userId, { period: 'month', limitMicros: 1e12, limitTokens: null });
    await t.services.usage.budgets.setOwn(userId, 'api_key', key.id, { period: 'day', limitMicros: 1e12, limitTokens: 1e12 });
  }
  return { t, userId, secret };
}

async function persisted(t: TestApp, userId: string): Promise<number> {
  const [row] = await t.deps.db.select({ n: sql<number>`count(*)::int` }).from(usageEvents).where(eq(usageEvents.userId, userId));
  return row!.n;
}

async function main() {
  const upstream = await child(new URL('./upstream.ts', import.meta.url));
  const client = await child(new URL('./gateway-client.ts', import.meta.url));
  const upstreamUrl: string = upstream.first.url;
  await ask(upstream.proc, { defaults: { reply: 'Hello there, how can I help?' } });
  const off = await gateway(upstreamUrl, false);
  const on = await gateway(upstreamUrl, true);
  const meteredOnly = await gateway(upstreamUrl, true, false);
  const body = JSON.stringify({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello.' }] });
  const out: string[] = [];
  try {
    out.push(`Parley usage bench — Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${on.t.backend === 'postgres' ? 'PostgreSQL + Redis' : 'PGlite'}, load average ${loadavg()[0]!.toFixed(1)} at start`, '');

    // 1. Added latency at concurrency 1, alternating rounds so drift hits both alike.
    process.stderr.write('  latency at c=1…\n');
    const samples: Record<'off' | 'metered' | 'on', number[]> = { off: [], metered: [], on: [] };
    for (let round = 0; round < 5; round++) {
      for (const [name, g] of [['off', off], ['metered', meteredOnly], ['on', on]] as const) {
        const job = { kind: 'latency', url: `${g.t.url}/v1/chat/completions`, headers: { authorization: `Bearer ${g.secret}` }, body, count: LATENCY_REQUESTS / 5 } satisfies LatencyJob;
        if (round === 0) await ask(client.proc, { ...job, count: 100 }); // warm-up
        samples[name].push(...(await ask<{ samples: number[] }>(client.proc, job)).samples);
      }
    }
    out.push('### Non-streaming gateway call, concurrency 1', '', '| | p50 ms | p99 ms |', '|---|--:|--:|');
    out.push(`| metering off | ${f(pct(samples.off, 50))} | ${f(pct(samples.off, 99))} |`);
    out.push(`| metering on, no budget | ${f(pct(samples.metered, 50))} | ${f(pct(samples.metered, 99))} |`);
    out.push(`| metering + budgets on | ${f(pct(samples.on, 50))} | ${f(pct(samples.on, 99))} |`);
    out.push(`| **added by metering** | **${f(pct(samples.metered, 50) - pct(samples.off, 50))}** | **${f(pct(samples.metered, 99) - pct(samples.off, 99))}** |`);
    out.push(`| **added by metering + budgets** | **${f(pct(samples.on, 50) - pct(samples.off, 50))}** | **${f(pct(samples.on, 99) - pct(samples.off, 99))}** |`, '');

    // 2. Throughput with metering, then a graceful stop: every answered call must be on record.
    process.stderr.write('  throughput…\n');
    const rps: Record<'off' | 'on', number> = { off: 0, on: 0 };
    let answered = 0;
    const before = await persisted(on.t, on.userId);
    for (const [name, g] of [['off', off], ['on', on]] as const) {
      const u = new URL(`${g.t.url}/v1/chat/completions`);
      const r = await runScenario({ url: u.origin, method: 'POST', path: u.pathname, connections: 32, durationSeconds: THROUGHPUT_SECONDS, headers: { authorization: `Bearer ${g.secret}` }, body });
      rps[name] = r.rps;
      if (name === 'on') answered = r.ok;
    }
    const beforeStop = (await persisted(on.t, on.userId)) - before;
    const { recorder } = on.t.services.usage;
    const pendingAtStop = recorder.pending().length;
    await on.t.app.close(); // the graceful stop: the app's onClose writes what is pending
    const afterStop = (await persisted(on.t, on.userId)) - before;
    out.push(`### Throughput (32 connections, ${THROUGHPUT_SECONDS} s) and persistence`, '', '| | calls/s |', '|---|--:|');
    out.push(`| metering off | ${rps.off.toFixed(0)} |`, `| metering + budgets on | ${rps.on.toFixed(0)} |`, '');
    out.push(`Metered calls answered (2xx): ${answered}; usage events in ${on.t.backend === 'postgres' ? 'PostgreSQL' : 'PGlite'} at the end of the load: ${beforeStop}; pending in memory at the stop: ${pendingAtStop}; after the graceful stop: ${afterStop} (${afterStop >= answered ? 'none lost' : `${answered - afterStop} LOST`}; calls cut off by the load generator's end may be on record without a 2xx).`);
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    await off.t.close();
    await meteredOnly.t.close();
    await on.t.close();
    upstream.proc.kill();
    client.proc.kill();
  }
}

await main();
