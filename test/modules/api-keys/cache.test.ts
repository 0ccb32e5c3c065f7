import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createVerificationCache } from '../../../src/modules/api-keys/cache.ts';
import { startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser } from '../../support/factories.ts';

describe('API key verification cache', () => {
  const clock = { t: 1_000 };
  const make = () => createVerificationCache<{ userId: string; n: number }>({ ttlMs: 100, maxEntries: 3, now: () => clock.t });

  test('an entry is served until its TTL, then looked up again', () => {
    const cache = make();
    cache.set('h', { userId: 'u', n: 1 }, cache.startLookup());
    clock.t += 99;
    assert.equal(cache.get('h')?.n, 1);
    clock.t += 1;
    assert.equal(cache.get('h'), undefined);
  });

  test('forgetting a user drops all of their entries and no one else\'s', () => {
    const cache = make();
    const started = cache.startLookup();
    cache.set('a1', { userId: 'a', n: 1 }, started);
    cache.set('a2', { userId: 'a', n: 2 }, started);
    cache.set('b1', { userId: 'b', n: 3 }, started);
    clock.t += 1;
    cache.forgetUser('a');
    assert.equal(cache.get('a1'), undefined);
    assert.equal(cache.get('a2'), undefined);
    assert.equal(cache.get('b1')?.n, 3);
  });

  test('a lookup that began before the user was forgotten is not stored (it may have read the old state)', () => {
    const cache = make();
    const started = cache.startLookup();
    clock.t += 5;
    cache.forgetUser('a'); // the change commits while the lookup is in flight
    clock.t += 5;
    cache.set('a1', { userId: 'a', n: 1 }, started);
    assert.equal(cache.get('a1'), undefined);
    cache.set('a1', { userId: 'a', n: 2 }, cache.startLookup() + 1);
    assert.equal(cache.get('a1')?.n, 2, 'a lookup after the change is stored');
  });

  test('it never holds more than maxEntries; the oldest goes first', () => {
    const cache = make();
    for (const h of ['1', '2', '3', '4']) cache.set(h, { userId: h, n: Number(h) }, cache.startLookup());
    assert.equal(cache.size, 3);
    assert.equal(cache.get('1'), undefined);
    assert.equal(cache.get('4')?.n, 4);
  });
});

// Two instances sharing PostgreSQL and Redis: each trusts its cache, and a change made on one reaches the other.
describe('API key changes across instances [postgres]', { skip: !process.env.DATABASE_URL || !process.env.REDIS_URL }, () => {
  let a: TestApp;
  let b: TestApp;
  before(async () => {
    a = await startApp({ backend: 'postgres' });
    b = await startApp({ sharedWith: a });
  });
  after(async () => {
    await b?.close();
    await a?.close();
  });

  const keyFor = async (token: string) => {
    const res = await a.api('POST', '/v1/api-keys', { token, body: { name: 'k' } });
    assert.equal(res.status, 201, res.text);
    return res.body as { id: string; key: string };
  };

  test('a key deleted on A is refused on B, which had just verified it', async () => {
    const u = await createUser(a);
    const { id, key } = await keyFor(u.accessToken);
    assert.equal((await b.api('GET', '/v1/users/me', { token: key })).status, 200);
    assert.equal((await a.api('DELETE', `/v1/api-keys/${id}`, { token: u.accessToken })).status, 204);
    await eventually(async () => {
      const res = await b.api('GET', '/v1/users/me', { token: key });
      assert.equal(res.status, 401);
      assert.equal(res.body.code, 'invalid_api_key');
    }, 2_000);
  });

  test('an account disabled on A has its keys refused on B; re-enabled, they work again', async () => {
    const u = await createUser(a);
    const admin = await createUser(a, { admin: true });
    const { key } = await keyFor(u.accessToken);
    assert.equal((await b.api('GET', '/v1/users/me', { token: key })).status, 200);
    assert.equal((await a.api('POST', `/v1/admin/users/${u.id}/disable`, { token: admin.accessToken })).status, 200);
    await eventually(async () => assert.equal((await b.api('GET', '/v1/users/me', { token: key })).body.code, 'account_disabled'), 2_000);
    assert.equal((await a.api('POST', `/v1/admin/users/${u.id}/enable`, { token: admin.accessToken })).status, 200);
    await eventually(async () => assert.equal((await b.api('GET', '/v1/users/me', { token: key })).status, 200), 2_000);
  });

});
