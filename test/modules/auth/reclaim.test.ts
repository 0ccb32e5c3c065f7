import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { tokenIn, waitForMails } from '../../support/mail.ts';
import { startMcpServer, type TestMcpServer } from '../../support/mcp-server.ts';
import { startPushService } from '../../support/push-service.ts';
import { startFakeSlack } from '../../support/slack.ts';
import { startFakeTwilio } from '../../support/twilio.ts';
import { startReceiver } from '../webhooks/receiver.ts';

let phones = 0;
const newPhone = () => `+1415556${String(1000 + (++phones % 9000)).padStart(4, '0')}`;

/**
 * Someone signs up with another person's address and, before its owner resets the password through the emailed
 * link, sets up places of their own that the account's data is sent to. The reset (the first proof of the address)
 * must leave none of them; a reset of a verified account leaves them all.
 */
for (const backend of backends()) {
  describe(`a first-proof password reset drops the places the account's data was sent to [${backend}]`, () => {
    let t: TestApp;
    let admin: TestUser;
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    let pushService: Awaited<ReturnType<typeof startPushService>>;
    let slack: Awaited<ReturnType<typeof startFakeSlack>>;
    let twilio: Awaited<ReturnType<typeof startFakeTwilio>>;
    let mcp: TestMcpServer;

    before(async () => {
      [receiver, pushService, slack, twilio, mcp] = await Promise.all([startReceiver({}), startPushService(), startFakeSlack(), startFakeTwilio(), startMcpServer()]);
      // Every receiver is on loopback: private addresses allowed, as in a closed network.
      t = await startApp({
        backend,
        env: {
          WEBHOOKS_ALLOW_PRIVATE: 'true',
          PUSH_ALLOW_PRIVATE: 'true',
          MCP_ALLOW_PRIVATE: 'true',
          SMS_PROVIDER_URL: twilio.url,
          SMS_ACCOUNT_SID: twilio.accountSid,
          SMS_AUTH_TOKEN: twilio.authToken,
          SMS_FROM: '+15005550006',
        },
      });
      admin = await createUser(t, { admin: true });
    });
    after(async () => {
      await t?.close();
      await Promise.all([receiver?.close(), pushService?.close(), slack?.close(), twilio?.close(), mcp?.close()]);
    });

    const api = async (token: string, method: string, path: string, body?: unknown, status = 200) => {
      const res = await t.api(method, path, { token, body });
      assert.equal(res.status, status, `${method} ${path}: ${res.text}`);
      return res.body;
    };
    /** A system message from the operators: a notification on every channel the user turned on, and a webhook. */
    const notify = (userId: string, title: string) => api(admin.accessToken, 'POST', '/v1/notifications', { userId, category: 'system.message', title }, 201);

    /** Everything an account holder can point elsewhere: webhook endpoints (their own and a project's), a browser, Slack, a phone, MCP servers. */
    async function setUpDestinations(u: TestUser, path: string) {
      const projectId = (await api(u.accessToken, 'POST', '/v1/projects', { name: 'Agent' }, 201)).id as string;
      await api(u.accessToken, 'POST', '/v1/webhooks/endpoints', { url: receiver.url + path, events: ['notification.created'] }, 201);
      await api(u.accessToken, 'POST', '/v1/webhooks/endpoints', { url: receiver.url + path + '/project', events: ['conversation.created'], projectId }, 201);
      const browser = pushService.browser();
      await api(u.accessToken, 'POST', '/v1/notifications/push/subscriptions', browser.subscription, 201);
      const hook = slack.newWebhook();
      await api(u.accessToken, 'PUT', '/v1/notifications/slack', { webhookUrl: hook });
      const phone = newPhone();
      await api(u.accessToken, 'POST', '/v1/notifications/sms/phone', { phone });
      await api(u.accessToken, 'POST', '/v1/notifications/sms/phone/verify', { code: twilio.codeFor(phone) });
      await api(u.accessToken, 'POST', '/v1/mcp-servers', { name: 'tools', url: mcp.url }, 201);
      await api(u.accessToken, 'POST', `/v1/projects/${projectId}/mcp-servers`, { name: 'agent_tools', url: mcp.url }, 201);
      const preferences = ['push', 'sms', 'slack'].map((channel) => ({ category: 'system.message', channel, enabled: true }));
      await api(u.accessToken, 'PUT', '/v1/notifications/preferences', { preferences });
      return { projectId, browser, hook, phone };
    }

    /** What the account has pointed elsewhere, as its holder reads it. */
    async function destinations(token: string, projectId: string) {
      const slackRes = await t.api('GET', '/v1/notifications/slack', { token });
      const phoneRes = await t.api('GET', '/v1/notifications/sms/phone', { token });
      return {
        webhookEndpoints: (await api(token, 'GET', '/v1/webhooks/endpoints')).data.length,
        pushSubscriptions: (await api(token, 'GET', '/v1/notifications/push/subscriptions')).data.length,
        slack: slackRes.status === 200,
        phone: phoneRes.status === 200,
        mcpServers: (await api(token, 'GET', '/v1/mcp-servers')).data.length + (await api(token, 'GET', `/v1/projects/${projectId}/mcp-servers`)).data.length,
      };
    }
    const all = { webhookEndpoints: 2, pushSubscriptions: 1, slack: true, phone: true, mcpServers: 2 };
    const none = { webhookEndpoints: 0, pushSubscriptions: 0, slack: false, phone: false, mcpServers: 0 };

    async function resetThroughTheLink(email: string, password: string) {
      assert.equal((await t.api('POST', '/v1/auth/password/forgot', { body: { email } })).status, 202);
      const [mail] = await waitForMails(t, email, /reset your password/i);
      const res = await t.api('POST', '/v1/auth/password/reset', { body: { token: tokenIn(mail!.text, '/reset-password'), password } });
      assert.equal(res.status, 204, res.text);
      const login = await t.api('POST', '/v1/auth/login', { body: { email, password } });
      assert.equal(login.status, 200, login.text);
      return login.body.accessToken as string;
    }

    test("a squatter's webhook endpoints, browser, Slack, phone and MCP servers go with the owner's reset, and get nothing of the owner's next event", async () => {
      const squatter = await createUser(t);
      const { projectId, browser, hook, phone } = await setUpDestinations(squatter, '/squatter');
      assert.deepEqual(await destinations(squatter.accessToken, projectId), all);
      // They work: the squatter's places get the account's events.
      const before = await notify(squatter.id, 'Before the reset');
      assert.deepEqual([before.channels.push.status, before.channels.sms.status, before.channels.slack.status], ['queued', 'queued', 'queued']);
      await eventually(() => assert.equal(receiver.on('/squatter').length, 1), 10_000);

      // The inbox's owner resets the password through the emailed link.
      const owner = await resetThroughTheLink(squatter.email, 'the real owner now');
      await eventually(async () => assert.deepEqual(await destinations(owner, projectId), none), 10_000);

      // The owner's next events: their own new endpoint gets them; nothing goes to the squatter's places.
      await api(owner, 'POST', '/v1/webhooks/endpoints', { url: receiver.url + '/owner', events: ['notification.created', 'conversation.created'] }, 201);
      await api(owner, 'POST', '/v1/conversations', { projectId }, 201);
      const next = await notify(squatter.id, 'After the reset');
      for (const channel of ['push', 'sms', 'slack']) assert.equal(next.channels[channel].status, 'suppressed', channel);
      assert.match(next.channels.push.reason, /^unreachable: /);
      await eventually(() => assert.deepEqual(receiver.on('/owner').map((r) => JSON.parse(r.body).type).sort(), ['conversation.created', 'notification.created']), 10_000);
      assert.equal(receiver.on('/squatter').length, 1, 'nothing more to the squatter');
      assert.deepEqual(receiver.on('/squatter/project'), []);
      assert.ok(!browser.received.some((m) => m.plaintext.includes('After the reset')));
      assert.ok(!slack.postsTo(hook).some((p) => p.text?.includes('After the reset')));
      assert.ok(!twilio.to(phone).some((m) => m.body.includes('After the reset')));

      // The event comes again, late (delivery is at least once): what the owner set up since stays.
      const jobs = (await api(admin.accessToken, 'GET', '/v1/admin/jobs?queue=auth.reclaimed&limit=100')).data as Array<{ data: { userId: string; provedAt: string } }>;
      const announced = jobs.find((j) => j.data.userId === squatter.id)!.data;
      const mine = await setUpDestinations({ ...squatter, accessToken: owner }, '/owner-again');
      await t.deps.bus.publish('user.reclaimed', announced);
      // Another account's reclaim, published after it and seen handled: the late one was handled before it.
      const other = await createUser(t);
      const others = await setUpDestinations(other, '/another');
      await t.deps.bus.publish('user.reclaimed', { userId: other.id, provedAt: new Date().toISOString() });
      await eventually(async () => assert.deepEqual(await destinations(other.accessToken, others.projectId), none), 10_000);
      assert.deepEqual(await destinations(owner, mine.projectId), { ...all, webhookEndpoints: 3, mcpServers: 2 });
    });

    test("the readers and links the squatter gave the account's documents go with the owner's reset; those the owner gives after stay", async () => {
      const squatter = await createUser(t);
      const reader = await createUser(t);
      const doc = await api(squatter.accessToken, 'POST', '/v1/documents', { title: 'Notes', body: 'first draft' }, 201);
      await api(squatter.accessToken, 'POST', `/v1/documents/${doc.id}/shares`, { email: reader.email, role: 'editor' }, 201);
      const { token: link } = await api(squatter.accessToken, 'POST', `/v1/documents/${doc.id}/links`, { role: 'viewer' }, 201);
      const byLink = (token: string) => t.api('GET', '/v1/documents/shared', { token: reader.accessToken, headers: { 'x-share-token': token } }).then((r) => r.status);
      assert.equal((await t.api('GET', `/v1/documents/${doc.id}`, { token: reader.accessToken })).status, 200);
      assert.equal(await byLink(link), 200);

      const owner = await resetThroughTheLink(squatter.email, 'the real owner now');
      await eventually(async () => assert.equal((await t.api('GET', `/v1/documents/${doc.id}`, { token: reader.accessToken })).status, 404), 10_000);
      assert.equal(await byLink(link), 410, 'the link is revoked');
      assert.equal((await api(owner, 'GET', `/v1/documents/${doc.id}`)).body, 'first draft', 'the document itself stays');

      // The owner shares it again; the event comes again, late: the owner's own share stays.
      await api(owner, 'POST', `/v1/documents/${doc.id}/shares`, { email: reader.email, role: 'viewer' }, 201);
      const jobs = (await api(admin.accessToken, 'GET', '/v1/admin/jobs?queue=auth.reclaimed&limit=100')).data as Array<{ data: { userId: string; provedAt: string } }>;
      await t.deps.bus.publish('user.reclaimed', jobs.find((j) => j.data.userId === squatter.id)!.data);
      // Another account's reclaim, published after it and seen handled: the late one was handled before it.
      const other = await createUser(t);
      const theirs = await api(other.accessToken, 'POST', '/v1/documents', { title: 'Theirs' }, 201);
      await api(other.accessToken, 'POST', `/v1/documents/${theirs.id}/shares`, { email: reader.email, role: 'viewer' }, 201);
      await t.deps.bus.publish('user.reclaimed', { userId: other.id, provedAt: new Date().toISOString() });
      await eventually(async () => assert.equal((await t.api('GET', `/v1/documents/${theirs.id}`, { token: reader.accessToken })).status, 404), 10_000);
      assert.equal((await t.api('GET', `/v1/documents/${doc.id}`, { token: reader.accessToken })).status, 200);
    });

    test('a verified account keeps them all through a reset', async () => {
      const u = await createUser(t);
      const [mail] = await waitForMails(t, u.email, /confirm your email/i);
      assert.equal((await t.api('POST', '/v1/auth/verify-email', { body: { token: tokenIn(mail!.text, '/verify-email') } })).status, 204);
      const { projectId } = await setUpDestinations(u, '/verified');
      const token = await resetThroughTheLink(u.email, 'forgot it, reset it');
      // Another account's first-proof reset after it, whose removals are seen done: this one's would have run first.
      const squatter = await createUser(t);
      const theirs = await setUpDestinations(squatter, '/other-squatter');
      const owner = await resetThroughTheLink(squatter.email, 'the real owner now');
      await eventually(async () => assert.deepEqual(await destinations(owner, theirs.projectId), none), 10_000);
      assert.deepEqual(await destinations(token, projectId), all);
      const next = await notify(u.id, 'After a forgotten password');
      assert.deepEqual([next.channels.push.status, next.channels.sms.status, next.channels.slack.status], ['queued', 'queued', 'queued']);
      await eventually(() => assert.equal(receiver.on('/verified').length, 1), 10_000);
    });
  });
}
