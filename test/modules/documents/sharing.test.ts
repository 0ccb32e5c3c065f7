import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { uploadFile } from '../../support/files.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

type Actor = 'owner' | 'editor' | 'commenter' | 'viewer' | 'linkHolder' | 'stranger';
const ACTORS: Actor[] = ['owner', 'editor', 'commenter', 'viewer', 'linkHolder', 'stranger'];
const RANK: Record<string, number> = { viewer: 0, commenter: 1, editor: 2, owner: 3 };

for (const backend of backends()) {
  describe(`document sharing [${backend}]`, () => {
    let t: TestApp;
    let users: Record<Actor, TestUser>;
    let extra: TestUser;
    let docId: string;
    let linkToken: string;

    before(async () => {
      t = await startApp({ backend });
      const made = await Promise.all(ACTORS.map(() => createUser(t)));
      users = Object.fromEntries(ACTORS.map((a, i) => [a, made[i]!])) as Record<Actor, TestUser>;
      extra = await createUser(t);
      const doc = await t.api('POST', '/v1/documents', { token: users.owner.accessToken, body: { title: 'Plan', body: 'The plan is simple.\n' } });
      docId = doc.body.id;
      for (const role of ['editor', 'commenter', 'viewer'] as const) {
        const res = await t.api('POST', `/v1/documents/${docId}/shares`, { token: users.owner.accessToken, body: { email: users[role].email.toUpperCase(), role } });
        assert.equal(res.status, 201, res.text);
        assert.equal(res.body.role, role);
      }
      const link = await t.api('POST', `/v1/documents/${docId}/links`, { token: users.owner.accessToken, body: { role: 'commenter' } });
      // No body: a viewer link until revoked.
      const plain = await t.api('POST', `/v1/documents/${docId}/links`, { token: users.owner.accessToken });
      assert.equal(plain.status, 201, plain.text);
      assert.equal(plain.body.role, 'viewer');
      assert.equal(plain.body.expiresAt, null);
      assert.equal((await t.api('DELETE', `/v1/documents/${docId}/links/${plain.body.id}`, { token: users.owner.accessToken })).status, 204);
      assert.equal(link.status, 201, link.text);
      linkToken = link.body.token;
    });
    after(() => t.close());

    const api = (who: Actor, method: string, path: string, body?: unknown) => t.api(method, path, { token: users[who].accessToken, body });
    /** Through a share link: its token in X-Share-Token, never in the URL. */
    const viaLink = (who: Actor, token: string, method: string, path = '', body?: unknown) =>
      t.api(method, `/v1/documents/shared${path}`, { token: users[who].accessToken, body, headers: { 'x-share-token': token } });
    const version = async () => (await api('owner', 'GET', `/v1/documents/${docId}`)).body.version as number;
    const upload = async (who: Actor) => (await uploadFile(t, users[who], 'a.txt', 'attached text')).id;

    /** A thread the owner started (resolved first, to be reopened). */
    const thread = async (resolved = false) => {
      const root = await api('owner', 'POST', `/v1/documents/${docId}/comments`, { body: 'thread', quote: 'simple' });
      if (resolved) await api('owner', 'POST', `/v1/documents/${docId}/comments/${root.body.id}/resolve`);
      return root.body.id as string;
    };
    const attachment = async () => (await api('owner', 'POST', `/v1/documents/${docId}/attachments`, { fileId: await upload('owner') })).body.id as string;

    /** Every endpoint on a document, the least role it needs, and how to call it as someone. */
    const endpoints: Array<{ name: string; min: keyof typeof RANK; call: (who: Actor) => Promise<{ status: number; text: string }> }> = [
      { name: 'read', min: 'viewer', call: (w) => api(w, 'GET', `/v1/documents/${docId}`) },
      { name: 'list versions', min: 'viewer', call: (w) => api(w, 'GET', `/v1/documents/${docId}/versions`) },
      { name: 'read a version', min: 'viewer', call: (w) => api(w, 'GET', `/v1/documents/${docId}/versions/1`) },
      { name: 'diff', min: 'viewer', call: (w) => api(w, 'GET', `/v1/documents/${docId}/diff?from=1&to=1`) },
      { name: 'list attachments', min: 'viewer', call: (w) => api(w, 'GET', `/v1/documents/${docId}/attachments`) },
      { name: 'list comments', min: 'viewer', call: (w) => api(w, 'GET', `/v1/documents/${docId}/comments`) },
      { name: 'favorite', min: 'viewer', call: (w) => api(w, 'PUT', `/v1/documents/${docId}/favorite`, { favorite: true }) },
      { name: 'presence: viewing', min: 'viewer', call: (w) => api(w, 'POST', `/v1/documents/${docId}/presence`, { state: 'viewing' }) },
      { name: 'presence: who', min: 'viewer', call: (w) => api(w, 'GET', `/v1/documents/${docId}/presence`) },
      { name: 'comment', min: 'commenter', call: (w) => api(w, 'POST', `/v1/documents/${docId}/comments`, { body: `from ${w}`, quote: 'plan' }) },
      { name: 'presence: leave', min: 'viewer', call: (w) => api(w, 'DELETE', `/v1/documents/${docId}/presence`) },
      { name: 'resolve a thread', min: 'commenter', call: async (w) => api(w, 'POST', `/v1/documents/${docId}/comments/${await thread()}/resolve`) },
      { name: 'reopen a thread', min: 'commenter', call: async (w) => api(w, 'POST', `/v1/documents/${docId}/comments/${await thread(true)}/reopen`) },
      { name: 'save', min: 'editor', call: async (w) => api(w, 'PUT', `/v1/documents/${docId}`, { body: `The plan is simple.\n${w} was here\n`, baseVersion: await version() }) },
      { name: 'tag', min: 'editor', call: (w) => api(w, 'PATCH', `/v1/documents/${docId}`, { tags: ['plans'] }) },
      { name: 'restore', min: 'editor', call: (w) => api(w, 'POST', `/v1/documents/${docId}/versions/1/restore`, {}) },
      { name: 'attach', min: 'editor', call: async (w) => api(w, 'POST', `/v1/documents/${docId}/attachments`, { fileId: await upload(w) }) },
      { name: 'detach', min: 'editor', call: async (w) => api(w, 'DELETE', `/v1/documents/${docId}/attachments/${await attachment()}`) },
      { name: 'presence: editing', min: 'editor', call: (w) => api(w, 'POST', `/v1/documents/${docId}/presence`, { state: 'editing' }) },
      { name: 'make template', min: 'owner', call: (w) => api(w, 'PATCH', `/v1/documents/${docId}`, { isTemplate: false }) },
      { name: 'list shares', min: 'owner', call: (w) => api(w, 'GET', `/v1/documents/${docId}/shares`) },
      { name: 'share', min: 'owner', call: (w) => api(w, 'POST', `/v1/documents/${docId}/shares`, { email: extra.email, role: 'viewer' }) },
      { name: 'change a role', min: 'owner', call: (w) => api(w, 'PATCH', `/v1/documents/${docId}/shares/${extra.id}`, { role: 'viewer' }) },
      { name: 'list links', min: 'owner', call: (w) => api(w, 'GET', `/v1/documents/${docId}/links`) },
      { name: 'create a link', min: 'owner', call: (w) => api(w, 'POST', `/v1/documents/${docId}/links`, { role: 'viewer' }) },
    ];

    test('every endpoint, as each role: allowed from its role up, 403 below it, 404 for a stranger and a link holder', async () => {
      const wrong: string[] = [];
      for (const e of endpoints) {
        for (const who of ACTORS) {
          const res = await e.call(who);
          const expected = who === 'stranger' || who === 'linkHolder' ? 404 : RANK[who]! >= RANK[e.min]! ? 'ok' : 403;
          const ok = expected === 'ok' ? res.status >= 200 && res.status < 300 : res.status === expected;
          if (!ok) wrong.push(`${e.name} as ${who}: ${res.status} (expected ${expected}) ${res.text.slice(0, 200)}`);
        }
      }
      assert.deepEqual(wrong, []);
    });

    test("any reader downloads an attachment through a short-lived signed link, though the file is the owner's; others get 404", async () => {
      const attachmentId = await attachment();
      const content = `/v1/documents/${docId}/attachments/${attachmentId}/content`;
      for (const who of ['owner', 'editor', 'commenter', 'viewer'] as const) {
        const res = await api(who, 'GET', content);
        assert.equal(res.status, 302, `${who}: ${res.text}`);
        const location = res.headers.get('location')!;
        assert.match(location, /^\/v1\/files\/[\w-]+\/content\?expires=\d+&signature=/);
        const bytes = await fetch(t.url + location);
        assert.equal(bytes.status, 200, who);
        assert.equal(await bytes.text(), 'attached text');
      }
      for (const who of ['stranger', 'linkHolder'] as const) assert.equal((await api(who, 'GET', content)).body.code, 'document_not_found', who);
      const unknown = await api('viewer', 'GET', `/v1/documents/${docId}/attachments/0190a5e0-0000-7000-8000-0000000000ff/content`);
      assert.deepEqual([unknown.status, unknown.body.code], [404, 'attachment_not_found']);
      // The file's own route still serves its owner only.
      const fileId = (await api('owner', 'GET', `/v1/documents/${docId}/attachments`)).body.data.find((a: { id: string }) => a.id === attachmentId).fileId;
      assert.equal((await api('viewer', 'GET', `/v1/files/${fileId}/content`)).status, 404);
    });

    test('through the link: its holder reads and comments (a commenter link), nothing more; others without it see nothing', async () => {
      const read = await viaLink('linkHolder', linkToken, 'GET');
      assert.equal(read.status, 200, read.text);
      assert.equal(read.body.id, docId);
      assert.equal(read.body.role, 'commenter');
      assert.equal((await viaLink('linkHolder', linkToken, 'GET', '/comments')).status, 200);
      const comment = await viaLink('linkHolder', linkToken, 'POST', '/comments', { body: 'via link', quote: 'plan' });
      assert.equal(comment.status, 201, comment.text);
      assert.equal(comment.body.authorId, users.linkHolder.id);
      const viewerLink = await api('owner', 'POST', `/v1/documents/${docId}/links`, { role: 'viewer' });
      const viaViewer = await viaLink('linkHolder', viewerLink.body.token, 'POST', '/comments', { body: 'no', quote: 'plan' });
      assert.equal(viaViewer.status, 403);
      assert.equal((await viaLink('linkHolder', `pdl_${'x'.repeat(32)}`, 'GET')).status, 404);
      assert.equal((await t.api('GET', '/v1/documents/shared', { headers: { 'x-share-token': linkToken } })).status, 401, 'signed in only');
      assert.equal((await api('linkHolder', 'GET', '/v1/documents/shared')).status, 400, 'no token');
      // The owner's list shows the link, never its token.
      const links = await api('owner', 'GET', `/v1/documents/${docId}/links`);
      assert.ok(links.body.data.every((l: any) => l.token === undefined && l.last4.length === 4));
      assert.ok(!links.text.includes(linkToken));
    });

    test('a link expires (410) and can be revoked (410); an editor link is refused', async () => {
      const link = await api('owner', 'POST', `/v1/documents/${docId}/links`, { role: 'viewer', expiresIn: 3600 });
      assert.equal(link.status, 201);
      assert.ok(Date.parse(link.body.expiresAt) > Date.now());
      const open = await viaLink('stranger', link.body.token, 'GET');
      assert.equal(open.status, 200);
      // An hour passes.
      await t.deps.db.execute(sql`update document_links set expires_at = now() - interval '1 second' where id = ${link.body.id}`);
      const expired = await viaLink('stranger', link.body.token, 'GET');
      assert.equal(expired.status, 410);
      assert.equal(expired.body.code, 'link_expired');

      const other = await api('owner', 'POST', `/v1/documents/${docId}/links`, {});
      assert.equal(other.body.role, 'viewer');
      assert.equal((await api('owner', 'DELETE', `/v1/documents/${docId}/links/${other.body.id}`)).status, 204);
      const revoked = await viaLink('stranger', other.body.token, 'GET');
      assert.equal(revoked.status, 410);
      assert.equal(revoked.body.code, 'link_revoked');
      // The token is a header, which browser caches do not key on: no answer of this URL is kept for the next link.
      for (const r of [open, expired, revoked]) assert.equal(r.headers.get('cache-control'), 'no-store');
      assert.equal((await api('owner', 'POST', `/v1/documents/${docId}/links`, { role: 'editor' })).status, 400);
      assert.equal((await api('editor', 'DELETE', `/v1/documents/${docId}/links/${link.body.id}`)).status, 403);
    });

    test('sharing with oneself or an unknown email is a 4xx; a removed reader is a stranger again', async () => {
      const self = await api('owner', 'POST', `/v1/documents/${docId}/shares`, { email: users.owner.email, role: 'editor' });
      assert.equal(self.status, 400);
      assert.equal(self.body.code, 'cannot_share_with_self');
      const missing = await api('owner', 'POST', `/v1/documents/${docId}/shares`, { email: 'nobody-here@example.com', role: 'viewer' });
      assert.equal(missing.status, 404);
      assert.equal(missing.body.code, 'user_not_found');
      assert.equal((await api('owner', 'POST', `/v1/documents/${docId}/shares`, { email: 'not an email', role: 'viewer' })).status, 400);
      assert.equal((await api('owner', 'POST', `/v1/documents/${docId}/shares`, { email: extra.email, role: 'owner' })).status, 400);

      const again = await api('owner', 'POST', `/v1/documents/${docId}/shares`, { email: extra.email, role: 'commenter' });
      assert.equal(again.status, 200, 'a new role for an existing reader');
      const shares = await api('owner', 'GET', `/v1/documents/${docId}/shares`);
      assert.deepEqual(shares.body.data.find((s: any) => s.userId === extra.id), { ...shares.body.data.find((s: any) => s.userId === extra.id), email: extra.email, role: 'commenter' });

      assert.equal((await api('viewer', 'DELETE', `/v1/documents/${docId}/shares/${extra.id}`)).status, 403, 'only the owner removes others');
      assert.equal((await api('owner', 'DELETE', `/v1/documents/${docId}/shares/${extra.id}`)).status, 204);
      assert.equal((await t.api('GET', `/v1/documents/${docId}`, { token: extra.accessToken })).status, 404);
      // A reader may leave on their own.
      const leaver = await createUser(t);
      await api('owner', 'POST', `/v1/documents/${docId}/shares`, { email: leaver.email, role: 'viewer' });
      assert.equal((await t.api('DELETE', `/v1/documents/${docId}/shares/${leaver.id}`, { token: leaver.accessToken })).status, 204);
      assert.equal((await t.api('GET', `/v1/documents/${docId}`, { token: leaver.accessToken })).status, 404);
    });

    test('shares are listed oldest first, a page at a time, each with its email; none repeated or skipped', async () => {
      const doc = (await api('owner', 'POST', '/v1/documents', { title: 'Paged', body: 'text' })).body.id as string;
      const readers = await Promise.all(Array.from({ length: 5 }, () => createUser(t)));
      for (const r of readers) assert.equal((await api('owner', 'POST', `/v1/documents/${doc}/shares`, { email: r.email, role: 'viewer' })).status, 201);
      // Two made in the same microsecond, the others a microsecond apart: the order is by time, then by reader.
      const at = ['2030-01-01 00:00:00.000001+00', '2030-01-01 00:00:00.000001+00', '2030-01-01 00:00:00.000002+00', '2030-01-01 00:00:00.000003+00', '2029-12-31 23:59:59.999999+00'];
      for (const [i, r] of readers.entries()) await t.deps.db.execute(sql`update document_shares set created_at = ${at[i]}::timestamptz where document_id = ${doc} and user_id = ${r.id}`);
      const [same1, same2] = [readers[0]!, readers[1]!].sort((a, b) => (a.id < b.id ? -1 : 1));
      const expected = [readers[4]!, same1!, same2!, readers[2]!, readers[3]!];

      const whole = await api('owner', 'GET', `/v1/documents/${doc}/shares`);
      assert.equal(whole.status, 200, whole.text);
      assert.deepEqual(whole.body.data.map((s: any) => [s.userId, s.email]), expected.map((r) => [r.id, r.email]));
      assert.equal(whole.body.nextCursor, null);

      const paged: any[] = [];
      let cursor: string | null = null;
      do {
        const res: any = await api('owner', 'GET', `/v1/documents/${doc}/shares?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(res.status, 200, res.text);
        assert.ok(res.body.data.length <= 2);
        paged.push(...res.body.data);
        cursor = res.body.nextCursor;
      } while (cursor);
      assert.deepEqual(paged, whole.body.data);

      const bad = await api('owner', 'GET', `/v1/documents/${doc}/shares?cursor=${Buffer.from('yesterday').toString('base64url')}`);
      assert.equal(bad.status, 400);
      assert.equal(bad.body.code, 'validation_failed');
    });

    test('the new reader hears of a share on the bus', async () => {
      const heard: unknown[] = [];
      const sub = await t.deps.bus.subscribe('test-shared', ['document.shared'], (e) => {
        heard.push(e.payload);
      });
      const reader = await createUser(t);
      await api('owner', 'POST', `/v1/documents/${docId}/shares`, { email: reader.email, role: 'editor' });
      await eventually(() => assert.deepEqual(heard, [{ userId: reader.id, documentId: docId, role: 'editor', sharedBy: users.owner.id, title: 'Plan' }]));
      await sub.close();
    });

    test('a reader removed, or leaving, is told on the bus as document.unshared (from a job queued with the removal); a removal of no share tells nothing', async () => {
      const heard: unknown[] = [];
      const sub = await t.deps.bus.subscribe('test-unshared', ['document.unshared'], (e) => {
        heard.push(e.payload);
      });
      const [removed, leaver, never] = await Promise.all([createUser(t), createUser(t), createUser(t)]);
      for (const u of [removed, leaver]) assert.equal((await api('owner', 'POST', `/v1/documents/${docId}/shares`, { email: u.email, role: 'viewer' })).status, 201);
      assert.equal((await api('owner', 'DELETE', `/v1/documents/${docId}/shares/${never.id}`)).status, 404);
      assert.equal((await api('owner', 'DELETE', `/v1/documents/${docId}/shares/${removed.id}`)).status, 204);
      assert.equal((await t.api('DELETE', `/v1/documents/${docId}/shares/${leaver.id}`, { token: leaver.accessToken })).status, 204);
      await eventually(() => assert.deepEqual(heard, [{ userId: removed.id, documentId: docId }, { userId: leaver.id, documentId: docId }]), 10_000);
      const byReader = (list: unknown[]) => (list as Array<{ userId: string }>).toSorted((a, b) => (a.userId < b.userId ? -1 : 1));
      const { jobs } = await t.services.jobs.list({ queue: 'documents.unshared', limit: 100 });
      const theirs = jobs.map((j) => j.data as { userId: string }).filter((data) => [removed.id, leaver.id, never.id].includes(data.userId));
      assert.deepEqual(byReader(theirs), byReader(heard), 'each announced by its job');
      await sub.close();
    });

    test('deleting: only the owner; afterwards every reader gets 404', async () => {
      for (const who of ['editor', 'commenter', 'viewer'] as const) assert.equal((await api(who, 'DELETE', `/v1/documents/${docId}`)).status, 403);
      assert.equal((await api('stranger', 'DELETE', `/v1/documents/${docId}`)).status, 404);
      assert.equal((await api('owner', 'DELETE', `/v1/documents/${docId}`)).status, 204);
      for (const who of ACTORS) assert.equal((await api(who, 'GET', `/v1/documents/${docId}`)).status, 404);
      assert.equal((await viaLink('linkHolder', linkToken, 'GET')).status, 404);
    });
  });
}
