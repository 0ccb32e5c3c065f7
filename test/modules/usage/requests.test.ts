import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

const DAY = 86_400_000;
const dayOf = (d: Date) => d.toISOString().slice(0, 10);
// Yesterday too, so a run across midnight UTC still sees every request.
const range = () => `from=${dayOf(new Date(Date.now() - DAY))}&to=${dayOf(new Date())}`;

type Row = { day?: string; method?: string; route?: string; userId?: string | null; requests: number; bytesIn: number; bytesOut: number };
const find = (rows: Row[], method: string, route: string, userId?: string | null) =>
  rows.find((r) => r.method === method && r.route === route && (userId === undefined || r.userId === userId));

for (const backend of backends()) {
  describe(`API request reports [${backend}]`, () => {
    let t: TestApp;
    let admin: TestUser;
    let u: TestUser;
    let other: TestUser;
    /** What u's three GET /v1/users/me answered, from their Content-Length. */
    let meBytes = 0;
    const preferences = { theme: 'dark' };
    /** The chunked upload's body: no Content-Length is sent with it. */
    const chunked = JSON.stringify({ theme: 'light', locale: 'de-DE' });
    /** The CSV export, streamed without a Content-Length. */
    let csv = '';

    before(async () => {
      t = await startApp({ backend });
      admin = await createUser(t, { admin: true });
      u = await createUser(t);
      other = await createUser(t);
      for (let i = 0; i < 3; i++) {
        const res = await t.api('GET', '/v1/users/me', { token: u.accessToken });
        assert.equal(res.status, 200);
        meBytes += Number(res.headers.get('content-length'));
      }
      assert.equal((await t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, body: preferences })).status, 200);
      const body = new ReadableStream({
        start(c) {
          for (const part of [chunked.slice(0, 10), chunked.slice(10)]) c.enqueue(new TextEncoder().encode(part));
          c.close();
        },
      });
      const upload = await fetch(`${t.url}/v1/users/me/preferences`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${other.accessToken}`, 'content-type': 'application/json' },
        body,
        duplex: 'half',
      } as RequestInit);
      assert.equal(upload.status, 200, await upload.text());
      assert.equal((await t.api('GET', '/v1/users/me', { token: other.accessToken })).status, 200);
      const exported = await t.api('GET', '/v1/admin/usage/export', { token: admin.accessToken });
      assert.equal(exported.status, 200);
      assert.equal(exported.headers.get('content-length'), null, 'the export is streamed');
      csv = exported.text;
      // Anonymous: no caller.
      assert.equal((await t.api('GET', '/health')).status, 200);
    });
    after(() => t.close());

    /** A report once the recorder has written what the requests above counted. */
    async function report(path: string, token: string, check: (body: { totals: Row; data: Row[] }) => void) {
      return eventually(async () => {
        await t.services.usage.recorder.flush();
        const res = await t.api('GET', path, { token });
        assert.equal(res.status, 200, res.text);
        check(res.body);
        return res.body as { totals: Row; data: Row[] };
      });
    }

    test('requests are counted per route with the bytes received and sent', async () => {
      const body = await report(`/v1/usage/requests?${range()}&groupBy=route`, u.accessToken, (b) => assert.ok(find(b.data, 'PATCH', '/v1/users/me/preferences')));
      assert.deepEqual(find(body.data, 'GET', '/v1/users/me'), { method: 'GET', route: '/v1/users/me', requests: 3, bytesIn: 0, bytesOut: meBytes });
      const patch = find(body.data, 'PATCH', '/v1/users/me/preferences')!;
      assert.equal(patch.requests, 1);
      assert.equal(patch.bytesIn, Buffer.byteLength(JSON.stringify(preferences)), 'the request body, from its Content-Length');
      assert.ok(patch.bytesOut > 0);
      assert.ok(body.data.every((r) => r.day === undefined && r.userId === undefined), 'only the groups asked for');
      for (const k of ['requests', 'bytesIn', 'bytesOut'] as const) assert.equal(body.totals[k], body.data.reduce((s, r) => s + r[k], 0), k);
    });

    test('a chunked upload and a streamed response count the bytes the connection carried', async () => {
      const all = await report(`/v1/admin/usage/requests?${range()}&groupBy=route,user`, admin.accessToken, (b) =>
        assert.ok(find(b.data, 'GET', '/v1/admin/usage/export', admin.id)),
      );
      const upload = find(all.data, 'PATCH', '/v1/users/me/preferences', other.id)!;
      const bodyBytes = Buffer.byteLength(chunked);
      // The body plus the request line, headers and chunk framing; never less than the body.
      assert.ok(upload.bytesIn >= bodyBytes && upload.bytesIn < bodyBytes + 2048, `bytesIn ${upload.bytesIn} for a ${bodyBytes}-byte body`);
      const exported = find(all.data, 'GET', '/v1/admin/usage/export', admin.id)!;
      const csvBytes = Buffer.byteLength(csv);
      assert.ok(csvBytes > 0);
      assert.ok(exported.bytesOut >= csvBytes && exported.bytesOut < csvBytes + 2048, `bytesOut ${exported.bytesOut} for a ${csvBytes}-byte CSV`);
    });

    test('a user sees only their own requests; grouped by day, they are today\'s', async () => {
      const mine = await report(`/v1/usage/requests?${range()}&groupBy=day,route`, u.accessToken, () => {});
      assert.equal(find(mine.data, 'GET', '/v1/users/me')?.requests, 3, "other's GET /v1/users/me is not in u's");
      assert.ok(!find(mine.data, 'GET', '/v1/admin/usage/export'));
      assert.ok(!find(mine.data, 'GET', '/health'));
      assert.ok(mine.data.every((r) => r.day === dayOf(new Date()) || r.day === dayOf(new Date(Date.now() - DAY))));
      const theirs = await report(`/v1/usage/requests?${range()}`, other.accessToken, () => {});
      assert.equal(theirs.data.length, 1, 'grouped by day by default');
      assert.ok(!JSON.stringify(theirs).includes(u.id));
    });

    test('admins see every user, anonymous requests with userId null, and filter by user', async () => {
      const all = await report(`/v1/admin/usage/requests?${range()}&groupBy=user,route`, admin.accessToken, (b) => assert.ok(find(b.data, 'GET', '/health', null)));
      assert.equal(find(all.data, 'GET', '/v1/users/me', u.id)?.requests, 3);
      assert.equal(find(all.data, 'GET', '/v1/users/me', other.id)?.requests, 1);
      assert.ok(find(all.data, 'GET', '/health', null)!.requests >= 1);
      const filtered = await report(`/v1/admin/usage/requests?${range()}&groupBy=user,route&userId=${other.id}`, admin.accessToken, () => {});
      assert.ok(filtered.data.length >= 2);
      assert.ok(filtered.data.every((r) => r.userId === other.id));
      assert.equal(find(filtered.data, 'GET', '/v1/users/me')?.requests, 1);
      assert.ok(find(filtered.data, 'PATCH', '/v1/users/me/preferences'));
    });

    test('across users, by route: the per-route counts agree with the per-user ones', async () => {
      const byUser = await report(`/v1/admin/usage/requests?${range()}&groupBy=route,user`, admin.accessToken, () => {});
      const mine = byUser.data.filter((r) => r.method === 'GET' && r.route === '/v1/users/me');
      const byRoute = await report(`/v1/admin/usage/requests?${range()}&groupBy=route`, admin.accessToken, (b) => assert.ok(find(b.data, 'GET', '/v1/users/me')));
      const route = find(byRoute.data, 'GET', '/v1/users/me')!;
      assert.equal(route.requests, 4, 'u\'s three and other\'s one');
      assert.deepEqual([route.requests, route.bytesIn, route.bytesOut], [mine.reduce((n, r) => n + r.requests, 0), mine.reduce((n, r) => n + r.bytesIn, 0), mine.reduce((n, r) => n + r.bytesOut, 0)]);
      assert.ok(byRoute.data.every((r) => !('userId' in r)), 'not grouped by user');
    });

    test('bad ranges and groups are 400 problems; others may not read the admin report', async () => {
      const today = dayOf(new Date());
      const cases: Array<[string, string, string]> = [
        [`/v1/usage/requests?from=${today}&to=2020-01-01`, u.accessToken, 'invalid_range'],
        ['/v1/usage/requests?from=2020-01-01&to=2021-12-31', u.accessToken, 'range_too_long'],
        ['/v1/usage/requests?from=2026-02-30', u.accessToken, 'validation_failed'],
        // PostgreSQL has no year 0, which JavaScript's Date takes: a 400, not the query's 500.
        ['/v1/usage/requests?from=0000-01-01&to=0000-12-31', u.accessToken, 'validation_failed'],
        ['/v1/usage?from=0000-12-31&to=0001-01-02', u.accessToken, 'validation_failed'],
        ['/v1/usage/requests?groupBy=route,model', u.accessToken, 'validation_failed'],
        ['/v1/usage/requests?groupBy=user', u.accessToken, 'validation_failed'],
        [`/v1/admin/usage/requests?from=${today}&to=2020-01-01`, admin.accessToken, 'invalid_range'],
        ['/v1/admin/usage/requests?userId=nope', admin.accessToken, 'validation_failed'],
      ];
      for (const [path, token, code] of cases) {
        const res = await t.api('GET', path, { token });
        assert.equal(res.status, 400, path);
        assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
        assert.equal(res.body.code, code, path);
      }
      const refused = await t.api('GET', '/v1/admin/usage/requests', { token: u.accessToken });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.code, 'admin_required');
    });

    test('an API key needs the usage:read scope', async () => {
      const newKey = async (scopes: string[]) => (await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: scopes.join() || 'all', scopes } })).body.key as string;
      const without = await t.api('GET', '/v1/usage/requests', { token: await newKey(['chat']) });
      assert.equal(without.status, 403);
      assert.equal(without.body.code, 'insufficient_scope');
      assert.equal((await t.api('GET', '/v1/usage/requests', { token: await newKey(['usage:read']) })).status, 200);
    });
  });
}
