import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Undeliverable } from '../../../src/modules/notifications/channels/channel.ts';
import { postIncomingWebhook } from '../../../src/modules/notifications/channels/slack-api.ts';
import { slackMessage } from '../../../src/modules/notifications/channels/slack.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { startFakeSlack } from '../../support/slack.ts';
import { startDns } from '../../support/dns.ts';

for (const backend of backends()) {
  describe(`notifications: Slack by incoming webhook and by bot [${backend}]`, () => {
    let t: TestApp;
    let admin: TestUser;
    let slack: Awaited<ReturnType<typeof startFakeSlack>>;

    before(async () => {
      slack = await startFakeSlack();
      // The local Slack is on loopback: private addresses allowed, as in a closed network.
      t = await startApp({ backend, env: { SLACK_BOT_TOKEN: slack.botToken, SLACK_API_URL: slack.apiUrl, WEBHOOKS_ALLOW_PRIVATE: 'true' } });
      admin = await createUser(t, { admin: true });
    });
    after(async () => {
      await t.close();
      await slack.close();
    });

    const api = (u: TestUser, method: string, path: string, body?: unknown) => t.api(method, path, { token: u.accessToken, body });
    const send = async (body: Record<string, unknown>) => {
      const res = await t.api('POST', '/v1/notifications', { token: admin.accessToken, body });
      assert.equal(res.status, 201, res.text);
      return res.body;
    };
    const slackStatus = async (u: TestUser, id: string) => (await api(u, 'GET', `/v1/notifications/${id}`)).body.channels.slack;
    const settled = (u: TestUser, id: string, status: string, attempts: number) =>
      eventually(async () => {
        const s = await slackStatus(u, id);
        assert.deepEqual([s.status, s.attempts], [status, attempts], JSON.stringify(s));
        return s;
      }, 15_000);
    /** A user with Slack on for system.message, sending to `destination`. */
    const slackUser = async (destination: { webhookUrl: string } | { channel: string }) => {
      const u = await createUser(t);
      const res = await api(u, 'PUT', '/v1/notifications/slack', destination);
      assert.equal(res.status, 200, res.text);
      assert.equal((await api(u, 'PUT', '/v1/notifications/preferences', { preferences: [{ category: 'system.message', channel: 'slack', enabled: true }] })).status, 200);
      return u;
    };

    test('an incoming webhook gets the notification (the URL is shown masked); a 429 is retried after its Retry-After', async () => {
      const hook = slack.newWebhook();
      const u = await slackUser({ webhookUrl: hook });
      const shown = (await api(u, 'GET', '/v1/notifications/slack')).body;
      assert.equal(shown.kind, 'webhook');
      assert.equal(shown.webhookUrl, `${new URL(hook).origin}/…${hook.slice(-4)}`);
      assert.ok(!JSON.stringify(shown).includes(new URL(hook).pathname.split('/')[4]!), 'the secret part of the URL is not shown');

      const n = await send({ userId: u.id, category: 'system.message', title: 'Build <broken> & fixed', body: 'See the log.', link: '/builds/7' });
      assert.equal(n.channels.slack.status, 'queued');
      await settled(u, n.id, 'sent', 1);
      const [post] = slack.postsTo(hook);
      assert.equal(post!.text, '*Build &lt;broken&gt; &amp; fixed*\nSee the log.\n<http://parley.test/builds/7|Open>');
      assert.equal((post!.blocks as any[])[0].type, 'section');
      assert.match(JSON.stringify(post!.blocks), /\/v1\/notifications\/unsubscribe\?token=/, 'a link that stops this category on Slack');

      slack.state.rateLimited = 1;
      const again = await send({ userId: u.id, category: 'system.message', title: 'After a 429' });
      await settled(u, again.id, 'sent', 2);
      assert.equal(slack.postsTo(hook).filter((p) => p.text?.startsWith('*After a 429*')).length, 1);
    });

    test('the title arrives as one line, without direction overrides', async () => {
      const hook = slack.newWebhook();
      const u = await slackUser({ webhookUrl: hook });
      const n = await send({ userId: u.id, category: 'system.message', title: 'Invoice \u202Efdp.exe\u202C\u2028sent\u0085today', body: 'b' });
      await settled(u, n.id, 'sent', 1);
      assert.equal(slack.postsTo(hook)[0]!.text, '*Invoice fdp.exe sent today*\nb');
    });

    test('bot mode posts with chat.postMessage to the member id; ratelimited is retried, channel_not_found fails at once', async () => {
      const u = await slackUser({ channel: 'U0123ABCD' });
      const shown = (await api(u, 'GET', '/v1/notifications/slack')).body;
      assert.deepEqual([shown.kind, shown.channel, shown.webhookUrl], ['channel', 'U0123ABCD', null]);
      slack.state.rateLimited = 1;
      const n = await send({ userId: u.id, category: 'system.message', title: 'Via the bot' });
      await settled(u, n.id, 'sent', 2);
      assert.deepEqual(slack.state.messages.filter((m) => m.text?.startsWith('*Via the bot*')).map((m) => m.channel), ['U0123ABCD']);

      const lost = await slackUser({ channel: 'C0NOTTHERE' });
      const failed = await settled(lost, (await send({ userId: lost.id, category: 'system.message', title: 'Nowhere' })).id, 'failed', 1);
      assert.match(failed.reason, /channel_not_found/);
    });

    test('a webhook Slack says is gone (404 no_service) fails the delivery and is removed; then Slack is unreachable', async () => {
      const hook = slack.newWebhook();
      const u = await slackUser({ webhookUrl: hook });
      slack.removeWebhook(hook);
      const n = await send({ userId: u.id, category: 'system.message', title: 'Into the void' });
      const s = await settled(u, n.id, 'failed', 1);
      assert.match(s.reason, /404.*no_service/);
      const gone = await api(u, 'GET', '/v1/notifications/slack');
      assert.deepEqual([gone.status, gone.body.code], [404, 'slack_destination_not_found']);
      const next = await send({ userId: u.id, category: 'system.message', title: 'After removal' });
      assert.deepEqual([next.channels.slack.status, next.channels.slack.reason], ['suppressed', 'unreachable: no_slack_destination']);
    });

    test('destinations: bad ids and URLs are 400 problems, each user has their own, DELETE forgets it; Slack is off unless a category turns it on', async () => {
      const u = await createUser(t);
      for (const body of [{}, { channel: 'general' }, { channel: '#general' }, { webhookUrl: 'not a url' }, { webhookUrl: 'ftp://hooks.slack.test/x' }, { webhookUrl: 'https://u:p@hooks.slack.test/x' }, { webhookUrl: slack.newWebhook(), channel: 'U0123ABCD' }]) {
        const res = await api(u, 'PUT', '/v1/notifications/slack', body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.match(res.headers.get('content-type')!, /problem\+json/);
      }
      assert.equal((await api(u, 'GET', '/v1/notifications/slack')).status, 404);
      const other = await slackUser({ channel: 'C0123ABCD' });
      assert.equal((await api(u, 'PUT', '/v1/notifications/slack', { channel: 'U0123ABCD' })).status, 200);
      assert.equal((await api(u, 'DELETE', '/v1/notifications/slack')).status, 204);
      assert.equal((await api(u, 'GET', '/v1/notifications/slack')).status, 404);
      assert.equal((await api(other, 'GET', '/v1/notifications/slack')).body.channel, 'C0123ABCD', "another user's destination is untouched");

      const byDefault = await send({ userId: other.id, category: 'comment.mention', title: 'Mentioned' });
      assert.deepEqual([byDefault.channels.slack.status, byDefault.channels.slack.reason], ['suppressed', 'preference']);
      assert.equal((await api(u, 'PUT', '/v1/notifications/preferences', { preferences: [{ category: 'system.message', channel: 'slack', enabled: true }] })).status, 200);
      const none = await send({ userId: u.id, category: 'system.message', title: 'No destination' });
      assert.deepEqual([none.channels.slack.status, none.channels.slack.reason], ['suppressed', 'unreachable: no_slack_destination']);
    });
  });

  describe(`notifications: Slack without a bot token or private addresses, and no SMS [${backend}]`, () => {
    let t: TestApp;
    let u: TestUser;

    before(async () => {
      t = await startApp({ backend });
      u = await createUser(t);
    });
    after(() => t.close());

    test('a webhook URL reaching a private address, or plain http, is refused at registration; member ids need the bot token', async () => {
      for (const [webhookUrl, code] of [
        ['https://127.0.0.1/services/T0/B0/x', 'webhook_url_private'],
        ['https://10.1.2.3/services/T0/B0/x', 'webhook_url_private'],
        ['https://[::ffff:192.168.0.1]/services/T0/B0/x', 'webhook_url_private'],
        ['https://localhost/services/T0/B0/x', 'webhook_url_private'],
        ['http://hooks.slack.com/services/T0/B0/x', 'webhook_url_scheme'],
      ] as const) {
        const res = await t.api('PUT', '/v1/notifications/slack', { token: u.accessToken, body: { webhookUrl } });
        assert.deepEqual([res.status, res.body.code], [400, code], webhookUrl);
      }
      const bot = await t.api('PUT', '/v1/notifications/slack', { token: u.accessToken, body: { channel: 'U0123ABCD' } });
      assert.deepEqual([bot.status, bot.body.code], [400, 'slack_bot_not_configured']);
      assert.equal((await t.api('GET', '/v1/notifications/slack', { token: u.accessToken })).status, 404);
    });

    test('without SMS settings the SMS channel is absent: no routes, no preference, not among the channels', async () => {
      assert.equal((await t.api('GET', '/v1/notifications/sms/phone', { token: u.accessToken })).status, 404);
      assert.equal((await t.api('POST', '/v1/notifications/sms/phone', { token: u.accessToken, body: { phone: '+14155550100' } })).status, 404);
      const res = await t.api('PUT', '/v1/notifications/preferences', { token: u.accessToken, body: { preferences: [{ category: 'system.message', channel: 'sms', enabled: true }] } });
      assert.deepEqual([res.status, res.body.code], [400, 'channel_not_configured']);
      const channels = (await t.api('GET', '/v1/notifications/categories', { token: u.accessToken })).body.data[0].channels;
      assert.equal('sms' in channels, false);
      assert.equal(channels.slack, false, 'Slack is always there, off by default');
    });
  });
}

test('a long message is cut whole: never inside an emoji or an escaped entity, and the link is kept', () => {
  const opts = { publicUrl: 'https://p.test', unsubscribeUrl: 'https://p.test/u' };
  const section = (body: string, link: string | null = null) => slackMessage({ title: 'T', body, link, category: 'c' }, opts).text;
  // 4 characters of title, then the body: the cut at 2,999 falls after the high half of an emoji, or inside an `&amp;`.
  const emoji = section('😀'.repeat(2000));
  assert.ok(emoji.isWellFormed(), 'no lone surrogate');
  assert.ok(emoji.endsWith('😀…') && emoji.length <= 3000, emoji.slice(-10));
  for (const [body, entity] of [['a' + '&'.repeat(1000), '&amp;'], ['a' + '<'.repeat(1000), '&lt;'], ['ab' + '>'.repeat(1000), '&gt;']] as const) {
    const text = section(body);
    assert.ok(text.endsWith(`${entity}…`) && text.length <= 3000, `${entity}: ${text.slice(-10)}`);
  }
  const linked = section('a' + '&'.repeat(1000), '/documents/d1');
  assert.ok(linked.endsWith('&amp;…\n<https://p.test/documents/d1|Open>') && linked.length <= 3000, linked.slice(-60));
});

test("an incoming webhook's DNS lookup that fails (SERVFAIL, a timeout) is retried; a name that does not exist, or a private address, fails at once", async () => {
  const [slack, dns] = await Promise.all([startFakeSlack(), startDns({ 'hooks.slack.test': ['127.0.0.1'], 'flaky.slack.test': 'servfail', 'slow.slack.test': 'silent' })]);
  try {
    const message = { text: 'hello' };
    // The local Slack's webhook under a name only the local DNS server knows.
    const hook = (host: string) => Object.assign(new URL(slack.newWebhook()), { hostname: host }).href;
    const post = (url: string, allowPrivate = true) => postIncomingWebhook(url, message, { allowPrivate, lookup: dns.lookup });

    await assert.rejects(post(hook('flaky.slack.test')), (err: Error) => !(err instanceof Undeliverable) && /ESERVFAIL/.test(err.message));
    await assert.rejects(post(hook('slow.slack.test')), (err: Error) => !(err instanceof Undeliverable) && /ETIMEOUT/.test(err.message));
    // The same name once the server answers again: delivered.
    dns.zone['flaky.slack.test'] = ['127.0.0.1'];
    const flaky = hook('flaky.slack.test');
    await post(flaky);
    assert.equal(slack.postsTo(flaky).length, 1);

    await assert.rejects(post(hook('gone.slack.test')), (err: Error) => err instanceof Undeliverable && /does not resolve/.test(err.message));
    await assert.rejects(post(hook('hooks.slack.test'), false), (err: Error) => err instanceof Undeliverable && /private/.test(err.message));
    await post(hook('hooks.slack.test'));
  } finally {
    await Promise.all([slack.close(), dns.close()]);
  }
});
