import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import { uniqueEmail } from './support/factories.ts';
import { call, runCli, startServer, tempDataDir } from './support/process.ts';

// `parley <command>` as an operator runs it. PGlite is single-process, so the
// CLI runs while no server holds the data dir, and the server starts after.

describe('parley CLI', { timeout: 300_000 }, () => {
  const data = tempDataDir();
  const env = { PARLEY_DATA_DIR: data.dir };
  after(() => data.remove());

  test('migrate on a fresh data dir, create an admin, rotate the JWT key, then serve', async () => {
    const migrate = await runCli(['migrate'], env);
    assert.equal(migrate.code, 0, migrate.stderr);

    const email = uniqueEmail('cli-admin');
    const created = await runCli(['admin', 'create-user', '--email', email, '--name', 'Root', '--admin'], env);
    assert.equal(created.code, 0, created.stderr);
    const user = JSON.parse(created.stdout);
    assert.equal(user.email, email);
    assert.equal(user.role, 'admin');
    assert.ok(user.password.length >= 12, 'a password is generated and printed once');

    const rotated = await runCli(['admin', 'rotate-jwt-key'], env);
    assert.equal(rotated.code, 0, rotated.stderr);
    const { kid } = JSON.parse(rotated.stdout);
    assert.match(kid, /^[0-9a-f-]{36}$/);

    const server = await startServer(env);
    try {
      const login = await call(server.url, 'POST', '/v1/auth/login', { body: { email, password: user.password } });
      assert.equal(login.status, 200, JSON.stringify(login.body));
      assert.equal(decodeProtectedHeader(login.body.accessToken).kid, kid, 'new tokens are signed with the rotated key');
      const me = await call(server.url, 'GET', '/v1/users/me', { token: login.body.accessToken });
      assert.equal(me.status, 200);
      assert.equal(me.body.id, user.id);
      assert.equal(me.body.role, 'admin');
      const jwks = await call(server.url, 'GET', '/.well-known/jwks.json');
      const kids = jwks.body.keys.map((k: { kid: string }) => k.kid);
      assert.ok(kids.includes(kid), 'the rotated key is published');
      assert.equal(kids.length, 2, 'the retired key still verifies for a grace period');
      // The server holds the embedded database: another process is refused, and says which holds it.
      const beside = await runCli(['admin', 'create-user', '--email', uniqueEmail('cli-beside')], env);
      assert.equal(beside.code, 1);
      assert.match(beside.stderr, new RegExp(`is in use by process \\d+`));
      assert.doesNotMatch(beside.stderr, /\n\s+at /, 'no stack trace');
    } finally {
      assert.deepEqual(await server.stop(), { code: 0, signal: null });
    }
  });

  test('create-user refuses a taken email or a weak password with a message, not a stack trace', async () => {
    const email = uniqueEmail('cli-dup');
    assert.equal((await runCli(['admin', 'create-user', '--email', email, '--password', 'a long password'], env)).code, 0);
    const again = await runCli(['admin', 'create-user', '--email', email, '--password', 'a long password'], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists/);
    assert.doesNotMatch(again.stderr, /\n\s+at /, 'no stack trace');
    const weak = await runCli(['admin', 'create-user', '--email', uniqueEmail('cli-weak'), '--password', 'short'], env);
    assert.equal(weak.code, 1);
    assert.match(weak.stderr, /at least 8 characters/);
    assert.doesNotMatch(weak.stderr, /\n\s+at /);
  });

  test('a bad variable stops the process with a message naming it', async () => {
    const bad = [
      ['PORT', 'abc'],
      ['DATABASE_URL', 'mysql://x'],
      ['PARLEY_MASTER_KEY', 'short'],
      // A cron pattern or task name croner only met once the database was open and migrated: exit 1 with its stack.
      ['NOTIFICATIONS_DIGEST_CRON', 'x x x x x'],
      ['SCHEDULES', 'usage.rollup=every minute'],
      ['SCHEDULES', 'nosuchtask=off'],
    ];
    for (const [name, value] of bad) {
      const res = await runCli(['start'], { ...env, [name]: value });
      assert.equal(res.code, 78, `${name}=${value}: ${res.stderr}`);
      assert.match(res.stderr, new RegExp(`\\b${name}\\b`));
      assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
    }
  });

  test('an unknown command exits 64 with the usage', async () => {
    const res = await runCli(['frobnicate'], env);
    assert.equal(res.code, 64);
    assert.match(res.stderr, /Unknown command "frobnicate"/);
    assert.match(res.stderr, /Usage: parley <command>/);
    const sub = await runCli(['admin', 'frobnicate'], env);
    assert.equal(sub.code, 64);
    assert.match(sub.stderr, /Usage: parley admin/);
  });

  test("admin's and migrate's bad arguments exit 64 with the usage, before any database is opened; --help is 0", async () => {
    const fresh = tempDataDir();
    const env = { PARLEY_DATA_DIR: `${fresh.dir}/never` };
    try {
      for (const args of [
        ['admin', 'create-user', '--email'],
        ['admin', 'create-user', '--email', 'a@example.com', '--bogus'],
        ['admin', 'create-user', '--email', 'a@example.com', 'stray'],
        ['admin', 'create-user', '--email', 'admin@localhost'],
        ['admin', 'create-user', '--email', 'not-an-email'],
        ['admin', 'rotate-jwt-key', 'extra'],
        ['migrate', '--bogus'],
      ]) {
        const res = await runCli(args, env);
        assert.equal(res.code, 64, `${args.join(' ')}: ${res.stderr}`);
        assert.match(res.stderr, /Usage: parley/);
        assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
      }
      assert.equal(existsSync(env.PARLEY_DATA_DIR), false, 'no data directory was made');
      for (const args of [['admin', '--help'], ['admin', 'create-user', '--help']]) {
        const res = await runCli(args, env);
        assert.equal(res.code, 0, res.stderr);
        assert.match(res.stdout, /--name <name>/);
      }
    } finally {
      fresh.remove();
    }
  });
});
