import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { eq } from 'drizzle-orm';
import { apiKeys } from '../../../src/modules/api-keys/schema.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

const future = (ms = 3_600_000) => new Date(Date.now() + ms).toISOString();

for (const backend of backends()) {
  describe(`api keys [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend, env: { API_KEYS_MAX_PER_USER: '20' } });
    });
    after(() => t.close());

    const newKey = async (u: TestUser, body: Record<string, unknown> = { name: 'ci' }) => {
      const res = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body });
      assert.equal(res.status, 201, res.text);
      return res.body;
    };

    test('create returns the secret once, with the public shape', async () => {
      const u = await createUser(t);
      const expiresAt = future();
      const created = await newKey(u, { name: '  deploy bot ', scopes: ['profile:read', 'chat', 'chat'], expiresAt });
      assert.match(created.key, /^pk_[\w-]{40,}$/);
      assert.equal(created.name, 'deploy bot');
      assert.equal(created.prefix, 'pk_');
      assert.equal(created.last4, created.key.slice(-4));
      assert.deepEqual(created.scopes, ['profile:read', 'chat'], 'duplicates dropped');
      assert.equal(created.expiresAt, expiresAt);
      assert.equal(created.lastUsedAt, null);
      assert.ok(created.createdAt);

      const one = await t.api('GET', `/v1/api-keys/${created.id}`, { token: u.accessToken });
      assert.equal(one.status, 200);
      assert.equal(one.body.key, undefined, 'secret never returned again');
      assert.ok(!one.text.includes(created.key));
      const { key: _secret, ...publicShape } = created;
      assert.deepEqual(one.body, publicShape);
      const list = await t.api('GET', '/v1/api-keys', { token: u.accessToken });
      assert.equal(list.status, 200);
      assert.deepEqual(list.body.data, [publicShape]);
      assert.ok(!list.text.includes(created.key));
    });

    test('only a SHA-256 of the key is stored', async () => {
      const u = await createUser(t);
      const created = await newKey(u);
      const [row] = await t.deps.db.select().from(apiKeys).where(eq(apiKeys.id, created.id));
      assert.equal(row!.keyHash, createHash('sha256').update(created.key).digest('hex'));
      assert.ok(!JSON.stringify(row).includes(created.key.slice(3)), 'no column holds the secret');
    });

    test('the key works as a Bearer token and records lastUsedAt', async () => {
      const u = await createUser(t);
      const created = await newKey(u, { name: 'reader', scopes: ['profile:read'] });
      const me = await t.api('GET', '/v1/users/me', { token: created.key });
      assert.equal(me.status, 200);
      assert.equal(me.body.id, u.id);
      // Recorded off the request path.
      const shown = await eventually(async () => {
        const res = await t.api('GET', `/v1/api-keys/${created.id}`, { token: u.accessToken });
        assert.ok(res.body.lastUsedAt, 'lastUsedAt set');
        return res;
      });
      assert.ok(Date.now() - Date.parse(shown.body.lastUsedAt) < 60_000);
    });

    test('a key in the query string is not accepted', async () => {
      const u = await createUser(t);
      const { key } = await newKey(u);
      for (const param of ['api_key', 'apiKey', 'key', 'access_token', 'token']) {
        const res = await t.api('GET', `/v1/users/me?${param}=${encodeURIComponent(key)}`);
        assert.equal(res.status, 401, param);
        assert.equal(res.body.code, 'unauthorized');
      }
    });

    test('a deleted key stops working at once', async () => {
      const u = await createUser(t);
      const created = await newKey(u);
      assert.equal((await t.api('GET', '/v1/users/me', { token: created.key })).status, 200);
      const del = await t.api('DELETE', `/v1/api-keys/${created.id}`, { token: u.accessToken });
      assert.equal(del.status, 204);
      const me = await t.api('GET', '/v1/users/me', { token: created.key });
      assert.equal(me.status, 401);
      assert.equal(me.body.code, 'invalid_api_key');
      assert.equal((await t.api('GET', `/v1/api-keys/${created.id}`, { token: u.accessToken })).status, 404);
      const again = await t.api('DELETE', `/v1/api-keys/${created.id}`, { token: u.accessToken });
      assert.equal(again.status, 404);
      assert.equal(again.body.code, 'api_key_not_found');
    });

    test('an expired key is refused with api_key_expired', async () => {
      const u = await createUser(t);
      const created = await newKey(u, { name: 'short-lived', expiresAt: future(1_500) });
      assert.equal((await t.api('GET', '/v1/users/me', { token: created.key })).status, 200, 'valid, and now cached');
      await sleep(Date.parse(created.expiresAt) - Date.now() + 10);
      const me = await t.api('GET', '/v1/users/me', { token: created.key });
      assert.equal(me.status, 401);
      assert.equal(me.body.code, 'api_key_expired');
    });

    test('expiry must be in the future; bad input is a 400 and creates nothing', async () => {
      const u = await createUser(t);
      const past = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'x', expiresAt: new Date(Date.now() - 1000).toISOString() } });
      assert.equal(past.status, 400);
      assert.equal(past.body.code, 'expires_at_in_past');
      const bad = [
        { name: 'x', expiresAt: 'tomorrow' },
        // The year 10000 in UTC: no ISO text (nor PostgreSQL) writes it back.
        { name: 'x', expiresAt: '9999-12-31T23:59:59-14:00' },
        { name: '' },
        { name: 'deploy\nkey' },
        { name: 'key \u202Egnp.exe' },
        { name: 'x', scopes: ['admin'] },
        { name: 'x', scopes: 'chat' },
        { name: 'x', extra: true },
        {},
      ];
      for (const body of bad) {
        const res = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body });
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal(res.body.code, 'validation_failed');
      }
      assert.deepEqual((await t.api('GET', '/v1/api-keys', { token: u.accessToken })).body.data, []);
    });

    test('a key without the route\'s scope gets 403 insufficient_scope', async () => {
      const u = await createUser(t);
      const { key } = await newKey(u, { name: 'chat only', scopes: ['chat'] });
      const me = await t.api('GET', '/v1/users/me', { token: key });
      assert.equal(me.status, 403);
      assert.equal(me.body.code, 'insufficient_scope');
    });

    test('a key cannot manage keys', async () => {
      const u = await createUser(t);
      const created = await newKey(u);
      const attempts = [
        ['POST', '/v1/api-keys', { name: 'escalate' }],
        ['GET', '/v1/api-keys', undefined],
        ['GET', `/v1/api-keys/${created.id}`, undefined],
        ['DELETE', `/v1/api-keys/${created.id}`, undefined],
      ] as const;
      for (const [method, path, body] of attempts) {
        const res = await t.api(method, path, { token: created.key, body });
        assert.equal(res.status, 403, `${method} ${path}`);
        assert.equal(res.body.code, 'api_key_not_allowed');
      }
      assert.equal((await t.api('GET', '/v1/api-keys', { token: u.accessToken })).body.data.length, 1);
    });

    test('a disabled owner\'s key is refused at once, though it was just verified', async () => {
      const u = await createUser(t);
      const admin = await createUser(t, { admin: true });
      const { key } = await newKey(u);
      assert.equal((await t.api('GET', '/v1/users/me', { token: key })).status, 200);
      assert.equal((await t.api('POST', `/v1/admin/users/${u.id}/disable`, { token: admin.accessToken })).status, 200);
      const me = await t.api('GET', '/v1/users/me', { token: key });
      assert.equal(me.status, 401);
      assert.equal(me.body.code, 'account_disabled');
      assert.equal((await t.api('POST', `/v1/admin/users/${u.id}/enable`, { token: admin.accessToken })).status, 200);
      assert.equal((await t.api('GET', '/v1/users/me', { token: key })).status, 200, 'enabled again');
    });

    test('list pages with a cursor, newest first', async () => {
      const u = await createUser(t);
      const ids = [];
      for (const name of ['a', 'b', 'c']) ids.push((await newKey(u, { name })).id);
      const p1 = await t.api('GET', '/v1/api-keys?limit=2', { token: u.accessToken });
      assert.deepEqual(p1.body.data.map((k: { id: string }) => k.id), [ids[2], ids[1]]);
      assert.ok(p1.body.nextCursor);
      const p2 = await t.api('GET', `/v1/api-keys?limit=2&cursor=${p1.body.nextCursor}`, { token: u.accessToken });
      assert.deepEqual(p2.body.data.map((k: { id: string }) => k.id), [ids[0]]);
      assert.equal(p2.body.nextCursor, null);
      assert.equal((await t.api('GET', '/v1/api-keys?cursor=nope', { token: u.accessToken })).status, 400);
      assert.equal((await t.api('GET', '/v1/api-keys?limit=1000', { token: u.accessToken })).status, 400);
    });

    test('a user holds at most API_KEYS_MAX_PER_USER keys (20 here), creations side by side included; a deleted one frees its place', async () => {
      const u = await createUser(t);
      const other = await createUser(t);
      const create = (who: TestUser) => t.api('POST', '/v1/api-keys', { token: who.accessToken, body: { name: 'many' } });
      for (let i = 0; i < 15; i++) assert.equal((await create(u)).status, 201);
      const raced = await Promise.all(Array.from({ length: 10 }, () => create(u)));
      assert.deepEqual(raced.map((r) => r.status).sort(), [...Array(5).fill(201), ...Array(5).fill(409)], raced.map((r) => r.text).join('\n'));
      const refused = raced.find((r) => r.status === 409)!;
      assert.equal(refused.body.code, 'api_key_limit');
      assert.match(refused.headers.get('content-type') ?? '', /application\/problem\+json/);
      const all = await t.api('GET', '/v1/api-keys?limit=100', { token: u.accessToken });
      assert.equal(all.body.data.length, 20, 'the refused creations stored nothing');
      assert.equal((await create(other)).status, 201, 'the cap is per user');
      assert.equal((await t.api('DELETE', `/v1/api-keys/${raced.find((r) => r.status === 201)!.body.id}`, { token: u.accessToken })).status, 204);
      assert.equal((await create(u)).status, 201);
      assert.equal((await create(u)).status, 409);
    });

    test('creating and deleting are audited', async () => {
      const u = await createUser(t);
      const created = await newKey(u, { name: 'audited' });
      await t.api('DELETE', `/v1/api-keys/${created.id}`, { token: u.accessToken, headers: { 'user-agent': 'AuditTest/1' } });
      const entries = await t.services.audit.list({ limit: 10, userId: u.id });
      const createdEntry = entries.find((e) => e.action === 'api_key.created');
      const deletedEntry = entries.find((e) => e.action === 'api_key.deleted');
      assert.equal(createdEntry?.metadata.apiKeyId, created.id);
      assert.equal(deletedEntry?.metadata.apiKeyId, created.id);
      assert.equal(deletedEntry?.userAgent, 'AuditTest/1');
      assert.ok(!JSON.stringify(entries).includes(created.key), 'the secret is not in the audit log');
    });

    test('the routes are in the OpenAPI document', async () => {
      const doc = await t.api('GET', '/openapi.json');
      assert.equal(doc.status, 200);
      assert.ok(doc.body.paths['/v1/api-keys'].post);
      assert.ok(doc.body.paths['/v1/api-keys/{id}'].delete);
      assert.ok(doc.body.components.schemas.CreatedApiKey);
    });
  });
}
