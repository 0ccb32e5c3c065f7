import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { inTransaction } from '../../../src/platform/db/database.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

const BODY = 'Intro.\nThe budget is 10k.\nThe deadline is May.\n';

for (const backend of backends()) {
  describe(`document comments [${backend}]`, () => {
    let t: TestApp;
    let owner: TestUser;
    let editor: TestUser;
    let commenter: TestUser;
    let outsider: TestUser;
    let docId: string;

    before(async () => {
      t = await startApp({ backend });
      [owner, editor, commenter, outsider] = await Promise.all([createUser(t), createUser(t), createUser(t), createUser(t)]);
      docId = (await t.api('POST', '/v1/documents', { token: owner.accessToken, body: { title: 'Budget', body: BODY } })).body.id;
      for (const [u, role] of [[editor, 'editor'], [commenter, 'commenter']] as const) {
        assert.equal((await t.api('POST', `/v1/documents/${docId}/shares`, { token: owner.accessToken, body: { email: u.email, role } })).status, 201);
      }
    });
    after(() => t.close());

    const comment = (who: TestUser, body: Record<string, unknown>) => t.api('POST', `/v1/documents/${docId}/comments`, { token: who.accessToken, body });
    const all = async () => (await t.api('GET', `/v1/documents/${docId}/comments?limit=100`, { token: owner.accessToken })).body.data as any[];

    test('a thread quotes a passage (anchored where it is), replies follow it, mentions name readers only', async () => {
      const heard: any[] = [];
      const sub = await t.deps.bus.subscribe('test-comments', ['comment.created'], (e) => {
        heard.push(e.payload);
      });
      const root = await comment(commenter, { body: 'Is this enough?', quote: 'budget is 10k', mentions: [owner.id, editor.id] });
      assert.equal(root.status, 201, root.text);
      assert.deepEqual([root.body.quote, root.body.anchorStart, root.body.anchorEnd, root.body.depth, root.body.parentId], ['budget is 10k', BODY.indexOf('budget is 10k'), BODY.indexOf('budget is 10k') + 13, 0, null]);
      assert.deepEqual(root.body.mentions, [owner.id, editor.id]);
      const reply = await comment(owner, { body: 'Yes.', parentId: root.body.id, mentions: [commenter.id] });
      assert.equal(reply.status, 201, reply.text);
      assert.deepEqual([reply.body.parentId, reply.body.depth, reply.body.quote], [root.body.id, 1, null]);
      await eventually(() =>
        assert.deepEqual(heard, [
          { userId: commenter.id, documentId: docId, commentId: root.body.id, parentId: null, mentions: [owner.id, editor.id] },
          { userId: owner.id, documentId: docId, commentId: reply.body.id, parentId: root.body.id, mentions: [commenter.id] },
        ]),
      );
      await sub.close();

      const stranger = await comment(commenter, { body: 'cc', quote: 'Intro', mentions: [outsider.id] });
      assert.equal(stranger.status, 400);
      assert.equal(stranger.body.code, 'mention_not_allowed');
      assert.deepEqual(stranger.body.userIds, [outsider.id]);
      const anchored = await comment(editor, { body: 'Exact spot', quote: 'May', anchorStart: BODY.indexOf('May'), anchorEnd: BODY.indexOf('May') + 3 });
      assert.equal(anchored.status, 201, anchored.text);
      assert.equal((await comment(editor, { body: 'x', quote: 'May', anchorStart: 0, anchorEnd: 3 })).body.code, 'anchor_mismatch');
      assert.equal((await comment(editor, { body: 'x', quote: 'not in the text' })).body.code, 'quote_not_found');
      assert.equal((await comment(editor, { body: 'x' })).body.code, 'quote_required');
      assert.equal((await comment(editor, { body: 'x', parentId: root.body.id, quote: 'Intro' })).body.code, 'reply_cannot_quote');
      assert.equal((await comment(editor, { body: '   ', quote: 'Intro' })).status, 400);
      assert.equal((await comment(editor, { body: 'x', parentId: '01890000-0000-7000-8000-000000000000' })).status, 404);

      const listed = await all();
      assert.deepEqual(listed.slice(0, 2).map((c) => c.id), [root.body.id, reply.body.id], 'oldest first');
    });

    test('resolve and reopen a thread (its root); the open and resolved filters keep whole threads', async () => {
      const root = await comment(owner, { body: 'Check the date', quote: 'deadline' });
      const reply = await comment(editor, { body: 'Checked', parentId: root.body.id });
      const resolved = await t.api('POST', `/v1/documents/${docId}/comments/${root.body.id}/resolve`, { token: commenter.accessToken });
      assert.equal(resolved.status, 200, resolved.text);
      assert.ok(resolved.body.resolvedAt);
      assert.equal(resolved.body.resolvedBy, commenter.id);
      const onlyResolved = await t.api('GET', `/v1/documents/${docId}/comments?resolved=true`, { token: owner.accessToken });
      assert.deepEqual(onlyResolved.body.data.map((c: any) => c.id), [root.body.id, reply.body.id]);
      const open = await t.api('GET', `/v1/documents/${docId}/comments?resolved=false&limit=100`, { token: owner.accessToken });
      assert.ok(!open.body.data.some((c: any) => c.id === root.body.id || c.id === reply.body.id));
      const onReply = await t.api('POST', `/v1/documents/${docId}/comments/${reply.body.id}/resolve`, { token: owner.accessToken });
      assert.equal(onReply.status, 400);
      assert.equal(onReply.body.code, 'not_a_thread');
      const reopened = await t.api('POST', `/v1/documents/${docId}/comments/${root.body.id}/reopen`, { token: owner.accessToken });
      assert.equal(reopened.status, 200);
      assert.equal(reopened.body.resolvedAt, null);
    });

    test('edit: the author only; delete: the author or the owner, with its replies', async () => {
      const root = await comment(commenter, { body: 'typo', quote: 'Intro' });
      const reply = await comment(editor, { body: 'reply', parentId: root.body.id });
      assert.equal((await t.api('PATCH', `/v1/documents/${docId}/comments/${root.body.id}`, { token: editor.accessToken, body: { body: 'hijack' } })).status, 403);
      const edited = await t.api('PATCH', `/v1/documents/${docId}/comments/${root.body.id}`, { token: commenter.accessToken, body: { body: 'fixed' } });
      assert.equal(edited.body.body, 'fixed');
      assert.equal((await t.api('DELETE', `/v1/documents/${docId}/comments/${root.body.id}`, { token: editor.accessToken })).status, 403);
      assert.equal((await t.api('DELETE', `/v1/documents/${docId}/comments/${root.body.id}`, { token: owner.accessToken })).status, 204);
      const ids = (await all()).map((c) => c.id);
      assert.ok(!ids.includes(root.body.id) && !ids.includes(reply.body.id));
    });

    test('an edit or a resolve that meets the deletion of its thread is a 404 comment_not_found, never a 500', async () => {
      for (const action of ['edit', 'resolve'] as const) {
        const root = await comment(commenter, { body: 'soon gone', quote: 'Intro' });
        const reply = await comment(commenter, { body: 'a reply', parentId: root.body.id });
        const target = action === 'edit' ? reply.body.id : root.body.id;
        const request = () =>
          action === 'edit'
            ? t.api('PATCH', `/v1/documents/${docId}/comments/${target}`, { token: commenter.accessToken, body: { body: 'edited' } })
            : t.api('POST', `/v1/documents/${docId}/comments/${target}/resolve`, { token: commenter.accessToken });
        let res;
        if (t.backend === 'postgres') {
          // The thread's deletion holds its rows until it commits: the request finds the comment, then its write waits for the deletion.
          let commit!: () => void;
          const held = new Promise<void>((resolve) => (commit = resolve));
          const deleting = inTransaction(t.deps.db, async (tx) => {
            await tx.execute(sql`delete from document_comments where id = ${root.body.id}`);
            await held;
          });
          const pending = request();
          await eventually(async () => {
            const waiting = await t.deps.db.execute(sql`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`);
            assert.ok((waiting as unknown as { rows: Array<{ n: number }> }).rows[0]!.n > 0, 'the request waits for the deletion');
          });
          commit();
          await deleting;
          res = await pending;
        } else {
          // One connection: the deletion and the request take turns, in whichever order they came.
          [res] = await Promise.all([request(), t.api('DELETE', `/v1/documents/${docId}/comments/${root.body.id}`, { token: owner.accessToken })]);
        }
        assert.ok(res.status === 404 || res.status === 200, `${action}: ${res.status} ${res.text}`);
        if (res.status === 404) assert.equal(res.body.code, 'comment_not_found');
        if (t.backend === 'postgres') assert.equal(res.status, 404, res.text);
      }
    });

    test('a 100-deep reply chain: the 21st level is refused with 400, and the 20 levels above stay', async () => {
      const root = await comment(owner, { body: 'level 0', quote: 'Intro' });
      let parent = root.body.id as string;
      const statuses: number[] = [];
      for (let depth = 1; depth <= 100; depth++) {
        const res = await comment(commenter, { body: `level ${depth}`, parentId: parent });
        statuses.push(res.status);
        if (res.status !== 201) {
          assert.equal(res.body.code, 'comment_too_deep');
          assert.equal(res.body.maxDepth, 20);
          continue;
        }
        parent = res.body.id;
      }
      assert.deepEqual(statuses, [...Array(20).fill(201), ...Array(80).fill(400)]);
      const chain = (await all()).filter((c) => c.body.startsWith('level '));
      assert.deepEqual(chain.map((c) => c.depth), Array.from({ length: 21 }, (_, i) => i));
      // A reply higher up the thread is still welcome.
      assert.equal((await comment(commenter, { body: 'sideways', parentId: root.body.id })).status, 201);
    });
  });
}
