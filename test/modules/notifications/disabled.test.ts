import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { and, eq } from 'drizzle-orm';
import { notificationDeliveries } from '../../../src/modules/notifications/schema.ts';
import { startWorker } from '../../../src/worker.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { mailsTo, waitForMails } from '../../support/mail.ts';
import { startPushService, type TestBrowser } from '../../support/push-service.ts';
import { startFakeSlack } from '../../support/slack.ts';
import { startFakeTwilio } from '../../support/twilio.ts';

const OUTBOUND = ['email', 'push', 'sms', 'slack'] as const;
const hhmm = (d: Date) => d.toISOString().slice(11, 16);
let phoneCounter = 0;
const newPhone = () => `+1415556${String(1000 + (++phoneCounter % 9000)).padStart(4, '0')}`;

for (const backend of backends()) {
  describe(`notifications: an account an administrator disabled is sent nothing [${backend}]`, () => {
    let t: TestApp;
    let admin: TestUser;
    let pushService: Awaited<ReturnType<typeof startPushService>>;
    let slack: Awaited<ReturnType<typeof startFakeSlack>>;
    let twilio: Awaited<ReturnType<typeof startFakeTwilio>>;
    // No worker at first: what is queued waits, so the account can be disabled before any delivery runs.
    let worker: Awaited<ReturnType<typeof startWorker>> | undefined;

    before(async () => {
      [pushService, slack, twilio] = await Promise.all([startPushService(), startFakeSlack(), startFakeTwilio()]);
      t = await startApp({
        backend,
        worker: false,
        env: {
          // The fakes listen on loopback.
          PUSH_ALLOW_PRIVATE: 'true',
          VAPID_SUBJECT: 'mailto:ops@parley.test',
          WEBHOOKS_ALLOW_PRIVATE: 'true',
          SMS_PROVIDER_URL: twilio.url,
          SMS_ACCOUNT_SID: twilio.accountSid,
          SMS_AUTH_TOKEN: twilio.authToken,
          SMS_FROM: '+15005550006',
          NOTIFICATIONS_DAILY_LIMIT: '2',
        },
      });
      admin = await createUser(t, { admin: true });
    });
    after(async () => {
      await worker?.stop();
      await t.close();
      await Promise.all([pushService.close(), slack.close(), twilio.close()]);
    });

    const startWorking = async () => void (worker ??= await startWorker(t.deps));
    const api = (u: TestUser, method: string, path: string, body?: unknown) => t.api(method, path, { token: u.accessToken, body });
    const send = async (body: Record<string, unknown>) => {
      const res = await t.api('POST', '/v1/notifications', { token: admin.accessToken, body: { category: 'system.message', ...body } });
      assert.equal(res.status, 201, res.text);
      return res.body;
    };
    const setDisabled = async (u: TestUser, disabled: boolean) => {
      const res = await t.api('POST', `/v1/admin/users/${u.id}/${disabled ? 'disable' : 'enable'}`, { token: admin.accessToken });
      assert.equal(res.status, 200, res.text);
    };
    /** What each channel did with a notification, as its sender sees it. */
    const channels = async (id: string) => (await t.services.notifications.view(id)).channels;
    const suppressedEverywhere = async (id: string, which: readonly string[]) => {
      const seen = await channels(id);
      assert.deepEqual(
        which.map((c) => [c, seen[c as keyof typeof seen]?.status, seen[c as keyof typeof seen]?.reason]),
        which.map((c) => [c, 'suppressed', 'account_disabled']),
      );
    };

    /** A user reachable on every channel, each on for system.message: a browser, a Slack webhook, a verified phone. */
    async function reachableUser() {
      const u = await createUser(t);
      const browser: TestBrowser = pushService.browser();
      assert.equal((await api(u, 'POST', '/v1/notifications/push/subscriptions', browser.subscription)).status, 201);
      const hook = slack.newWebhook();
      assert.equal((await api(u, 'PUT', '/v1/notifications/slack', { webhookUrl: hook })).status, 200);
      const phone = newPhone();
      assert.equal((await api(u, 'POST', '/v1/notifications/sms/phone', { phone })).status, 200);
      assert.equal((await api(u, 'POST', '/v1/notifications/sms/phone/verify', { code: twilio.codeFor(phone) })).status, 200);
      const on = ['sms', 'slack'].map((channel) => ({ category: 'system.message', channel, enabled: true }));
      assert.equal((await api(u, 'PUT', '/v1/notifications/preferences', { preferences: on })).status, 200);
      /** What reached the person, per channel, whose text matches. */
      const received = async (text: RegExp) => ({
        email: (await mailsTo(t, u.email)).filter((m) => text.test(m.subject)).length,
        push: browser.received.filter((m) => text.test(m.plaintext)).length,
        sms: twilio.to(phone).filter((m) => text.test(m.body)).length,
        slack: slack.postsTo(hook).filter((p) => text.test(p.text ?? '')).length,
      });
      return { u, received };
    }

    test('what was queued, held for quiet hours or for a digest before the account was disabled is not sent when its delivery runs, critical included', async () => {
      const { u, received } = await reachableUser();
      const queued = [await send({ userId: u.id, title: 'Queued normal' }), await send({ userId: u.id, title: 'Queued critical', priority: 'critical' })];
      for (const n of queued) for (const c of OUTBOUND) assert.equal(n.channels[c].status, 'queued', `${n.title} ${c}`);

      const quiet = await createUser(t);
      const now = new Date();
      const prefer = async (who: TestUser, notifications: object) => assert.equal((await api(who, 'PATCH', '/v1/users/me/preferences', { notifications })).status, 200);
      await prefer(quiet, { quietHours: { start: hhmm(now), end: hhmm(new Date(now.getTime() + 2 * 3600_000)) } });
      const held = await send({ userId: quiet.id, title: 'Held for quiet hours' });
      assert.deepEqual([held.channels.email.status, held.channels.email.reason], ['held', 'quiet_hours']);

      const digested = await createUser(t);
      await prefer(digested, { digest: 'daily', digestTime: '09:00' });
      const inDigest = await send({ userId: digested.id, title: 'Held for the digest' });
      assert.deepEqual([inDigest.channels.email.status, inDigest.channels.email.reason], ['held', 'digest']);

      for (const who of [u, quiet, digested]) await setDisabled(who, true);
      await startWorking();

      // The queued deliveries run now, for an account disabled since.
      await eventually(async () => {
        for (const n of queued) await suppressedEverywhere(n.id, OUTBOUND);
      }, 15_000);
      assert.deepEqual(await received(/Queued/), { email: 0, push: 0, sms: 0, slack: 0 });

      // The end of quiet hours: the held email's job, as the queue runs it then.
      const [delivery] = await t.deps.db
        .select({ id: notificationDeliveries.id })
        .from(notificationDeliveries)
        .where(and(eq(notificationDeliveries.notificationId, held.id), eq(notificationDeliveries.channel, 'email')));
      const ctx = { id: 'quiet-hours-end', queue: 'notifications.email', userId: null, attempt: 1, maxAttempts: 5, signal: new AbortController().signal, progress: async () => {} };
      assert.deepEqual(await t.services.notifications.deliver({ deliveryId: delivery!.id }, ctx), { skipped: 'account_disabled' });
      await suppressedEverywhere(held.id, ['email']);

      // The digest time: the digest is made, and sends nothing.
      assert.equal(await t.services.notifications.sendDueDigests(new Date(Date.now() + 36 * 3600_000)), 1);
      await eventually(() => suppressedEverywhere(inDigest.id, ['email']), 15_000);
      for (const who of [quiet, digested]) assert.deepEqual((await mailsTo(t, who.email)).map((m) => m.subject).filter((s) => /Held|digest/.test(s)), []);
    });

    test('sent while disabled: every channel suppressed at once (critical too), kept out of the inbox and the day\'s count; enabled again, the next one goes everywhere', async () => {
      const { u, received } = await reachableUser();
      await setDisabled(u, true);
      await startWorking();
      // Two normal ones fill the day's limit of 2, were they counted.
      const whileDisabled = [
        await send({ userId: u.id, title: 'While disabled one' }),
        await send({ userId: u.id, title: 'While disabled two' }),
        await send({ userId: u.id, title: 'While disabled critical', priority: 'critical' }),
      ];
      for (const n of whileDisabled) await suppressedEverywhere(n.id, ['inApp', ...OUTBOUND]);

      await setDisabled(u, false);
      const signedIn = await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } });
      assert.equal(signedIn.status, 200, signedIn.text);
      const again = { ...u, accessToken: signedIn.body.accessToken as string };
      assert.deepEqual((await api(again, 'GET', '/v1/notifications')).body.data, [], 'nothing of the disabled time in the inbox');
      assert.equal((await api(again, 'GET', '/v1/notifications/unread-count')).body.count, 0);

      const later = await send({ userId: u.id, title: 'After enabling' });
      assert.equal(later.channels.inApp.status, 'sent');
      await eventually(async () => {
        const seen = await channels(later.id);
        assert.deepEqual(OUTBOUND.map((c) => seen[c]?.status === 'sent' || seen[c]?.status === 'delivered'), [true, true, true, true], JSON.stringify(seen));
      }, 15_000);
      await waitForMails(t, u.email, /After enabling/);
      assert.deepEqual(await received(/After enabling/), { email: 1, push: 1, sms: 1, slack: 1 });
      assert.deepEqual((await api(again, 'GET', '/v1/notifications')).body.data.map((n: { id: string }) => n.id), [later.id]);
      assert.deepEqual(await received(/While disabled/), { email: 0, push: 0, sms: 0, slack: 0 });
    });
  });
}
