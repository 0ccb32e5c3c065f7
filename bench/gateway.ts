// npm run bench:gateway — what Parley's OpenAI-compatible gateway adds on top of
// the upstream, measured side by side in one run: a fake OpenAI upstream and the
// load client each run in a process of their own; Parley runs here, with every
// feature on (API-key auth, request and token limits, a user and a key budget,
// metering, the provider registry, a fallback chain of two links).
// Portkey's gateway runs beside them, in a process of its own, when
// `@portkey-ai/gateway` is installed (Parley does not depend on it).
// PGlite by default; PostgreSQL + Redis when DATABASE_URL/REDIS_URL are set.
// Loopback only, every phase bounded in count and time. CPU is read from each
// gateway process's own accounting (process.cpuUsage), which the noise of a
// shared machine moves far less than latency: the summary table comes first.
import { ask, child } from './ipc.ts';
import { cpus, loadavg } from 'node:os';
import { startApp } from '../test/support/app.ts';
import type { Script } from '../test/support/fake-openai.ts';
import { startBareProxy } from './bare-proxy.ts';
import { COUNTED_LIMITS } from './gateway-processes.ts';
import type { LatencyJob, RequestsJob, SteadyJob, StreamResult, StreamsJob } from './gateway-client.ts';
import { runScenario } from './load.ts';

const LATENCY_REQUESTS = 400;
const THROUGHPUT_SECONDS = 6;
const TTFT_STREAMS = 500;
const STEADY_SECONDS = 8;
const STREAM_LEVELS = (process.env.STREAM_LEVELS ?? "1000,2000,3000").split(",").map(Number);
const CHUNK_MS = 50; // 20 chunks/s per stream
const CPU_REQUESTS = 3000;
const CPU_ROUNDS = 4;
const PORTKEY_PORT = 18787;

const pct = (xs: number[], p: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const f = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');

async function main() {
  const upstream = await child(new URL('./upstream.ts', import.meta.url));
  const client = await child(new URL('./gateway-client.ts', import.meta.url));
  const upstreamUrl: string = upstream.first.url;
  const setScript = (defaults: Script) => ask(upstream.proc, { defaults });
  const bareProxy = await startBareProxy(upstreamUrl);
  const portkey = await child(new URL('./portkey.ts', import.meta.url), [`--port=${PORTKEY_PORT}`]);
  if (portkey.first.missing) process.stderr.write('  Portkey gateway not installed (npm i --no-save @portkey-ai/gateway to compare): skipped\n');

  const t = await startApp({
    backend: process.env.DATABASE_URL ? 'postgres' : 'embedded',
    env: {
      OPENAI_API_KEY: 'sk-bench',
      OPENAI_BASE_URL: `${upstreamUrl}/v1`,
      DEFAULT_MODEL: 'openai:gpt-4o-mini',
      AUTH_RATE_LIMIT_PER_IP: '1000000000',
      ...COUNTED_LIMITS,
    },
  });
  try {
    const reg = await t.api('POST', '/v1/auth/register', { body: { email: `bench-${Date.now()}@example.com`, password: 'bench password 123' } });
    const userId: string = reg.body.user.id;
    const { key, secret } = await t.services.apiKeys.create(userId, { name: 'bench', scopes: ['chat', 'models:read'] });
    // Budgets far above what the bench spends (as bench:usage sets them): every call reserves and settles against both.
    await t.services.usage.budgets.setForUser(userId, { period: 'month', limitMicros: 1e12, limitTokens: null });
    await t.services.usage.budgets.setOwn(userId, 'api_key', key.id, { period: 'day', limitMicros: 1e12, limitTokens: 1e12 });
    const messages = [{ role: 'user', content: 'Say hello.' }];
    const direct = { url: `${upstreamUrl}/v1/chat/completions`, headers: { authorization: 'Bearer sk-bench' }, model: 'gpt-4o-mini' };
    // A fallback chain of two links; the first answers.
    const parley = { url: `${t.url}/v1/chat/completions`, headers: { authorization: `Bearer ${secret}` }, model: 'openai:gpt-4o-mini,openai:gpt-4o' };
    const bare = { ...direct, url: `${bareProxy.url}/v1/chat/completions`, headers: {} };
    const portkeyTarget = { ...direct, url: `${portkey.first.url}/v1/chat/completions`, headers: { ...direct.headers, 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `${upstreamUrl}/v1` } };
    type Name = 'direct' | 'bare' | 'parley' | 'portkey';
    type Target = { url: string; headers: Record<string, string>; model: string };
    const targets: Array<readonly [Name, Target]> = [['direct', direct], ['bare', bare], ['parley', parley]];
    if (!portkey.first.missing) targets.push(['portkey', portkeyTarget]);
    const label: Record<Name, string> = { direct: 'direct to upstream', bare: 'bare node:http proxy (the floor)', parley: 'through Parley', portkey: 'through Portkey\'s gateway' };
    // CPU time of the process that serves a target: this one for the bare proxy and Parley, its own for Portkey.
    const cpuNow = async (name: Name): Promise<number> => {
      if (name === 'portkey') return (await ask<{ cpu: number }>(portkey.proc, { cpu: true })).cpu;
      const used = process.cpuUsage();
      return used.user + used.system;
    };
    const body = (model: string, stream: boolean) => JSON.stringify({ model, messages, stream, ...(stream ? { stream_options: { include_usage: true } } : {}) });

    const out: string[] = [];
    out.push(`Parley gateway bench — Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${t.backend === 'postgres' ? 'PostgreSQL + Redis' : 'PGlite'}, load average ${loadavg()[0]!.toFixed(1)} at start`, '');
    const summaryAt = out.length;

    // 0. CPU per non-streaming request: a fixed count over 16 connections from the load client's process,
    // in rounds that alternate the gateways, so a machine whose speed drifts during the phase moves each alike.
    await setScript({ reply: 'Hello there, how can I help?' });
    const cpuPerRequest: Partial<Record<Name, number>> = {};
    const measured = targets.filter(([name]) => name !== 'direct');
    const jobOf = (target: Target, count: number) => ({ kind: 'requests', url: target.url, headers: target.headers, body: body(target.model, false), count, concurrency: 16 }) satisfies RequestsJob;
    for (const [, target] of measured) await ask(client.proc, jobOf(target, 300)); // warm-up
    const used: Partial<Record<Name, { cpu: number; ok: number; failed: number }>> = {};
    for (let round = 0; round < CPU_ROUNDS; round++) {
      for (const [name, target] of round % 2 ? [...measured].reverse() : measured) {
        process.stderr.write(`  CPU per request (${name}, round ${round + 1} of ${CPU_ROUNDS})…\n`);
        const before = await cpuNow(name);
        const r = await ask<{ ok: number; failed: number }>(client.proc, jobOf(target, CPU_REQUESTS / CPU_ROUNDS));
        const u = (used[name] ??= { cpu: 0, ok: 0, failed: 0 });
        u.cpu += (await cpuNow(name)) - before;
        u.ok += r.ok;
        u.failed += r.failed;
      }
    }
    for (const [name] of measured) cpuPerRequest[name] = used[name]!.failed ? NaN : used[name]!.cpu / used[name]!.ok;

    // 1. Non-streaming, concurrency 1.
    await setScript({ reply: 'Hello there, how can I help?' });
    process.stderr.write('  latency at c=1…\n');
    const lat: Record<string, number[]> = {};
    for (const [name, target] of targets) {
      await ask(client.proc, { kind: 'latency', url: target.url, headers: target.headers, body: body(target.model, false), count: 50 } satisfies LatencyJob); // warm-up
      lat[name] = ((await ask<{ samples: number[] }>(client.proc, { kind: 'latency', url: target.url, headers: target.headers, body: body(target.model, false), count: LATENCY_REQUESTS } satisfies LatencyJob)).samples);
    }
    process.stderr.write('  throughput…\n');
    const rps: Record<string, number> = {};
    for (const [name, target] of targets) {
      const u = new URL(target.url);
      const r = await runScenario({ url: u.origin, method: 'POST', path: u.pathname, connections: 32, durationSeconds: THROUGHPUT_SECONDS, headers: target.headers, body: body(target.model, false) });
      rps[name] = r.rps;
    }
    out.push('### Non-streaming', '', '| | p50 ms | p99 ms | max req/s (32 connections) |', '|---|--:|--:|--:|');
    for (const [name] of targets) out.push(`| ${label[name]} | ${f(pct(lat[name]!, 50))} | ${f(pct(lat[name]!, 99))} | ${rps[name]!.toFixed(0)} |`);
    out.push(`| **added by Parley** | **${f(pct(lat.parley!, 50) - pct(lat.direct!, 50))}** | **${f(pct(lat.parley!, 99) - pct(lat.direct!, 99))}** | |`);
    out.push(`| added by the bare proxy | ${f(pct(lat.bare!, 50) - pct(lat.direct!, 50))} | ${f(pct(lat.bare!, 99) - pct(lat.direct!, 99))} | |`, '');

    // 2. Time to first token at 500 concurrent streams: all opened at once, then held steady.
    await setScript({ reply: Array.from({ length: 20 }, (_, i) => `word${i}`).join(' '), delayMs: CHUNK_MS });
    const streamsOf = (target: { url: string; headers: Record<string, string>; model: string }) => ({ url: target.url, headers: target.headers, body: body(target.model, true), concurrency: TTFT_STREAMS });
    const burst: Record<string, StreamResult> = {};
    const held: Record<string, StreamResult> = {};
    for (const [name, target] of targets) {
      process.stderr.write(`  TTFT, ${TTFT_STREAMS} streams at once (${name})…\n`);
      burst[name] = (await ask<{ streams: StreamResult }>(client.proc, { kind: 'streams', ...streamsOf(target) } satisfies StreamsJob)).streams;
      process.stderr.write(`  TTFT, ${TTFT_STREAMS} streams held for ${STEADY_SECONDS} s (${name})…\n`);
      held[name] = (await ask<{ streams: StreamResult }>(client.proc, { kind: 'steady', ...streamsOf(target), rampMs: 20 * CHUNK_MS, seconds: STEADY_SECONDS } satisfies SteadyJob)).streams;
    }
    const ttftTable = (title: string, r: Record<string, StreamResult>) => {
      out.push(title, '', '| | streams | TTFT p50 ms | TTFT p99 ms | failed |', '|---|--:|--:|--:|--:|');
      for (const [name] of targets) out.push(`| ${label[name]} | ${r[name]!.ttft.length} | ${f(pct(r[name]!.ttft, 50))} | ${f(pct(r[name]!.ttft, 99))} | ${r[name]!.failed} |`);
      out.push(`| **added by Parley** | | **${f(pct(r.parley!.ttft, 50) - pct(r.direct!.ttft, 50))}** | **${f(pct(r.parley!.ttft, 99) - pct(r.direct!.ttft, 99))}** | |`);
      out.push(`| added by the bare proxy | | ${f(pct(r.bare!.ttft, 50) - pct(r.direct!.ttft, 50))} | ${f(pct(r.bare!.ttft, 99) - pct(r.direct!.ttft, 99))} | |`, '');
    };
    ttftTable(`### Streaming: time to first token, ${TTFT_STREAMS} streams held open (each replaced as it ends; upstream: 20 chunks, one every ${CHUNK_MS} ms)`, held);
    ttftTable(`### Streaming: time to first token, ${TTFT_STREAMS} streams opened in the same instant`, burst);

    // 3. How many concurrent streams at 20 chunks/s one process holds, and the memory each costs.
    const chunks = 100;
    await setScript({ reply: Array.from({ length: chunks }, (_, i) => `w${i}`).join(' '), delayMs: CHUNK_MS });
    out.push(`### Concurrent streams through one Parley process (${1000 / CHUNK_MS} chunks/s each, ${chunks} chunks = ${(chunks * CHUNK_MS) / 1000} s per stream)`, '');
    out.push('| streams | through | completed | failed | TTFT p99 ms | stream duration p99 s (ideal ' + (chunks * CHUNK_MS) / 1000 + ') | CPU µs per chunk (this process) | Parley RSS growth | per stream | JS heap growth per stream |', '|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|');
    const run = async (target: Target, n: number, name: Name = 'parley') => {
      const before = await cpuNow(name);
      const r = (await ask<{ streams: StreamResult }>(client.proc, { kind: 'streams', url: target.url, headers: target.headers, body: body(target.model, true), concurrency: n } satisfies StreamsJob)).streams;
      const used = (await cpuNow(name)) - before;
      const delivered = r.chunks.reduce((a, b) => a + b, 0);
      return { r, used, delivered, cpuPerChunk: used / Math.max(1, delivered) };
    };
    const perChunk: Partial<Record<Name, number>> = {};
    type Run = Awaited<ReturnType<typeof run>>;
    const firstRound = {} as { bare?: Run; parley: Run };
    const row = (n: number, through: string, r: StreamResult, cpu: number | undefined, memory = '| | |') =>
      out.push(`| ${n} | ${through} | ${r.ttft.length} | ${r.failed} | ${f(pct(r.ttft, 99), 0)} | ${f(pct(r.durations, 99) / 1000)} | ${cpu === undefined ? '' : f(cpu, 0)} ${memory} |`);
    for (const n of STREAM_LEVELS) {
      if (n === STREAM_LEVELS[0]) {
        // What the machine gives with no gateway, and with the featureless proxy: the load client and the upstream share these two cores.
        process.stderr.write(`  ${n} concurrent streams, direct and bare proxy…\n`);
        row(n, 'direct', (await run(direct, n)).r, undefined);
        const b = await run(bare, n, 'bare');
        row(n, 'bare proxy', b.r, b.cpuPerChunk);
        firstRound.bare = b;
        if (!portkey.first.missing) {
          process.stderr.write(`  ${n} concurrent streams, Portkey…\n`);
          const p = await run(portkeyTarget, n, 'portkey');
          row(n, 'Portkey', p.r, p.cpuPerChunk);
          perChunk.portkey = p.cpuPerChunk;
        }
      }
      global.gc?.();
      const base = process.memoryUsage();
      let peak = base;
      const sampler = setInterval(() => {
        const m = process.memoryUsage();
        if (m.rss > peak.rss) peak = m;
      }, 200);
      process.stderr.write(`  ${n} concurrent streams…\n`);
      const first = await run(parley, n);
      const { r, cpuPerChunk } = first;
      if (n === STREAM_LEVELS[0]) firstRound.parley = first;
      clearInterval(sampler);
      const rss = peak.rss - base.rss;
      const heap = peak.heapUsed - base.heapUsed;
      row(n, '**Parley**', r, cpuPerChunk, `| ${(rss / 1048576).toFixed(0)} MB | ${(rss / n / 1024).toFixed(1)} KB | ${(heap / n / 1024).toFixed(1)} KB`);
      if (n === STREAM_LEVELS[0]) {
        // The summary's figure: a second round in the other order (Parley, then the bare proxy), added to the
        // first, so that the machine's speed drifting during the phase moves both alike.
        process.stderr.write(`  ${n} concurrent streams, Parley and bare proxy again…\n`);
        const p2 = await run(parley, n);
        const b2 = await run(bare, n, 'bare');
        perChunk.parley = (firstRound.parley.used + p2.used) / Math.max(1, firstRound.parley.delivered + p2.delivered);
        perChunk.bare = (firstRound.bare!.used + b2.used) / Math.max(1, firstRound.bare!.delivered + b2.delivered);
      }
      if (r.failed > 0) break;
    }

    // The summary, first in the output: what each gateway costs per request and per chunk, beside the bare proxy.
    const summary = [
      `### Summary: what each gateway costs (CPU from its own process accounting; streams: ${STREAM_LEVELS[0]} at once; TTFT: ${TTFT_STREAMS} streams held open)`,
      '',
      '| | CPU µs per request | CPU µs per chunk | req/s (32 connections) | added TTFT p50 ms | added TTFT p99 ms |',
      '|---|--:|--:|--:|--:|--:|',
    ];
    for (const name of ['bare', 'parley', 'portkey'] as const) {
      if (name === 'portkey' && portkey.first.missing) {
        summary.push(`| ${label.portkey} | not installed | | | | |`);
        continue;
      }
      summary.push(`| ${label[name]} | ${f(cpuPerRequest[name]!, 0)} | ${f(perChunk[name]!, 1)} | ${rps[name]!.toFixed(0)} | ${f(pct(held[name]!.ttft, 50) - pct(held.direct!.ttft, 50))} | ${f(pct(held[name]!.ttft, 99) - pct(held.direct!.ttft, 99))} |`);
    }
    summary.push(`| **Parley ÷ bare proxy** (targets 1.5× and 1.3×) | **${f(cpuPerRequest.parley! / cpuPerRequest.bare!)}×** | **${f(perChunk.parley! / perChunk.bare!)}×** | | | |`, '');
    out.splice(summaryAt, 0, ...summary);
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    await bareProxy.close();
    await t.close();
    upstream.proc.kill();
    client.proc.kill();
    portkey.proc.kill();
  }
}

await main();

// Req/s with 1 and N `parley serve` processes beside the core count (PostgreSQL + Redis only).
process.stdout.write(`\n${(await (await import('./gateway-processes.ts')).gatewayByProcesses()).table.join('\n')}\n`);
