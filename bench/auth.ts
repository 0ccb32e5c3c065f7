// npm run bench:auth — login, refresh and authenticated request figures for
// Parley in-process on PGlite, and on PostgreSQL + Redis when DATABASE_URL and
// REDIS_URL are set. Load comes from autocannon in a worker thread, over real
// HTTP to 127.0.0.1 only, each scenario bounded in time.
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { startApp, type Backend, type TestApp } from '../test/support/app.ts';
import { refreshPoolSize, runScenario, type Figures, type Scenario } from './load.ts';

const CONNECTIONS = 10;
const SECONDS = { login: 6, other: 5 };
const password = 'correct horse battery staple';

async function benchBackend(backend: Backend): Promise<Array<[string, Figures]>> {
  // Embedded runs as `npm start` does: PGlite persisted to disk, not in memory.
  const dataDir = backend === 'embedded' ? mkdtempSync(path.join(tmpdir(), 'parley-bench-')) : undefined;
  const t: TestApp = await startApp({
    backend,
    env: { AUTH_RATE_LIMIT_PER_IP: '1000000000', AUTH_RATE_LIMIT_PER_ACCOUNT: '1000000000', ...(dataDir ? { PARLEY_DATA_DIR: dataDir } : {}) },
  });
  try {
    const email = `bench-${Date.now()}@example.com`;
    const reg = await t.api('POST', '/v1/auth/register', { body: { email, password } });
    if (reg.status !== 201) throw new Error(`register failed: ${reg.status} ${reg.text}`);
    const { user, accessToken } = reg.body;
    const { secret: apiKey } = await t.services.apiKeys.create(user.id, { name: 'bench', scopes: ['profile:read'] });
    // Chain starts for the refresh run, minted through the service so they cost no argon2 time.
    const userRow = await t.services.users.require(user.id);
    const refreshTokens: string[] = [];
    for (let i = 0; i < refreshPoolSize(SECONDS.other, 3000, CONNECTIONS); i++) {
      refreshTokens.push((await t.services.auth.signIn(userRow, 'password', { ip: '127.0.0.1' })).refreshToken);
    }

    const base = { url: t.url, connections: CONNECTIONS, durationSeconds: SECONDS.other };
    const scenarios: Array<[string, Scenario]> = [
      ['POST /v1/auth/login', { ...base, durationSeconds: SECONDS.login, method: 'POST', path: '/v1/auth/login', body: JSON.stringify({ email, password }) }],
      ['POST /v1/auth/refresh', { ...base, method: 'POST', path: '/v1/auth/refresh', refreshTokens }],
      ['GET /v1/users/me (JWT)', { ...base, method: 'GET', path: '/v1/users/me', headers: { authorization: `Bearer ${accessToken}` } }],
      ['GET /v1/users/me (API key)', { ...base, method: 'GET', path: '/v1/users/me', headers: { authorization: `Bearer ${apiKey}` } }],
    ];
    const rows: Array<[string, Figures]> = [];
    for (const [name, scenario] of scenarios) {
      process.stderr.write(`  ${backend}: ${name}…\n`);
      rows.push([name, await runScenario(scenario)]);
    }
    return rows;
  } finally {
    await t.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

function table(title: string, rows: Array<[string, Figures]>): string {
  const lines = [
    `### ${title}`,
    '',
    '| scenario | req/s | p50 ms | p99 ms | requests | failed |',
    '|---|--:|--:|--:|--:|--:|',
    ...rows.map(([name, f]) => `| ${name} | ${f.rps.toFixed(0)} | ${f.p50} | ${f.p99} | ${f.requests} | ${f.failed} |`),
  ];
  return lines.join('\n');
}

const targets: Array<[Backend, string]> = [['embedded', 'PGlite (embedded), in-process adapters']];
if (process.env.DATABASE_URL) targets.push(['postgres', `PostgreSQL${process.env.REDIS_URL ? ' + Redis' : ''}`]);

const out = [`Parley auth bench — Node ${process.version}, ${availableParallelism()} × ${cpus()[0]?.model.trim()}, ${CONNECTIONS} connections, load average ${loadavg()[0]!.toFixed(1)} at start`];
for (const [backend, title] of targets) out.push('', table(title, await benchBackend(backend)));
process.stdout.write(`${out.join('\n')}\n`);
