import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { chatAs, startChat, type ChatFixture } from '../chat/generation-fixture.ts';
import { startReceiver, verifies } from './receiver.ts';

const EVENTS = ['conversation.created', 'message.completed'];

for (const backend of backends()) {
  describe(`webhooks for a project [${backend}]`, () => {
    let f: ChatFixture;
    let t: TestApp;
    let receiver: Awaited<ReturnType<typeof startReceiver>>;

    before(async () => {
      receiver = await startReceiver({});
      f = await startChat(backend, { WEBHOOKS_ALLOW_PRIVATE: 'true' });
      t = f.t;
    });
    after(async () => {
      await f.close();
      await receiver.close();
    });

    const project = async (u: TestUser, name: string) => {
      const res = await t.api('POST', '/v1/projects', { token: u.accessToken, body: { name } });
      assert.equal(res.status, 201, res.text);
      return res.body.id as string;
    };
    const register = (u: TestUser, path: string, projectId?: string, events = EVENTS) =>
      t.api('POST', '/v1/webhooks/endpoints', { token: u.accessToken, body: { url: receiver.url + path, events, ...(projectId ? { projectId } : {}) } });
    const bodies = (path: string) => receiver.on(path).map((r) => JSON.parse(r.body) as { type: string; data: Record<string, any> });

    test("a project's endpoint gets only that project's events; its owner's own endpoint gets all of them", async () => {
      const u = await createUser(t);
      const [alpha, beta] = [await project(u, 'Alpha'), await project(u, 'Beta')];
      const p = `/p-${u.id}`;
      const onAlpha = await register(u, `${p}/alpha`, alpha);
      assert.equal(onAlpha.status, 201, onAlpha.text);
      assert.equal(onAlpha.body.projectId, alpha);
      const onBeta = await register(u, `${p}/beta`, beta);
      assert.equal(onBeta.status, 201, onBeta.text);
      const mine = await register(u, `${p}/all`);
      assert.equal(mine.body.projectId, null);

      const chat = chatAs(t, u);
      f.openai.state.defaults = { reply: 'ok' };
      const inAlpha = await chat.conversation({ title: 'In Alpha', projectId: alpha });
      assert.equal((await chat.send(inAlpha, { content: 'Hello Alpha' })).status, 201);
      const loose = await chat.conversation({ title: 'Loose' });
      assert.equal((await chat.send(loose, { content: 'Hello' })).status, 201);

      const all = await eventually(() => {
        const got = bodies(`${p}/all`);
        assert.equal(got.filter((b) => b.type === 'message.completed').length, 2);
        assert.equal(got.filter((b) => b.type === 'conversation.created').length, 2);
        return got;
      }, 10_000);
      assert.deepEqual(new Set(all.map((b) => b.data.conversationId)), new Set([inAlpha, loose]));
      const got = await eventually(() => {
        const a = bodies(`${p}/alpha`);
        assert.equal(a.length, 2);
        return a;
      }, 10_000);
      assert.deepEqual(got.map((b) => b.type).sort(), EVENTS);
      assert.ok(got.every((b) => b.data.conversationId === inAlpha && b.data.projectId === alpha), JSON.stringify(got));
      assert.ok(receiver.on(`${p}/alpha`).every((r) => verifies(onAlpha.body.secret, r)));
      // Every message was made in the same handler call as the owner's own: none for Beta.
      const betaMessages = await t.api('GET', `/v1/webhooks/endpoints/${onBeta.body.id}/messages`, { token: u.accessToken });
      assert.deepEqual(betaMessages.body.data, []);
      assert.equal(receiver.on(`${p}/beta`).length, 0);
    });

    test("events that are about no project do not reach a project's endpoint", async () => {
      const u = await createUser(t);
      const alpha = await project(u, 'Alpha');
      const p = `/n-${u.id}`;
      const onAlpha = await register(u, `${p}/alpha`, alpha, ['notification.created']);
      const mine = await register(u, `${p}/all`, undefined, ['notification.created']);
      const admin = await createUser(t, { admin: true });
      const sent = await t.api('POST', '/v1/notifications', { token: admin.accessToken, body: { userId: u.id, category: 'system.message', title: 'Hi' } });
      assert.equal(sent.status, 201, sent.text);
      await eventually(() => assert.equal(receiver.on(`${p}/all`).length, 1));
      assert.deepEqual((await t.api('GET', `/v1/webhooks/endpoints/${onAlpha.body.id}/messages`, { token: u.accessToken })).body.data, []);
      assert.equal(mine.status, 201);
    });

    test("another user's project, or none, is 404 project_not_found, and nothing is registered", async () => {
      const [owner, stranger] = [await createUser(t), await createUser(t)];
      const theirs = await project(owner, 'Private');
      for (const projectId of [theirs, '01890000-0000-7000-8000-000000000000']) {
        const res = await register(stranger, '/never', projectId);
        assert.equal(res.status, 404, res.text);
        assert.equal(res.body.code, 'project_not_found');
        assert.match(res.headers.get('content-type')!, /problem\+json/);
      }
      assert.deepEqual((await t.api('GET', '/v1/webhooks/endpoints', { token: stranger.accessToken })).body.data, []);
    });
  });
}
