import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { mailsTo, waitForMails } from '../../support/mail.ts';
import { connectAs, subscribe } from '../../support/ws.ts';

for (const backend of backends()) {
  describe(`notifications: inbox, preferences, limits [${backend}]`, () => {
    let t: TestApp;
    let admin: TestUser;

    before(async () => {
      t = await startApp({ backend, env: { NOTIFICATIONS_DAILY_LIMIT: '3', NOTIFICATIONS_CATEGORIES: 'app.order-shipped' } });
      admin = await createUser(t, { admin: true });
    });
    after(() => t.close());

    const send = (body: Record<string, unknown>, token = admin.accessToken) => t.api('POST', '/v1/notifications', { token, body });
    const list = async (u: TestUser, query = '') => (await t.api('GET', `/v1/notifications${query}`, { token: u.accessToken })).body;
    const unread = async (u: TestUser) => (await t.api('GET', '/v1/notifications/unread-count', { token: u.accessToken })).body.count as number;

    test('sent in-app: listed newest first with cursors, counted unread, pushed live to its user only, read and read-all', async () => {
      const [u, other] = await Promise.all([createUser(t), createUser(t)]);
      const mine = await connectAs(t, u.accessToken);
      const theirs = await connectAs(t, other.accessToken);
      assert.equal((await subscribe(mine, 'notifications')).type, 'subscribed');
      assert.equal((await subscribe(theirs, 'notifications')).type, 'subscribed');

      const first = await send({ userId: u.id, category: 'system.message', title: 'Welcome', body: 'Hello there', markdown: '**Hello** there', link: '/start', data: { n: 1 } });
      assert.equal(first.status, 201, first.text);
      assert.equal(first.body.channels.inApp.status, 'sent');
      assert.equal(first.body.priority, 'normal');
      const live = await mine.next((f) => f.type === 'event' && f.event.type === 'notification.created');
      assert.equal(live.event.payload.notification.id, first.body.id);
      assert.equal(live.event.payload.notification.title, 'Welcome');

      const second = (await send({ userId: u.id, category: 'app.order-shipped', title: 'Shipped', body: 'Your order left' })).body;
      const third = (await send({ userId: u.id, category: 'system.message', title: 'Third' })).body;
      const page1 = await list(u, '?limit=2');
      assert.deepEqual(page1.data.map((n: any) => n.id), [third.id, second.id]);
      const page2 = await list(u, `?limit=2&cursor=${page1.nextCursor}`);
      assert.deepEqual(page2.data.map((n: any) => n.id), [first.body.id]);
      assert.equal(page2.nextCursor, null);
      assert.deepEqual(page2.data[0], { ...first.body, channels: page2.data[0].channels });
      assert.equal(await unread(u), 3);

      const read = await t.api('POST', `/v1/notifications/${second.id}/read`, { token: u.accessToken });
      assert.equal(read.status, 200);
      assert.ok(read.body.readAt);
      assert.equal(await unread(u), 2);
      assert.deepEqual((await list(u, '?unread=true')).data.map((n: any) => n.id), [third.id, first.body.id]);
      assert.deepEqual((await t.api('POST', '/v1/notifications/read-all', { token: u.accessToken })).body, { marked: 2 });
      assert.equal(await unread(u), 0);
      await mine.next((f) => f.type === 'event' && f.event.type === 'notification.read' && f.event.payload.ids === null);

      // The other user's socket heard none of it (its own notification arrives first and alone).
      await send({ userId: other.id, category: 'system.message', title: 'Yours' });
      const theirsFirst = await theirs.next((f) => f.type === 'event');
      assert.equal(theirsFirst.event.payload.notification.title, 'Yours');
      assert.equal(await unread(other), 1);
      await Promise.all([mine.close(), theirs.close()]);
    });

    test('without SMTP, the email goes to the outbox with its unsubscribe headers', async () => {
      const u = await createUser(t);
      const n = (await send({ userId: u.id, category: 'system.message', title: 'Outbox copy', body: 'Kept' })).body;
      const [mail] = await waitForMails(t, u.email, /Outbox copy/);
      assert.match(mail!.text, /Kept/);
      assert.match(mail!.headers!['List-Unsubscribe']!, /^<http:\/\/parley\.test\/v1\/notifications\/unsubscribe\?token=/);
      assert.equal(mail!.headers!['List-Unsubscribe-Post'], 'List-Unsubscribe=One-Click');
      await eventually(async () => {
        const email = (await t.api('GET', `/v1/notifications/${n.id}`, { token: u.accessToken })).body.channels.email;
        assert.deepEqual([email.status, email.attempts], ['sent', 1]);
      });
    });

    test("a mail client's one-click unsubscribe as multipart/form-data (RFC 8058 §3.1) turns the category's email off", async () => {
      const u = await createUser(t);
      await send({ userId: u.id, category: 'app.order-shipped', title: 'Multipart unsubscribe' });
      const [mail] = await waitForMails(t, u.email, /Multipart unsubscribe/);
      const link = new URL(/^<([^>]+)>$/.exec(mail!.headers!['List-Unsubscribe']!)![1]!);
      const form = new FormData();
      form.set('List-Unsubscribe', 'One-Click');
      // fetch writes the multipart body and its boundary, as a mail client's HTTP stack does.
      const res = await fetch(t.url + link.pathname + link.search, { method: 'POST', body: form });
      const text = await res.text();
      assert.equal(res.status, 200, text);
      assert.match(text, /app\.order-shipped/);
      const prefs = (await t.api('GET', '/v1/notifications/preferences', { token: u.accessToken })).body.data;
      assert.deepEqual(prefs.find((p: any) => p.category === 'app.order-shipped').channels.email, { enabled: false, default: true, chosen: true, allOff: false });
      // The token decides, not the body: a malformed multipart body with a forged token is still a 400.
      const forged = await t.api('POST', '/v1/notifications/unsubscribe?token=forged-token-value', { raw: '--x\r\nnot a part', headers: { 'content-type': 'multipart/form-data; boundary=x' } });
      assert.equal(forged.status, 400, forged.text);
    });

    test("another user's notification is not found; a deleted one is gone", async () => {
      const [u, other] = await Promise.all([createUser(t), createUser(t)]);
      const n = (await send({ userId: u.id, category: 'system.message', title: 'Private' })).body;
      for (const [method, path] of [
        ['GET', `/v1/notifications/${n.id}`],
        ['POST', `/v1/notifications/${n.id}/read`],
        ['DELETE', `/v1/notifications/${n.id}`],
      ] as const) {
        assert.equal((await t.api(method, path, { token: other.accessToken })).status, 404, `${method} ${path}`);
      }
      assert.equal((await list(other)).data.length, 0);
      assert.equal((await t.api('GET', `/v1/notifications/${n.id}`, { token: u.accessToken })).status, 200);
      const footprint = async () => (await t.services.footprint.of(u.id)).sources.find((s) => s.source === 'notifications');
      assert.deepEqual(await footprint(), { source: 'notifications', items: 1, bytes: Buffer.byteLength('Private') + Buffer.byteLength('{}') });
      assert.equal((await t.api('DELETE', `/v1/notifications/${n.id}`, { token: u.accessToken })).status, 204);
      assert.deepEqual(await footprint(), { source: 'notifications', items: 0, bytes: 0 });
      assert.equal((await t.api('GET', `/v1/notifications/${n.id}`, { token: u.accessToken })).status, 404);
      assert.equal((await t.api('GET', `/v1/notifications/${randomUUID()}`, { token: u.accessToken })).status, 404);
    });

    test('sending: administrators, and their keys only with the notifications:send scope', async () => {
      const u = await createUser(t);
      const body = { userId: u.id, category: 'system.message', title: 'Hi' };
      const res = await send(body, u.accessToken);
      assert.equal(res.status, 403);
      assert.equal(res.body.code, 'admin_required');
      const key = async (owner: TestUser, scopes?: string[]) => (await t.api('POST', '/v1/api-keys', { token: owner.accessToken, body: { name: 'k', scopes } })).body.key as string;
      assert.equal((await send(body, await key(admin, ['notifications:send']))).status, 201);
      assert.equal((await send(body, await key(admin, ['notifications']))).status, 403);
      assert.equal((await send(body, await key(admin))).status, 403, 'a key without scopes is not a sending key');
      assert.equal((await send(body, await key(u, ['notifications:send']))).status, 403);
      assert.equal((await t.api('POST', '/v1/notifications', { body })).status, 401);
      // A user's own key with the notifications scope reads the inbox.
      const reader = await key(u, ['notifications']);
      assert.equal((await t.api('GET', '/v1/notifications', { token: reader })).body.data.length, 1);
    });

    test('a retried send (Idempotency-Key) and a redelivered event (same source) notify once', async () => {
      const u = await createUser(t);
      const body = { userId: u.id, category: 'system.message', title: 'Once' };
      const headers = { 'idempotency-key': `send-once-${u.id}` };
      const first = await t.api('POST', '/v1/notifications', { token: admin.accessToken, body, headers });
      const retry = await t.api('POST', '/v1/notifications', { token: admin.accessToken, body, headers });
      assert.equal(retry.status, 201);
      assert.equal(retry.body.id, first.body.id);
      const sourceKey = randomUUID();
      const a = await t.services.notifications.send({ ...body, title: 'From an event', sourceKey });
      const b = await t.services.notifications.send({ ...body, title: 'From an event', sourceKey });
      assert.equal(a.id, b.id);
      assert.equal(await unread(u), 2);
    });

    test('malformed input is a 400 problem', async () => {
      const u = await createUser(t);
      const bad: Record<string, unknown>[] = [
        {},
        { userId: u.id, category: 'system.message' },
        { userId: 'nope', category: 'system.message', title: 'x' },
        { userId: u.id, category: 'no.such-category', title: 'x' },
        { userId: u.id, category: 'system.message', title: 'x', priority: 'urgent' },
        { userId: u.id, category: 'system.message', title: 'x', link: 'javascript:alert(1)' },
        { userId: u.id, category: 'system.message', title: 'x', extra: true },
      ];
      for (const body of bad) {
        const res = await send(body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.match(res.headers.get('content-type') ?? '', /problem\+json/);
      }
      assert.equal((await t.api('POST', '/v1/notifications', { token: admin.accessToken, raw: '{"userId":' })).status, 400);
      assert.equal((await send({ userId: randomUUID(), category: 'system.message', title: 'x' })).status, 404);
      assert.equal((await t.api('GET', '/v1/notifications?cursor=!!', { token: u.accessToken })).status, 400);
      assert.equal((await t.api('GET', '/v1/notifications/not-a-uuid', { token: u.accessToken })).status, 400);
      for (const body of [{}, { preferences: [] }, { preferences: [{ category: 'system.message', channel: 'sms', enabled: false }] }, { preferences: [{ category: 'nope.x', channel: 'email', enabled: false }] }]) {
        assert.equal((await t.api('PUT', '/v1/notifications/preferences', { token: u.accessToken, body })).status, 400, JSON.stringify(body));
      }
      assert.equal((await t.api('POST', '/v1/notifications/unsubscribe?token=forged-token-value', {})).status, 400);
    });

    test('a path link that a browser would read as another host, or a URL with no host or one that does not parse, is refused like any bad link; paths and URLs pass', async () => {
      const u = await createUser(t);
      for (const link of ['/\\evil.test/phish', '//evil.test/phish', '/\\\\evil.test', '/\t/evil.test', '/\n/evil.test', '/\r\\evil.test', '/x\u2028y', 'https:\\\\evil.test', 'javascript:alert(1)']) {
        const res = await send({ userId: u.id, category: 'system.message', title: 'x', link });
        assert.equal(res.status, 400, JSON.stringify(link));
        assert.equal(res.body.code, 'validation_failed');
        assert.ok(res.body.errors.every((e: { path: string }) => e.path === '/link'), JSON.stringify(res.body.errors));
      }
      for (const link of ['https://', 'http://', 'https://exa mple.com/', 'https://[::1/x', 'https://example.com:99999/']) {
        const res = await send({ userId: u.id, category: 'system.message', title: 'x', link });
        assert.equal(res.status, 400, `${JSON.stringify(link)}: ${res.text}`);
        assert.deepEqual(res.body.errors.map((e: { path: string }) => e.path), ['/link']);
      }
      for (const link of ['/documents/d1#comment-2', '/a/\\b', '/%5C%5Cevil.test', 'https://example.com/a b?c=d']) {
        const res = await send({ userId: u.id, category: 'app.order-shipped', title: 'x', link });
        assert.equal(res.status, 201, `${JSON.stringify(link)}: ${res.text}`);
        assert.equal(res.body.link, link);
      }
    });

    test("a shared document's email opens it under PUBLIC_URL (HTML and text); its subject and body drop the title's direction overrides", async () => {
      const [owner, reader] = await Promise.all([createUser(t), createUser(t)]);
      // A title given with overrides is refused; one taken from the body's first line drops them, and so does the email.
      const doc = (await t.api('POST', '/v1/documents', { token: owner.accessToken, body: { body: 'Invoice \u202Efdp.exe\u202C\nPay it.' } })).body;
      assert.equal(doc.title, 'Invoice fdp.exe');
      assert.equal((await t.api('POST', `/v1/documents/${doc.id}/shares`, { token: owner.accessToken, body: { email: reader.email, role: 'viewer' } })).status, 201);
      const [mail] = await waitForMails(t, reader.email, /was shared with you/);
      assert.equal(mail!.subject, '"Invoice fdp.exe" was shared with you');
      assert.match(mail!.html ?? '', new RegExp(`<a href="http://parley\\.test/documents/${doc.id}"[^>]*>Open</a>`));
      assert.match(mail!.text, new RegExp(`^http://parley\\.test/documents/${doc.id}$`, 'm'));
      assert.doesNotMatch(mail!.text, /^\/documents\//m, 'no bare path');
      assert.ok(mail!.text.includes('"Invoice fdp.exe"') && !/[\u202A-\u202E]/.test(mail!.text + (mail!.html ?? '')), 'the body quotes it without its overrides too');

      // Any title: separators and control characters become a space (only CR and LF did).
      const u = await createUser(t);
      assert.equal((await send({ userId: u.id, category: 'system.message', title: 'Subject\u2028line\u0085sep\u000bvt\u2029\u2067end\u2069' })).status, 201);
      const [other] = await waitForMails(t, u.email, /^Subject/);
      assert.equal(other!.subject, 'Subject line sep vt end');
    });

    test('preferences per category × channel: off suppresses that channel, with the reason on the notification', async () => {
      const u = await createUser(t);
      const cats = (await t.api('GET', '/v1/notifications/categories', { token: u.accessToken })).body.data.map((c: any) => c.name);
      for (const name of ['system.message', 'document.shared', 'comment.mention', 'app.order-shipped']) assert.ok(cats.includes(name), name);

      const put = await t.api('PUT', '/v1/notifications/preferences', { token: u.accessToken, body: { preferences: [{ category: 'app.order-shipped', channel: 'inApp', enabled: false }] } });
      assert.equal(put.status, 200, put.text);
      const shipped = put.body.data.find((p: any) => p.category === 'app.order-shipped');
      assert.deepEqual(shipped.channels.inApp, { enabled: false, default: true, chosen: true, allOff: false });
      assert.equal(put.body.data.find((p: any) => p.category === 'system.message').channels.inApp.chosen, false);

      const off = (await send({ userId: u.id, category: 'app.order-shipped', title: 'Hidden' })).body;
      assert.deepEqual([off.channels.inApp.status, off.channels.inApp.reason], ['suppressed', 'preference']);
      const on = (await send({ userId: u.id, category: 'system.message', title: 'Shown' })).body;
      assert.equal(on.channels.inApp.status, 'sent');
      assert.deepEqual((await list(u)).data.map((n: any) => n.id), [on.id]);

      // The all-categories switch in the user's preferences wins over a category's default.
      await t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, body: { notifications: { inApp: false } } });
      const muted = (await send({ userId: u.id, category: 'system.message', title: 'Muted' })).body;
      assert.deepEqual([muted.channels.inApp.status, muted.channels.inApp.reason], ['suppressed', 'preference']);
      assert.equal((await t.api('GET', '/v1/notifications/preferences', { token: u.accessToken })).body.data[0].channels.inApp.allOff, true);
    });

    test('a category and channel named twice in one PUT is a 400 naming the repeat, and nothing is stored', async () => {
      const u = await createUser(t);
      const res = await t.api('PUT', '/v1/notifications/preferences', {
        token: u.accessToken,
        body: {
          preferences: [
            { category: 'app.order-shipped', channel: 'inApp', enabled: false },
            { category: 'system.message', channel: 'email', enabled: false },
            { category: 'system.message', channel: 'email', enabled: true },
          ],
        },
      });
      assert.equal(res.status, 400, res.text);
      assert.match(res.headers.get('content-type') ?? '', /problem\+json/);
      assert.equal(res.body.code, 'validation_failed');
      assert.deepEqual(res.body.errors.map((e: any) => e.path), ['/preferences/2']);
      assert.match(res.body.detail, /\/preferences\/2 .*system\.message × email/);
      const prefs = (await t.api('GET', '/v1/notifications/preferences', { token: u.accessToken })).body.data;
      assert.equal(prefs.find((p: any) => p.category === 'system.message').channels.email.chosen, false);
      assert.equal(prefs.find((p: any) => p.category === 'app.order-shipped').channels.inApp.chosen, false, 'not even the pairs named once');
      // The same category on two channels is two pairs.
      const ok = await t.api('PUT', '/v1/notifications/preferences', {
        token: u.accessToken,
        body: { preferences: [{ category: 'system.message', channel: 'email', enabled: false }, { category: 'system.message', channel: 'inApp', enabled: false }] },
      });
      assert.equal(ok.status, 200, ok.text);
    });

    test('the daily limit per category suppresses the excess; critical passes it', async () => {
      const u = await createUser(t);
      const statuses: string[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await send({ userId: u.id, category: 'system.message', title: `n${i}` })).body.channels.inApp.status);
      assert.deepEqual(statuses, ['sent', 'sent', 'sent', 'suppressed']);
      const over = (await send({ userId: u.id, category: 'system.message', title: 'over' })).body;
      assert.deepEqual([over.channels.inApp.reason, over.channels.email.status, over.channels.email.reason], ['daily_limit', 'suppressed', 'daily_limit']);
      const critical = (await send({ userId: u.id, category: 'system.message', title: 'Breach', priority: 'critical' })).body;
      assert.equal(critical.channels.inApp.status, 'sent');
      // Another category has its own count.
      assert.equal((await send({ userId: u.id, category: 'app.order-shipped', title: 'other' })).body.channels.inApp.status, 'sent');
      assert.equal(await unread(u), 5);
      // Over the limit, the email that would have been queued never is: once every email under it went out, none
      // went for the suppressed ones, whose deliveries stay suppressed.
      await waitForMails(t, u.email, /^(n\d|Breach|other)$/, 5);
      assert.deepEqual((await mailsTo(t, u.email)).map((m) => m.subject).filter((s) => /n3|over/.test(s)), []);
      assert.equal((await t.api('GET', `/v1/notifications/${over.id}`, { token: u.accessToken })).body.channels.email.status, 'suppressed');
    });

    test('a document shared with a user, and a mention in a comment, become notifications', async () => {
      const [owner, reader] = await Promise.all([createUser(t), createUser(t)]);
      const doc = (await t.api('POST', '/v1/documents', { token: owner.accessToken, body: { title: 'Plan', body: 'The budget is 10k.' } })).body;
      assert.equal((await t.api('POST', `/v1/documents/${doc.id}/shares`, { token: owner.accessToken, body: { email: reader.email, role: 'commenter' } })).status, 201);
      const shared = await eventually(async () => {
        const found = (await list(reader)).data.find((n: any) => n.category === 'document.shared');
        assert.ok(found, 'no document.shared notification yet');
        return found;
      });
      assert.match(shared.title, /Plan/);
      assert.equal(shared.link, `/documents/${doc.id}`);
      assert.deepEqual(shared.data, { documentId: doc.id, role: 'commenter', sharedBy: owner.id });

      const c = await t.api('POST', `/v1/documents/${doc.id}/comments`, { token: reader.accessToken, body: { body: 'See this', quote: 'budget', mentions: [owner.id] } });
      assert.equal(c.status, 201, c.text);
      const mention = await eventually(async () => {
        const found = (await list(owner)).data.find((n: any) => n.category === 'comment.mention');
        assert.ok(found, 'no comment.mention notification yet');
        return found;
      });
      assert.deepEqual(mention.data, { documentId: doc.id, commentId: c.body.id, authorId: reader.id });
      assert.equal((await list(reader)).data.filter((n: any) => n.category === 'comment.mention').length, 0, 'the author is not told of their own comment');
    });
  });
}
