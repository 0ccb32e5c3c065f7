import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { chatErasure } from '../../../src/modules/chat/erasure.ts';
import { backends } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { PNG, uploadFile } from '../../support/files.ts';
import { unzip } from '../../support/zip.ts';
import { chatAs, heldAnswer, useChat } from './generation-fixture.ts';

// TRUST_PROXY lets each read come from an address of its own, so the per-address limit counts only where a test means it to.
const ENV = { TRUST_PROXY: 'true', CHAT_MAX_SHARES_PER_CONVERSATION: '3', CHAT_SHARE_READS_PER_MINUTE: '5' };

let ipSeq = 0;
const freshIp = () => (++ipSeq, `10.7.${ipSeq >> 8}.${ipSeq & 255}`);

for (const backend of backends()) {
  describe(`conversations shared by link [${backend}]`, () => {
    const f = useChat(backend, ENV);

    /** Reads a shared conversation as someone not signed in (or as `who`), from a fresh address unless one is given. */
    const read = (token: string | undefined, opts: { who?: TestUser; ip?: string } = {}) =>
      f.t.api('GET', '/v1/shared/conversation', { token: opts.who?.accessToken, headers: { 'x-forwarded-for': opts.ip ?? freshIp(), ...(token === undefined ? {} : { 'x-share-token': token }) } });
    const share = (u: TestUser, conversationId: string, body?: unknown) => f.t.api('POST', `/v1/conversations/${conversationId}/shares`, { token: u.accessToken, body });
    const shared = async (u: TestUser, conversationId: string, body?: unknown) => {
      const res = await share(u, conversationId, body);
      assert.equal(res.status, 201, res.text);
      return res.body as { id: string; token: string; last4: string; leafId: string; createdAt: string; expiresAt: string | null };
    };
    /** A conversation of `u`'s with one exchange. */
    const greeted = async (u: TestUser) => {
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      f.openai.script({ reply: 'Hello.' });
      const asked = await chat.send(c, { content: 'Hi' });
      assert.equal(asked.status, 201, asked.text);
      return c;
    };
    const rowsOf = async (column: 'conversation_id' | 'user_id', id: string) =>
      ((await f.t.deps.db.execute(sql`select count(*)::int as n from conversation_shares where ${sql.identifier(column)} = ${id}::uuid`)) as any).rows[0].n as number;

    test('anyone holding the token, signed in or not, reads the branch up to the leaf as it was: what was said, files by name, no tool steps', async () => {
      const [u, other] = [await createUser(f.t), await createUser(f.t)];
      const chat = chatAs(f.t, u);
      const project = await f.t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'Clock', tools: ['current_time'] } });
      const c = await chat.conversation({ title: 'Time and weather', projectId: project.body.id });
      const png = await uploadFile(f.t, u, 'dot.png', PNG);
      f.openai.script({ toolCalls: [{ name: 'current_time', arguments: '{}' }] }, { reply: 'It is noon.' }, { reply: 'Sunny.' });
      const first = await chat.send(c, { content: [{ type: 'text', text: 'What time is it?' }, { type: 'file', fileId: png.id }] });
      assert.equal(first.status, 201, first.text);
      const second = await chat.send(c, { content: 'And the weather?' });
      assert.equal(second.status, 201, second.text);
      const branch = (await chat.branch(c)).data;
      assert.deepEqual(branch.map((m: any) => m.role), ['user', 'assistant', 'tool', 'assistant', 'user', 'assistant']);

      const link = await shared(u, c);
      assert.match(link.token, /^pcs_[A-Za-z0-9_-]{43}$/);
      assert.deepEqual([link.last4, link.leafId, link.expiresAt], [link.token.slice(-4), second.body.id, null]);
      const stored = (await f.t.deps.db.execute(sql`select token_hash from conversation_shares where id = ${link.id}::uuid`)) as any;
      assert.notEqual(stored.rows[0].token_hash, link.token, 'only a hash of the token is kept');
      const upToFirst = await shared(u, c, { messageId: first.body.id });

      // Later: another answer below, and an edit that makes another branch the current one.
      f.openai.script({ reply: 'Rain tomorrow.' }, { reply: 'Sunny all week.' });
      assert.equal((await chat.send(c, { content: 'Tomorrow?' })).status, 201);
      assert.equal((await chat.send(c, { content: 'And this week?', parentId: first.body.id })).status, 201);

      const expected = {
        title: 'Time and weather',
        sharedAt: link.createdAt,
        messages: [
          { role: 'user', text: 'What time is it?', files: [{ name: 'dot.png', mimeType: 'image/png' }], createdAt: branch[0].createdAt },
          { role: 'assistant', text: 'It is noon.', files: [], createdAt: branch[3].createdAt },
          { role: 'user', text: 'And the weather?', files: [], createdAt: branch[4].createdAt },
          { role: 'assistant', text: 'Sunny.', files: [], createdAt: branch[5].createdAt },
        ],
      };
      const stranger = await read(link.token);
      assert.equal(stranger.status, 200, stranger.text);
      assert.deepEqual(stranger.body, expected);
      for (const hidden of [png.id, 'current_time', 'gpt-4o-mini', 'openai', c, u.id]) assert.ok(!stranger.text.includes(hidden), `${hidden} is not shown`);
      const signedIn = await read(link.token, { who: other });
      assert.deepEqual([signedIn.status, signedIn.body], [200, expected]);

      const partial = await read(upToFirst.token);
      assert.deepEqual(partial.body.messages.map((m: any) => m.text), ['What time is it?', 'It is noon.']);
    });

    test('a revoked link is 410 link_revoked, an expired one 410 link_expired, an unknown one 404; the token goes in the header only', async () => {
      const u = await createUser(f.t);
      const c = await greeted(u);
      const [revoked, expired, live] = [await shared(u, c), await shared(u, c, { expiresIn: 3600 }), await shared(u, c)];
      assert.ok(Math.abs(Date.parse(expired.expiresAt!) - (Date.now() + 3600_000)) < 60_000);

      const revoke = await f.t.api('DELETE', `/v1/conversations/${c}/shares/${revoked.id}`, { token: u.accessToken });
      assert.equal(revoke.status, 204, revoke.text);
      await f.t.deps.db.execute(sql`update conversation_shares set expires_at = now() - interval '1 second' where id = ${expired.id}::uuid`);

      const gone = await read(revoked.token);
      assert.deepEqual([gone.status, gone.body.code], [410, 'link_revoked']);
      assert.match(gone.headers.get('content-type') ?? '', /application\/problem\+json/);
      // The token is not in the URL: no answer may be kept for it (a browser would show this 410 for any other link).
      assert.equal(gone.headers.get('cache-control'), 'no-store');
      const lapsed = await read(expired.token);
      assert.deepEqual([lapsed.status, lapsed.body.code], [410, 'link_expired']);
      const unknown = await read(`pcs_${'x'.repeat(43)}`);
      assert.deepEqual([unknown.status, unknown.body.code], [404, 'link_not_found']);
      assert.equal((await read(undefined)).status, 400, 'no token');
      assert.equal((await read('short')).status, 400, 'not a token');
      assert.equal((await read(live.token)).status, 200);

      // The owner's list: oldest first, a page at a time, revoked and expired ones included; never a token.
      const page1 = await f.t.api('GET', `/v1/conversations/${c}/shares?limit=2`, { token: u.accessToken });
      assert.equal(page1.status, 200, page1.text);
      assert.deepEqual(page1.body.data.map((s: any) => s.id), [revoked.id, expired.id]);
      assert.ok(page1.body.data[0].revokedAt);
      assert.ok(!page1.text.includes(revoked.token) && !('token' in page1.body.data[0]));
      const page2 = await f.t.api('GET', `/v1/conversations/${c}/shares?limit=2&cursor=${page1.body.nextCursor}`, { token: u.accessToken });
      assert.deepEqual([page2.body.data.map((s: any) => s.id), page2.body.nextCursor], [[live.id], null]);
    });

    test("another user cannot share, list or revoke my conversation's links (404); nothing to share, or an answer still being written, is 409", async () => {
      const [u, stranger] = [await createUser(f.t), await createUser(f.t)];
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      f.openai.script({ reply: 'Hello.' });
      const answered = await chat.send(c, { content: 'Hi' });
      const link = await shared(u, c);

      for (const res of [
        await share(stranger, c),
        await f.t.api('GET', `/v1/conversations/${c}/shares`, { token: stranger.accessToken }),
        await f.t.api('DELETE', `/v1/conversations/${c}/shares/${link.id}`, { token: stranger.accessToken }),
      ]) {
        assert.deepEqual([res.status, res.body.code], [404, 'conversation_not_found'], res.text);
      }
      assert.equal((await read(link.token)).status, 200, 'the link still opens');
      assert.equal((await f.t.api('POST', `/v1/conversations/${c}/shares`, { body: {} })).status, 401, 'creating one needs a sign-in');

      const other = await chat.conversation();
      const notHere = await share(u, other, { messageId: answered.body.id });
      assert.deepEqual([notHere.status, notHere.body.code], [404, 'message_not_found']);
      const empty = await share(u, other);
      assert.deepEqual([empty.status, empty.body.code], [409, 'conversation_empty']);
      assert.equal((await share(u, c, { expiresIn: 5 })).status, 400);
      assert.equal((await share(u, c, { messageId: 'nope' })).status, 400);
      const noSuchLink = await f.t.api('DELETE', `/v1/conversations/${c}/shares/${other}`, { token: u.accessToken });
      assert.deepEqual([noSuchLink.status, noSuchLink.body.code], [404, 'link_not_found']);

      const held = await heldAnswer(f, chat, c);
      for (const body of [{}, { messageId: held.assistantMessageId }]) {
        const busy = await share(u, c, body);
        assert.deepEqual([busy.status, busy.body.code], [409, 'answer_in_progress'], JSON.stringify(body));
      }
      await held.stop();
      assert.equal((await share(u, c)).status, 201, 'once it ended, it is shared');
    });

    test('at most CHAT_MAX_SHARES_PER_CONVERSATION (3) links open a conversation, however many are asked for at once; a revoked one frees its place', async () => {
      const u = await createUser(f.t);
      const c = await greeted(u);

      // Many at once, and the service called directly as well, so the creations reach the count together.
      const [raced, direct] = await Promise.all([
        Promise.all(Array.from({ length: 8 }, () => share(u, c))),
        Promise.allSettled(Array.from({ length: 24 }, () => f.t.services.conversationShares.create(u.id, c, {}))),
      ]);
      const made = raced.filter((r) => r.status === 201).length + direct.filter((r) => r.status === 'fulfilled').length;
      assert.equal(made, 3, 'exactly the cap');
      assert.ok(raced.every((r) => r.status === 201 || r.body.code === 'share_limit'));
      assert.ok(direct.every((r) => r.status === 'fulfilled' || (r.reason as { code?: string }).code === 'share_limit'));
      assert.equal(await rowsOf('conversation_id', c), 3);

      const first = (await f.t.api('GET', `/v1/conversations/${c}/shares`, { token: u.accessToken })).body.data[0];
      assert.equal((await f.t.api('DELETE', `/v1/conversations/${c}/shares/${first.id}`, { token: u.accessToken })).status, 204);
      assert.equal((await share(u, c)).status, 201);
      assert.equal((await share(u, c)).status, 409);
    });

    test('deleting the conversation deletes its links; links ended over CHAT_SHARE_HISTORY_DAYS (30) ago are purged by chat.purge-shares', async () => {
      const u = await createUser(f.t);
      const admin = await createUser(f.t, { admin: true });
      const c = await greeted(u);
      const [revokedLongAgo, expiredLongAgo, revokedLately] = [await shared(u, c), await shared(u, c), await shared(u, c)];
      const set = (id: string, column: 'revoked_at' | 'expires_at', daysAgo: number) =>
        f.t.deps.db.execute(sql`update conversation_shares set ${sql.identifier(column)} = now() - make_interval(days => ${daysAgo}) where id = ${id}`);
      await set(revokedLongAgo.id, 'revoked_at', 31);
      await set(expiredLongAgo.id, 'expires_at', 31);
      await set(revokedLately.id, 'revoked_at', 29);
      const live = await shared(u, c);

      const schedules = (await f.t.api('GET', '/v1/admin/schedules', { token: admin.accessToken })).body.data;
      assert.equal(schedules.find((s: { name: string }) => s.name === 'chat.purge-shares')?.cron, '41 4 * * *', 'the daily purge is scheduled');
      assert.ok((await f.t.services.conversationShares.purgeEnded()) >= 2);
      const listed = (await f.t.api('GET', `/v1/conversations/${c}/shares`, { token: u.accessToken })).body.data.map((s: { id: string }) => s.id);
      assert.deepEqual(listed, [revokedLately.id, live.id], 'only the links that ended over 30 days ago are gone');
      assert.deepEqual((await read(revokedLongAgo.token)).body.code, 'link_not_found', 'a purged link is an unknown one');

      assert.equal((await f.t.api('DELETE', `/v1/conversations/${c}`, { token: u.accessToken })).status, 204);
      assert.equal(await rowsOf('conversation_id', c), 0);
      const opened = await read(live.token);
      assert.deepEqual([opened.status, opened.body.code], [404, 'link_not_found']);
    });

    test("a deleted account's links open nothing at once, and its erasure removes them", async () => {
      const u = await createUser(f.t);
      const c = await greeted(u);
      const link = await shared(u, c);
      assert.equal((await read(link.token)).status, 200);

      assert.equal((await f.t.api('DELETE', '/v1/users/me', { token: u.accessToken, body: { password: u.password } })).status, 204);
      assert.equal((await read(link.token)).status, 404);
      await eventually(async () => assert.equal(await rowsOf('user_id', u.id), 0), 20_000);
      // The module's own erasure empties the table (not only the account's row going, through the foreign keys).
      const other = await createUser(f.t);
      const oc = await greeted(other);
      await shared(other, oc);
      assert.equal(await chatErasure(f.t.deps.db).erase(other.id, 10), 1, 'the link goes first, in a batch of its own');
      assert.equal(await rowsOf('user_id', other.id), 0);
    });

    test("the account's export lists each conversation's links, never their tokens or hashes", async () => {
      const u = await createUser(f.t);
      const c = await greeted(u);
      const [revoked, live] = [await shared(u, c), await shared(u, c, { expiresIn: 3600 })];
      assert.equal((await f.t.api('DELETE', `/v1/conversations/${c}/shares/${revoked.id}`, { token: u.accessToken })).status, 204);
      const res = await fetch(`${f.t.url}/v1/users/me/export`, { headers: { authorization: `Bearer ${u.accessToken}` } });
      assert.equal(res.status, 200);
      const entries = await unzip(Buffer.from(await res.arrayBuffer()));
      const exported = JSON.parse(entries.get(`chat/conversations/${c}.json`)!.toString('utf8')) as { shares: Array<Record<string, unknown>> };
      assert.deepEqual(exported.shares.map((s) => [s.id, s.last4, s.revokedAt !== null, s.expiresAt !== null]), [
        [revoked.id, revoked.last4, true, false],
        [live.id, live.last4, false, true],
      ]);
      const text = JSON.stringify(exported.shares);
      assert.ok(!text.includes(live.token) && !text.includes('tokenHash') && !text.includes('token_hash'));
    });

    test('reads are counted by client address (CHAT_SHARE_READS_PER_MINUTE: 5), and a banned address is refused', async () => {
      const u = await createUser(f.t);
      const admin = await createUser(f.t, { admin: true });
      const c = await greeted(u);
      const link = await shared(u, c);

      const ip = freshIp();
      for (let i = 0; i < 5; i++) assert.equal((await read(link.token, { ip })).status, 200, `read ${i + 1}`);
      const limited = await read(link.token, { ip });
      assert.deepEqual([limited.status, limited.body.code], [429, 'rate_limited']);
      assert.equal((await read(link.token)).status, 200, 'another address reads on');

      const banned = freshIp();
      const ban = await f.t.api('POST', '/v1/admin/bans', { token: admin.accessToken, body: { kind: 'ip', subject: banned, seconds: 600, reason: 'testing' } });
      assert.equal(ban.status, 201, ban.text);
      const refused = await read(link.token, { ip: banned });
      assert.deepEqual([refused.status, refused.body.code], [403, 'banned']);
    });
  });
}
