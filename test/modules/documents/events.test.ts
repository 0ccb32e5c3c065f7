import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { observeEvents } from '../../support/bus.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { connectAs, subscribe, type Frame, type WsClient } from '../../support/ws.ts';
import { startReceiver } from '../webhooks/receiver.ts';

/**
 * A save or a presence change is one event on the bus however many readers the document has; the
 * `document:<id>` topic hands it to the readers who follow it, checked when it is delivered.
 */
for (const backend of backends()) {
  describe(`document events: one per change, heard by the readers who follow [${backend}]`, () => {
    let t: TestApp;
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    let owner: TestUser;
    let editor: TestUser;
    let readers: TestUser[];
    let docId: string;
    const sockets: WsClient[] = [];

    const share = async (doc: string, u: TestUser, role: string) =>
      assert.equal((await t.api('POST', `/v1/documents/${doc}/shares`, { token: owner.accessToken, body: { email: u.email, role } })).status, 201);
    const follow = async (app: TestApp, u: TestUser, doc = docId) => {
      const socket = await connectAs(app, u.accessToken);
      sockets.push(socket);
      assert.equal((await subscribe(socket, `document:${doc}`)).type, 'subscribed');
      return socket;
    };
    const version = async (doc = docId) => (await t.api('GET', `/v1/documents/${doc}`, { token: owner.accessToken })).body.version as number;
    const save = async (u: TestUser, body: string, doc = docId) => {
      const res = await t.api('PUT', `/v1/documents/${doc}`, { token: u.accessToken, body: { body, baseVersion: await version(doc) } });
      assert.equal(res.status, 200, res.text);
      return res.body.version as number;
    };
    const savedFrame = (doc: string, v: number) => (f: Frame) => f.type === 'event' && f.event?.type === 'document.saved' && f.event.payload.documentId === doc && f.event.payload.version === v;
    /** Every frame the server sent the socket before this answers has arrived by then: frames on one socket keep their order. */
    const settled = async (socket: WsClient) => {
      socket.send({ type: 'ping' });
      await socket.next((f) => f.type === 'pong');
    };

    before(async () => {
      receiver = await startReceiver({});
      t = await startApp({ backend, env: { WEBHOOKS_ALLOW_PRIVATE: 'true' } });
      [owner, editor, ...readers] = await Promise.all(Array.from({ length: 6 }, () => createUser(t)));
      docId = (await t.api('POST', '/v1/documents', { token: owner.accessToken, body: { title: 'Shared widely', body: 'text' } })).body.id;
      await share(docId, editor, 'editor');
      for (const u of readers) await share(docId, u, 'viewer');
    });
    after(async () => {
      for (const s of sockets) await s.close();
      await t.close();
      await receiver.close();
    });

    test('a save is one document.saved on the bus, naming its author, and every reader who follows the document hears it', async () => {
      const observed = await observeEvents(t.deps.bus, ['document.saved']);
      try {
        const listening = await Promise.all([owner, editor, ...readers].map((u) => follow(t, u)));
        const first = await save(editor, 'first edit');
        const second = await save(owner, 'second edit');
        for (const socket of listening) {
          const heard = await socket.next(savedFrame(docId, first));
          assert.deepEqual(heard.event.payload, { userId: editor.id, documentId: docId, version: first, authorId: editor.id });
          assert.equal(heard.topic, `document:${docId}`);
          await socket.next(savedFrame(docId, second));
        }
        // The second save's event is on the bus once the sockets heard it: by then the first's copies would be too.
        await eventually(() => assert.ok(observed.events.some((e) => e.payload.version === second)));
        const ofThisDocument = observed.events.filter((e) => e.payload.documentId === docId).map((e) => [e.payload.version, e.payload.userId]);
        assert.deepEqual(ofThisDocument, [
          [first, editor.id],
          [second, owner.id],
        ]);
      } finally {
        await observed.close();
      }
    });

    test('a presence change is one document.presence on the bus, an expiry purge one per reader who left', async () => {
      const observed = await observeEvents(t.deps.bus, ['document.presence']);
      try {
        const ownerSocket = await follow(t, owner);
        const arrived = (actorId: string, state: string) => (f: Frame) => f.type === 'event' && f.event?.type === 'document.presence' && f.event.payload.actorId === actorId && f.event.payload.state === state;
        assert.equal((await t.api('POST', `/v1/documents/${docId}/presence`, { token: readers[0]!.accessToken, body: { state: 'viewing' } })).status, 200);
        const heard = await ownerSocket.next(arrived(readers[0]!.id, 'viewing'));
        assert.deepEqual(heard.event.payload, { userId: readers[0]!.id, documentId: docId, actorId: readers[0]!.id, state: 'viewing' });
        await t.api('POST', `/v1/documents/${docId}/presence`, { token: readers[1]!.accessToken, body: { state: 'viewing' } });
        await ownerSocket.next(arrived(readers[1]!.id, 'viewing'));
        await t.deps.db.execute(sql`update document_presence set expires_at = now() - interval '1 second' where document_id = ${docId}`);
        // The schedule may purge them first: either way each is told once.
        await t.services.documentPresence.purge();
        for (const r of readers.slice(0, 2)) await ownerSocket.next(arrived(r.id, 'left'));
        await eventually(() => assert.equal(observed.events.filter((e) => e.payload.documentId === docId && e.payload.state === 'left').length, 2));
        const told = observed.events.filter((e) => e.payload.documentId === docId).map((e) => [e.payload.actorId, e.payload.state]);
        assert.deepEqual(told.sort(), [
          [readers[0]!.id, 'left'],
          [readers[0]!.id, 'viewing'],
          [readers[1]!.id, 'left'],
          [readers[1]!.id, 'viewing'],
        ].sort());
      } finally {
        await observed.close();
      }
    });

    test('a reader removed after subscribing hears nothing more of the document; shared again, they hear it again', async () => {
      const doc = (await t.api('POST', '/v1/documents', { token: owner.accessToken, body: { title: 'Revoked', body: 'text' } })).body.id as string;
      const leaving = await createUser(t);
      await share(doc, leaving, 'viewer');
      const theirs = await follow(t, leaving, doc);
      const ownerSocket = await follow(t, owner, doc);
      assert.equal((await t.api('DELETE', `/v1/documents/${doc}/shares/${leaving.id}`, { token: owner.accessToken })).status, 204);

      const unheard = await save(owner, 'after the removal', doc);
      await ownerSocket.next(savedFrame(doc, unheard));
      await settled(theirs);
      assert.ok(!theirs.frames.some(savedFrame(doc, unheard)), 'a removed reader is not told of saves');

      await share(doc, leaving, 'viewer');
      const heard = await save(owner, 'shared again', doc);
      await theirs.next(savedFrame(doc, heard));
    });

    test("the instance stops listening to a document's channel once its last follower is gone", async () => {
      const doc = (await t.api('POST', '/v1/documents', { token: owner.accessToken, body: { title: 'Followed', body: 'text' } })).body.id as string;
      await share(doc, editor, 'editor');
      const { gateway } = t.services.realtime;
      const before = gateway.stats().followedTopics;
      const a = await follow(t, owner, doc);
      const b = await follow(t, editor, doc);
      assert.equal(gateway.stats().followedTopics, before + 1, 'one channel for both sockets');
      a.send({ type: 'unsubscribe', topic: `document:${doc}` });
      await a.next((f) => f.type === 'unsubscribed');
      assert.equal(gateway.stats().followedTopics, before + 1);
      await b.close();
      await eventually(() => assert.equal(gateway.stats().followedTopics, before));
    });

    test("a save makes a webhook for its author's endpoints only, once", async () => {
      const register = async (u: TestUser) => {
        const res = await t.api('POST', '/v1/webhooks/endpoints', { token: u.accessToken, body: { url: `${receiver.url}/${u.id}`, events: ['document.updated'] } });
        assert.equal(res.status, 201, res.text);
        return res.body.id as string;
      };
      const messages = async (u: TestUser, endpoint: string) => (await t.api('GET', `/v1/webhooks/endpoints/${endpoint}/messages`, { token: u.accessToken })).body.data as unknown[];
      const [byEditor, byOwner, byReader] = [await register(editor), await register(owner), await register(readers[0]!)];
      await save(editor, 'for the webhook');
      await eventually(async () => assert.equal((await messages(editor, byEditor)).length, 1));
      // Made together with the author's, from the same event: had anyone else's been made, it would be there now.
      assert.equal((await messages(owner, byOwner)).length, 0);
      assert.equal((await messages(readers[0]!, byReader)).length, 0);
    });

    test('mentions are checked against the readers they name', async () => {
      const quote = (await t.api('GET', `/v1/documents/${docId}`, { token: editor.accessToken })).body.body.slice(0, 3);
      const ok = await t.api('POST', `/v1/documents/${docId}/comments`, { token: editor.accessToken, body: { body: 'look', quote, mentions: [owner.id, readers[2]!.id] } });
      assert.equal(ok.status, 201, ok.text);
      const stranger = await createUser(t);
      const refused = await t.api('POST', `/v1/documents/${docId}/comments`, { token: editor.accessToken, body: { body: 'look', quote, mentions: [readers[2]!.id, stranger.id] } });
      assert.equal(refused.status, 400);
      assert.equal(refused.body.code, 'mention_not_allowed');
      assert.deepEqual(refused.body.userIds, [stranger.id]);
    });

    if (backend === 'postgres') {
      test('across instances: a save through one reaches followers on both, once each, and the check holds on each', async () => {
        const second = await startApp({ sharedWith: t });
        try {
          const doc = (await t.api('POST', '/v1/documents', { token: owner.accessToken, body: { title: 'Two instances', body: 'text' } })).body.id as string;
          const removed = await createUser(t);
          for (const u of [editor, readers[0]!, removed]) await share(doc, u, u === editor ? 'editor' : 'viewer');
          const onSecond = [await follow(second, readers[0]!, doc), await follow(second, owner, doc)];
          const removedSocket = await follow(second, removed, doc);
          const onFirst = await follow(t, editor, doc);
          assert.equal((await t.api('DELETE', `/v1/documents/${doc}/shares/${removed.id}`, { token: owner.accessToken })).status, 204);

          const first = await save(editor, 'one', doc);
          const later = await save(editor, 'two', doc);
          for (const socket of [...onSecond, onFirst]) {
            const heard = await socket.next(savedFrame(doc, first));
            await socket.next(savedFrame(doc, later));
            assert.ok(!socket.frames.some((f) => f.event?.id === heard.event.id), 'each event once');
          }
          await settled(removedSocket);
          assert.ok(!removedSocket.frames.some((f) => f.event?.type === 'document.saved'), 'a reader removed is not told on the other instance either');
        } finally {
          await second.close();
        }
      });
    }
  });
}
