import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { connectAs, subscribe, type WsClient } from '../../support/ws.ts';

for (const backend of backends()) {
  describe(`document presence [${backend}]`, () => {
    let t: TestApp;
    let owner: TestUser;
    let editor: TestUser;
    let viewer: TestUser;
    let stranger: TestUser;
    let docId: string;
    const sockets: WsClient[] = [];

    before(async () => {
      t = await startApp({ backend });
      [owner, editor, viewer, stranger] = await Promise.all([createUser(t), createUser(t), createUser(t), createUser(t)]);
      docId = (await t.api('POST', '/v1/documents', { token: owner.accessToken, body: { title: 'Live', body: 'text' } })).body.id;
      for (const [u, role] of [[editor, 'editor'], [viewer, 'viewer']] as const) {
        assert.equal((await t.api('POST', `/v1/documents/${docId}/shares`, { token: owner.accessToken, body: { email: u.email, role } })).status, 201);
      }
    });
    after(async () => {
      for (const s of sockets) await s.close();
      await t.close();
    });

    const follow = async (app: TestApp, u: TestUser) => {
      const socket = await connectAs(app, u.accessToken);
      sockets.push(socket);
      assert.equal((await subscribe(socket, `document:${docId}`)).type, 'subscribed');
      return socket;
    };
    const presenceEvent = (socket: WsClient, actorId: string, state: string) =>
      socket.next((f) => f.type === 'event' && f.event?.type === 'document.presence' && f.event.payload.actorId === actorId && f.event.payload.state === state);
    const beat = (u: TestUser, state: string) => t.api('POST', `/v1/documents/${docId}/presence`, { token: u.accessToken, body: { state } });

    test('two readers: each one\'s arrival and switch reach the other on document:<id>; a stranger cannot subscribe', async () => {
      const ownerSocket = await follow(t, owner);
      const viewerSocket = await follow(t, viewer);
      const refused = await subscribe(await connectAs(t, stranger.accessToken).then((s) => (sockets.push(s), s)), `document:${docId}`);
      assert.equal(refused.type, 'error');
      assert.equal(refused.code, 'not_found');

      const first = await beat(editor, 'editing');
      assert.equal(first.status, 200, first.text);
      assert.deepEqual(first.body.data.map((p: any) => [p.userId, p.state]), [[editor.id, 'editing']]);
      assert.equal(first.body.expiresIn, 60);
      const seen = await presenceEvent(viewerSocket, editor.id, 'editing');
      assert.equal(seen.topic, `document:${docId}`);
      assert.equal(seen.event.payload.documentId, docId);
      await presenceEvent(ownerSocket, editor.id, 'editing');

      await beat(viewer, 'viewing');
      await presenceEvent(ownerSocket, viewer.id, 'viewing');
      // A renewal changes nothing anyone needs to hear; a switch does.
      await beat(viewer, 'viewing');
      await beat(editor, 'viewing');
      const switched = await presenceEvent(ownerSocket, editor.id, 'viewing');
      assert.ok(switched);
      assert.ok(!ownerSocket.frames.some((f) => f.event?.payload?.actorId === viewer.id), 'no event for a plain heartbeat');

      const who = await t.api('GET', `/v1/documents/${docId}/presence`, { token: owner.accessToken });
      assert.deepEqual(who.body.data.map((p: any) => [p.userId, p.state]).sort(), [[editor.id, 'viewing'], [viewer.id, 'viewing']].sort());
      assert.equal((await beat(viewer, 'editing')).status, 403, 'a viewer does not edit');
      assert.equal((await t.api('GET', `/v1/documents/${docId}/presence`, { token: stranger.accessToken })).status, 404);

      assert.equal((await t.api('DELETE', `/v1/documents/${docId}/presence`, { token: viewer.accessToken })).status, 204);
      await presenceEvent(ownerSocket, viewer.id, 'left');
    });

    test('stale presence expires: filtered out at once, then purged with a "left" to the readers', async () => {
      const ownerSocket = await follow(t, owner);
      await beat(viewer, 'viewing');
      await presenceEvent(ownerSocket, viewer.id, 'viewing');
      // The viewer went quiet past their expiry.
      await t.deps.db.execute(sql`update document_presence set expires_at = now() - interval '1 second' where user_id = ${viewer.id}`);
      const who = await t.api('GET', `/v1/documents/${docId}/presence`, { token: owner.accessToken });
      assert.ok(!who.body.data.some((p: any) => p.userId === viewer.id));
      assert.ok((await t.services.documentPresence.purge()) >= 1);
      await presenceEvent(ownerSocket, viewer.id, 'left');
      // Back after expiring: an arrival again.
      await beat(viewer, 'viewing');
      await presenceEvent(ownerSocket, viewer.id, 'viewing');
    });

    test("presence follows a reader's role: no longer an editor, editing is viewing; removed, gone at once", async () => {
      const doc = (await t.api('POST', '/v1/documents', { token: owner.accessToken, body: { title: 'Roles', body: 'text' } })).body.id;
      const helper = await createUser(t);
      assert.equal((await t.api('POST', `/v1/documents/${doc}/shares`, { token: owner.accessToken, body: { email: helper.email, role: 'editor' } })).status, 201);
      const ownerSocket = await connectAs(t, owner.accessToken);
      sockets.push(ownerSocket);
      assert.equal((await subscribe(ownerSocket, `document:${doc}`)).type, 'subscribed');
      const told = (state: string) =>
        ownerSocket.next((f) => f.type === 'event' && f.event?.type === 'document.presence' && f.event.payload.actorId === helper.id && f.event.payload.state === state && f.event.payload.documentId === doc);
      const present = async () => (await t.api('GET', `/v1/documents/${doc}/presence`, { token: owner.accessToken })).body.data.map((p: any) => [p.userId, p.state]);
      assert.equal((await t.api('POST', `/v1/documents/${doc}/presence`, { token: helper.accessToken, body: { state: 'editing' } })).status, 200);
      await told('editing');

      assert.equal((await t.api('PATCH', `/v1/documents/${doc}/shares/${helper.id}`, { token: owner.accessToken, body: { role: 'viewer' } })).status, 200);
      await told('viewing');
      assert.deepEqual(await present(), [[helper.id, 'viewing']]);

      assert.equal((await t.api('DELETE', `/v1/documents/${doc}/shares/${helper.id}`, { token: owner.accessToken })).status, 204);
      await told('left');
      assert.deepEqual(await present(), [], 'not listed until their presence would have expired');
    });

    test('a save reaches every reader on document:<id> with its new version', async () => {
      const viewerSocket = await follow(t, viewer);
      const current = (await t.api('GET', `/v1/documents/${docId}`, { token: editor.accessToken })).body.version;
      const saved = await t.api('PUT', `/v1/documents/${docId}`, { token: editor.accessToken, body: { body: 'text, edited', baseVersion: current } });
      assert.equal(saved.status, 200, saved.text);
      const heard = await viewerSocket.next((f) => f.type === 'event' && f.event?.type === 'document.saved');
      assert.deepEqual(heard.event.payload, { userId: editor.id, documentId: docId, version: current + 1, authorId: editor.id });
      assert.equal(heard.topic, `document:${docId}`);
    });

    if (backend === 'postgres') {
      test('across instances: a heartbeat on one reaches a socket on the other, and both list the same presence', async () => {
        const second = await startApp({ sharedWith: t });
        try {
          const remote = await follow(second, owner);
          await beat(editor, 'editing');
          await presenceEvent(remote, editor.id, 'editing');
          await eventually(async () => {
            const there = await second.api('GET', `/v1/documents/${docId}/presence`, { token: owner.accessToken });
            assert.ok(there.body.data.some((p: any) => p.userId === editor.id && p.state === 'editing'));
          });
        } finally {
          await second.close();
        }
      });
    }
  });
}
