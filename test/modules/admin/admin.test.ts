import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql, type SQL } from 'drizzle-orm';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, uniqueEmail, type TestUser } from '../../support/factories.ts';

for (const backend of backends()) {
  describe(`admin [${backend}]`, () => {
    let t: TestApp;
    let root: TestUser;
    before(async () => {
      t = await startApp({ backend });
      root = await createUser(t, { admin: true });
    });
    after(() => t.close());

    const ids = (res: { body: { data: Array<{ id: string }> } }) => res.body.data.map((r) => r.id);

    test('non-admins get 403 admin_required; admin API keys are refused too', async () => {
      const u = await createUser(t);
      const res = await t.api('GET', '/v1/admin/users', { token: u.accessToken });
      assert.equal(res.status, 403);
      assert.equal(res.body.code, 'admin_required');
      assert.equal((await t.api('GET', '/v1/admin/users')).status, 401);
      const key = await t.api('POST', '/v1/api-keys', { token: root.accessToken, body: { name: 'admin key' } });
      const viaKey = await t.api('GET', '/v1/admin/users', { token: key.body.key });
      assert.equal(viaKey.status, 403);
      assert.equal(viaKey.body.code, 'api_key_not_allowed');
    });

    test('list users: email-contains and role filters, cursor pages', async () => {
      const tag = `flt${Date.now()}`;
      const a = await createUser(t, { email: uniqueEmail(`${tag}-a`) });
      const b = await createUser(t, { email: uniqueEmail(`${tag}-b`), admin: true });
      const c = await createUser(t, { email: uniqueEmail(`${tag}-c`) });
      const byEmail = await t.api('GET', `/v1/admin/users?email=${tag.toUpperCase()}`, { token: root.accessToken });
      assert.equal(byEmail.status, 200);
      assert.deepEqual(ids(byEmail), [c.id, b.id, a.id]);
      assert.equal(byEmail.body.data[0].email, c.email);
      const admins = await t.api('GET', `/v1/admin/users?email=${tag}&role=admin`, { token: root.accessToken });
      assert.deepEqual(ids(admins), [b.id]);
      const p1 = await t.api('GET', `/v1/admin/users?email=${tag}&limit=2`, { token: root.accessToken });
      assert.deepEqual(ids(p1), [c.id, b.id]);
      const p2 = await t.api('GET', `/v1/admin/users?email=${tag}&limit=2&cursor=${p1.body.nextCursor}`, { token: root.accessToken });
      assert.deepEqual(ids(p2), [a.id]);
      assert.equal(p2.body.nextCursor, null);
      // LIKE wildcards are matched literally.
      assert.deepEqual(ids(await t.api('GET', '/v1/admin/users?email=%25', { token: root.accessToken })), []);
      assert.equal((await t.api('GET', '/v1/admin/users?role=owner', { token: root.accessToken })).status, 400);
    });

    test(backend === 'postgres' ? 'the email search has a trigram index to read (pg_trgm)' : 'the email search scans: the embedded database has no pg_trgm, and its migration passes without it', async () => {
      const rows = async (query: SQL) => ((await t.deps.db.execute(query)) as unknown as { rows: Array<Record<string, string>> }).rows;
      const index = await rows(sql`select indexname from pg_indexes where tablename = 'users' and indexname = 'users_email_trgm_idx'`);
      if (backend !== 'postgres') return assert.deepEqual(index, []);
      assert.equal(index.length, 1);
      // The operator class serves ILIKE '%…%': with sequential scans ruled out, the planner reads the index.
      const plan = await t.deps.db.transaction(async (tx) => {
        await tx.execute(sql`set local enable_seqscan = off`);
        return ((await tx.execute(sql`explain select id from users where email ilike ${'%flt-nobody%'}`)) as unknown as { rows: Array<{ 'QUERY PLAN': string }> }).rows;
      });
      assert.match(plan.map((r) => r['QUERY PLAN']).join('\n'), /users_email_trgm_idx/);
    });

    test('get one user; unknown ids are 404, malformed ids 400', async () => {
      const u = await createUser(t, { name: 'Grace' });
      const one = await t.api('GET', `/v1/admin/users/${u.id}`, { token: root.accessToken });
      assert.equal(one.status, 200);
      assert.equal(one.body.name, 'Grace');
      assert.equal(one.body.passwordHash, undefined);
      const missing = await t.api('GET', '/v1/admin/users/0190a000-0000-7000-8000-000000000000', { token: root.accessToken });
      assert.equal(missing.status, 404);
      assert.equal(missing.body.code, 'user_not_found');
      assert.equal((await t.api('GET', '/v1/admin/users/not-a-uuid', { token: root.accessToken })).status, 400);
    });

    test('disable locks a user out at once (sessions and keys); enable lets them back in', async () => {
      const u = await createUser(t);
      const key = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'k' } });
      const dis = await t.api('POST', `/v1/admin/users/${u.id}/disable`, { token: root.accessToken });
      assert.equal(dis.status, 200);
      assert.equal(dis.body.disabled, true);
      assert.equal((await t.api('GET', '/v1/users/me', { token: u.accessToken })).status, 401);
      const viaKey = await t.api('GET', '/v1/users/me', { token: key.body.key });
      assert.equal(viaKey.status, 401);
      assert.equal(viaKey.body.code, 'account_disabled');
      assert.equal((await t.api('POST', '/v1/auth/refresh', { body: { refreshToken: u.refreshToken } })).status, 401);
      assert.equal((await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } })).status, 403);
      assert.equal((await t.services.sessions.listActive(u.id)).length, 0, 'sessions revoked, not just blocked');
      const [entry] = await t.services.audit.list({ limit: 1, userId: u.id, action: 'user.disabled' });
      assert.equal(entry?.actorId, root.id);

      const en = await t.api('POST', `/v1/admin/users/${u.id}/enable`, { token: root.accessToken });
      assert.equal(en.status, 200);
      assert.equal(en.body.disabled, false);
      assert.equal((await t.api('GET', '/v1/users/me', { token: u.accessToken })).status, 401, 'revoked sessions stay revoked');
      assert.equal((await t.api('GET', '/v1/users/me', { token: key.body.key })).status, 200, 'keys work again');
      assert.equal((await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } })).status, 200);
      const [enabled] = await t.services.audit.list({ limit: 1, userId: u.id, action: 'user.enabled' });
      assert.equal(enabled?.actorId, root.id);
      const unknown = await t.api('POST', '/v1/admin/users/0190a000-0000-7000-8000-000000000000/disable', { token: root.accessToken });
      assert.equal(unknown.status, 404);
    });

    test('role changes take effect on existing sessions; admins cannot demote or disable themselves', async () => {
      const u = await createUser(t);
      assert.equal((await t.api('GET', '/v1/admin/audit', { token: u.accessToken })).status, 403);
      const up = await t.api('PATCH', `/v1/admin/users/${u.id}`, { token: root.accessToken, body: { role: 'admin' } });
      assert.equal(up.status, 200);
      assert.equal(up.body.role, 'admin');
      assert.equal((await t.api('GET', '/v1/admin/audit', { token: u.accessToken })).status, 200, 'same token, new role');
      const [entry] = await t.services.audit.list({ limit: 1, userId: u.id, action: 'user.role_changed' });
      assert.deepEqual(entry?.metadata, { from: 'user', to: 'admin' });
      assert.equal(entry?.actorId, root.id);

      const demoteSelf = await t.api('PATCH', `/v1/admin/users/${u.id}`, { token: u.accessToken, body: { role: 'user' } });
      assert.equal(demoteSelf.status, 409);
      assert.equal(demoteSelf.body.code, 'cannot_demote_self');
      const disableSelf = await t.api('POST', `/v1/admin/users/${u.id}/disable`, { token: u.accessToken });
      assert.equal(disableSelf.status, 409);
      assert.equal(disableSelf.body.code, 'cannot_disable_self');
      assert.equal((await t.api('GET', '/v1/admin/audit', { token: u.accessToken })).status, 200, 'still an admin');

      const down = await t.api('PATCH', `/v1/admin/users/${u.id}`, { token: root.accessToken, body: { role: 'user' } });
      assert.equal(down.body.role, 'user');
      assert.equal((await t.api('GET', '/v1/admin/audit', { token: u.accessToken })).status, 403);
      for (const body of [{ role: 'owner' }, {}, { role: 'user', disabled: true }]) {
        assert.equal((await t.api('PATCH', `/v1/admin/users/${u.id}`, { token: root.accessToken, body })).status, 400, JSON.stringify(body));
      }
    });

    test('two administrators removing each other at once: one acts; the other is no longer an administrator, or no longer signed in', async () => {
      const actions = [
        (a: TestUser, b: TestUser) => t.api('PATCH', `/v1/admin/users/${b.id}`, { token: a.accessToken, body: { role: 'user' } }),
        (a: TestUser, b: TestUser) => t.api('POST', `/v1/admin/users/${b.id}/disable`, { token: a.accessToken }),
      ];
      for (const [first, second] of [[0, 0], [1, 1], [0, 1]] as const) {
        const a = await createUser(t, { admin: true });
        const b = await createUser(t, { admin: true });
        const res = await Promise.all([actions[first]!(a, b), actions[second]!(b, a)]);
        const texts = res.map((r) => r.text).join(' | ');
        assert.equal(res.filter((r) => r.status === 200).length, 1, texts);
        // The other was demoted (403) or disabled (its session ends: 401) first.
        const loser = res.find((r) => r.status !== 200)!;
        assert.ok((loser.status === 403 && loser.body.code === 'admin_required') || (loser.status === 401 && loser.body.code === 'account_disabled'), texts);
        const left = await Promise.all([a, b].map((u) => t.services.users.byId(u.id)));
        assert.equal(left.filter((u) => u!.role === 'admin' && !u!.disabledAt).length, 1, 'one of the two is still an administrator');
      }
    });

    test('audit log: filters by user and action, cursor pages', async () => {
      const u = await createUser(t);
      await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } });
      await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: 'wrong password' } });
      const all = await t.api('GET', `/v1/admin/audit?userId=${u.id}`, { token: root.accessToken });
      assert.equal(all.status, 200);
      assert.deepEqual(
        all.body.data.map((e: { action: string }) => e.action),
        ['user.sign_in_failed', 'user.signed_in', 'user.signed_in', 'user.registered'],
      );
      assert.ok(all.body.data.every((e: { userId: string }) => e.userId === u.id));
      const signIns = await t.api('GET', `/v1/admin/audit?userId=${u.id}&action=user.signed_in&limit=1`, { token: root.accessToken });
      assert.equal(signIns.body.data.length, 1);
      const rest = await t.api('GET', `/v1/admin/audit?userId=${u.id}&action=user.signed_in&cursor=${signIns.body.nextCursor}`, { token: root.accessToken });
      assert.equal(rest.body.data.length, 1);
      assert.notEqual(rest.body.data[0].id, signIns.body.data[0].id);
      assert.equal(rest.body.nextCursor, null);
      assert.equal((await t.api('GET', '/v1/admin/audit?userId=nope', { token: root.accessToken })).status, 400);
    });

    test('mail outbox: filter by recipient, cursor pages', async () => {
      const to = uniqueEmail('mail');
      await t.deps.mailer.send({ to, subject: 'first', text: 'one' });
      await t.deps.mailer.send({ to: uniqueEmail('other'), subject: 'elsewhere', text: 'x' });
      await t.deps.mailer.send({ to, subject: 'second', text: 'two', html: '<p>two</p>' });
      const p1 = await t.api('GET', `/v1/admin/outbox?to=${encodeURIComponent(to)}&limit=1`, { token: root.accessToken });
      assert.equal(p1.status, 200);
      assert.equal(p1.body.data.length, 1);
      assert.equal(p1.body.data[0].subject, 'second');
      assert.equal(p1.body.data[0].html, '<p>two</p>');
      assert.equal(p1.body.data[0].transport, 'outbox');
      assert.ok(p1.body.data[0].sentAt);
      const p2 = await t.api('GET', `/v1/admin/outbox?to=${encodeURIComponent(to)}&limit=1&cursor=${p1.body.nextCursor}`, { token: root.accessToken });
      assert.deepEqual(p2.body.data.map((m: { subject: string }) => m.subject), ['first']);
      assert.equal(p2.body.nextCursor, null);
      const u = await createUser(t);
      const denied = await t.api('GET', '/v1/admin/outbox', { token: u.accessToken });
      assert.equal(denied.status, 403);
      assert.equal(denied.body.code, 'admin_required');
    });
  });
}
