import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { smsText, SMS_MAX_CHARS } from '../../../src/modules/notifications/channels/sms.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { startFakeTwilio } from '../../support/twilio.ts';

let phoneCounter = 0;
/** A fresh number per call, so the per-number code limit never meets another test's. */
const newPhone = () => `+1415555${String(1000 + (++phoneCounter % 9000)).padStart(4, '0')}`;

for (const backend of backends()) {
  describe(`notifications: SMS through a Twilio-compatible API [${backend}]`, () => {
    let t: TestApp;
    let admin: TestUser;
    let twilio: Awaited<ReturnType<typeof startFakeTwilio>>;
    const FROM = '+15005550006';

    before(async () => {
      twilio = await startFakeTwilio();
      t = await startApp({ backend, env: { SMS_PROVIDER_URL: twilio.url, SMS_ACCOUNT_SID: twilio.accountSid, SMS_AUTH_TOKEN: twilio.authToken, SMS_FROM: FROM } });
      admin = await createUser(t, { admin: true });
    });
    after(async () => {
      await t.close();
      await twilio.close();
    });

    const api = (u: TestUser, method: string, path: string, body?: unknown) => t.api(method, path, { token: u.accessToken, body });
    const send = async (body: Record<string, unknown>) => {
      const res = await t.api('POST', '/v1/notifications', { token: admin.accessToken, body });
      assert.equal(res.status, 201, res.text);
      return res.body;
    };
    const smsStatus = async (u: TestUser, id: string) => (await api(u, 'GET', `/v1/notifications/${id}`)).body.channels.sms;
    const smsOn = async (u: TestUser, category = 'system.message') => {
      const res = await api(u, 'PUT', '/v1/notifications/preferences', { preferences: [{ category, channel: 'sms', enabled: true }] });
      assert.equal(res.status, 200, res.text);
    };
    /** A user whose number is verified. */
    const verifiedUser = async () => {
      const u = await createUser(t);
      const phone = newPhone();
      assert.equal((await api(u, 'POST', '/v1/notifications/sms/phone', { phone })).status, 200);
      const res = await api(u, 'POST', '/v1/notifications/sms/phone/verify', { code: twilio.codeFor(phone) });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.verified, true);
      return { u, phone };
    };

    test('a number is verified by the texted code; wrong, another user\'s, expired and used-up codes are refused; each user\'s state is their own', async () => {
      const [u1, u2] = [await createUser(t), await createUser(t)];
      assert.equal((await api(u1, 'GET', '/v1/notifications/sms/phone')).status, 404);
      for (const phone of ['4155550100', '+04155550100', '+1 415 555 0100', '+1415', '+1234567890123456', 'tel:+14155550100']) {
        const res = await api(u1, 'POST', '/v1/notifications/sms/phone', { phone });
        assert.equal(res.status, 400, phone);
        assert.equal(res.body.code, 'phone_invalid', phone);
      }
      assert.equal(twilio.state.requests, 0, 'nothing was texted for a bad number');

      const [p1, p2] = [newPhone(), newPhone()];
      const started = await api(u1, 'POST', '/v1/notifications/sms/phone', { phone: p1 });
      assert.equal(started.status, 200, started.text);
      assert.equal(started.body.verified, false);
      assert.equal(started.body.phone, `+${'•'.repeat(p1.length - 5)}${p1.slice(-4)}`);
      assert.ok(!started.body.phone.includes(p1.slice(1, -4)));
      assert.ok(Date.parse(started.body.codeExpiresAt) > Date.now() + 9 * 60_000);
      const [texted] = twilio.to(p1);
      assert.equal(texted!.from, FROM);
      assert.match(texted!.body, /\b\d{6}\b/);
      assert.equal(texted!.statusCallback, undefined, 'a code asks for no receipt');
      assert.equal((await api(u2, 'POST', '/v1/notifications/sms/phone', { phone: p2 })).status, 200);
      const [code1, code2] = [twilio.codeFor(p1), twilio.codeFor(p2)];

      const wrong = String((Number(code1) + 1) % 1_000_000).padStart(6, '0');
      let res = await api(u1, 'POST', '/v1/notifications/sms/phone/verify', { code: wrong });
      assert.deepEqual([res.status, res.body.code, res.body.triesLeft], [400, 'sms_code_wrong', 4]);
      if (code2 !== code1) {
        res = await api(u1, 'POST', '/v1/notifications/sms/phone/verify', { code: code2 });
        assert.deepEqual([res.status, res.body.code], [400, 'sms_code_wrong'], "another user's code");
      }
      assert.equal((await api(u1, 'POST', '/v1/notifications/sms/phone/verify', { code: 'abc' })).status, 400);

      // u1's wrong tries left u2 alone.
      res = await api(u2, 'GET', '/v1/notifications/sms/phone');
      assert.deepEqual([res.body.verified, typeof res.body.codeExpiresAt], [false, 'string']);
      res = await api(u2, 'POST', '/v1/notifications/sms/phone/verify', { code: code2 });
      assert.deepEqual([res.status, res.body.verified], [200, true], res.text);
      assert.equal(res.body.codeExpiresAt, null);
      res = await api(u2, 'POST', '/v1/notifications/sms/phone/verify', { code: code2 });
      assert.deepEqual([res.status, res.body.code], [400, 'sms_code_not_pending'], 'a code is used once');

      // Five wrong tries in all use the code up: even the right one is refused then.
      while ((res = await api(u1, 'POST', '/v1/notifications/sms/phone/verify', { code: wrong })).body.code === 'sms_code_wrong');
      assert.deepEqual([res.status, res.body.code], [400, 'sms_code_exhausted']);
      res = await api(u1, 'POST', '/v1/notifications/sms/phone/verify', { code: code1 });
      assert.deepEqual([res.status, res.body.code], [400, 'sms_code_exhausted']);
      assert.equal((await api(u1, 'GET', '/v1/notifications/sms/phone')).body.verified, false);

      // A new code; ten minutes later it has expired.
      assert.equal((await api(u1, 'POST', '/v1/notifications/sms/phone', { phone: p1 })).status, 200);
      await t.deps.db.execute(sql`update notification_phones set code_expires_at = now() - interval '1 second' where user_id = ${u1.id}`);
      res = await api(u1, 'POST', '/v1/notifications/sms/phone/verify', { code: twilio.codeFor(p1) });
      assert.deepEqual([res.status, res.body.code], [400, 'sms_code_expired']);
      assert.equal((await api(u2, 'GET', '/v1/notifications/sms/phone')).body.verified, true, "u2's number stays verified");

      // Deleting forgets the number (u2's stays).
      assert.equal((await api(u1, 'DELETE', '/v1/notifications/sms/phone')).status, 204);
      assert.equal((await api(u1, 'GET', '/v1/notifications/sms/phone')).status, 404);
      assert.equal((await api(u2, 'GET', '/v1/notifications/sms/phone')).status, 200);
    });

    test('at most 3 codes per user in 10 minutes: the fourth is a 429 problem', async () => {
      const u = await createUser(t);
      for (let i = 0; i < 3; i++) assert.equal((await api(u, 'POST', '/v1/notifications/sms/phone', { phone: newPhone() })).status, 200);
      const before = twilio.state.requests;
      const res = await api(u, 'POST', '/v1/notifications/sms/phone', { phone: newPhone() });
      assert.equal(res.status, 429, res.text);
      assert.equal(res.body.code, 'sms_code_rate_limited');
      assert.match(res.headers.get('content-type')!, /application\/problem\+json/);
      assert.ok(Number(res.headers.get('retry-after')) > 0);
      assert.equal(twilio.state.requests, before, 'nothing texted');
      // Another user is not held back by it.
      assert.equal((await api(await createUser(t), 'POST', '/v1/notifications/sms/phone', { phone: newPhone() })).status, 200);
    });

    test('a category turned on for SMS arrives as a text with its title; the signed receipt marks it delivered (or failed, when undelivered), a forged one is 403', async () => {
      const { u, phone } = await verifiedUser();
      const off = await send({ userId: u.id, category: 'system.message', title: 'Not by text' });
      assert.deepEqual([off.channels.sms.status, off.channels.sms.reason], ['suppressed', 'preference'], 'SMS is off unless a category says otherwise');
      await smsOn(u);
      const n = await send({ userId: u.id, category: 'system.message', title: 'Deploy finished', body: 'All checks green.', link: '/status' });
      assert.equal(n.channels.sms.status, 'queued');
      const message = await eventually(() => {
        const got = twilio.to(phone).find((m) => m.body.startsWith('Deploy finished'));
        assert.ok(got);
        return got;
      }, 10_000);
      assert.equal(message.body, 'Deploy finished\nAll checks green.\nhttp://parley.test/status');
      assert.equal(message.from, FROM);
      assert.equal(message.statusCallback, 'http://parley.test/v1/notifications/sms/status');
      await eventually(async () => assert.deepEqual([(await smsStatus(u, n.id)).status, (await smsStatus(u, n.id)).attempts], ['sent', 1]), 10_000);

      const forged = await twilio.statusCallback(message, 'delivered', t.url, { forge: true });
      assert.equal(forged.status, 403);
      assert.equal(((await forged.json()) as { code: string }).code, 'bad_signature');
      assert.equal((await smsStatus(u, n.id)).status, 'sent');
      // A receipt whose fields were changed after signing is forged too.
      assert.equal((await twilio.statusCallback(message, 'failed', t.url, { tamper: { MessageStatus: 'delivered' } })).status, 403);
      assert.equal((await twilio.statusCallback(message, 'sent', t.url)).status, 204);
      assert.equal((await smsStatus(u, n.id)).status, 'sent', 'sent is not delivered');
      assert.equal((await twilio.statusCallback(message, 'delivered', t.url)).status, 204);
      assert.equal((await smsStatus(u, n.id)).status, 'delivered');

      // The carrier gave up on the next one: its receipt fails the delivery, with the provider's error code.
      const lost = await send({ userId: u.id, category: 'system.message', title: 'Phone switched off' });
      const lostMessage = await eventually(() => {
        const got = twilio.to(phone).find((m) => m.body.startsWith('Phone switched off'));
        assert.ok(got);
        return got;
      }, 10_000);
      await eventually(async () => assert.equal((await smsStatus(u, lost.id)).status, 'sent'), 10_000);
      assert.equal((await twilio.statusCallback(lostMessage, 'undelivered', t.url, { errorCode: '30003' })).status, 204);
      assert.deepEqual([(await smsStatus(u, lost.id)).status, (await smsStatus(u, lost.id)).reason], ['failed', 'SMS undelivered (error 30003)']);
      assert.equal((await smsStatus(u, n.id)).status, 'delivered', 'the first is untouched');
    });

    test('the title is texted as one line, without direction overrides', async () => {
      const { u, phone } = await verifiedUser();
      await smsOn(u);
      await send({ userId: u.id, category: 'system.message', title: 'Invoice \u202Efdp.exe\u202C\u2028sent\u000btoday', body: 'b' });
      const message = await eventually(() => {
        const got = twilio.to(phone).find((m) => m.body.startsWith('Invoice'));
        assert.ok(got);
        return got;
      }, 10_000);
      assert.equal(message.body, 'Invoice fdp.exe sent today\nb');
    });

    test('a 429 from the provider is retried after its Retry-After, then sent (2 attempts)', async () => {
      const { u, phone } = await verifiedUser();
      await smsOn(u);
      twilio.state.rateLimited = 1;
      const n = await send({ userId: u.id, category: 'system.message', title: 'Rate limited once' });
      await eventually(async () => {
        const s = await smsStatus(u, n.id);
        assert.deepEqual([s.status, s.attempts], ['sent', 2]);
      }, 15_000);
      assert.equal(twilio.to(phone).filter((m) => m.body.startsWith('Rate limited once')).length, 1);
    });

    test('a number the provider refuses fails at once; users without a verified number are not texted (unreachable: no_verified_phone)', async () => {
      const { u, phone } = await verifiedUser();
      await smsOn(u);
      twilio.state.invalidNumbers.add(phone);
      const n = await send({ userId: u.id, category: 'system.message', title: 'To a dead number' });
      await eventually(async () => {
        const s = await smsStatus(u, n.id);
        assert.deepEqual([s.status, s.attempts], ['failed', 1]);
        assert.match(s.reason, /21211/);
      }, 10_000);

      const none = await createUser(t);
      await smsOn(none);
      const pending = await createUser(t);
      await smsOn(pending);
      assert.equal((await api(pending, 'POST', '/v1/notifications/sms/phone', { phone: newPhone() })).status, 200);
      for (const who of [none, pending]) {
        const got = await send({ userId: who.id, category: 'system.message', title: 'Unreachable' });
        assert.deepEqual([got.channels.sms.status, got.channels.sms.reason], ['suppressed', 'unreachable: no_verified_phone']);
        assert.equal(got.channels.inApp.status, 'sent');
      }
      const categories = (await api(none, 'GET', '/v1/notifications/categories')).body.data;
      assert.equal(categories.find((c: any) => c.name === 'system.message').channels.sms, false);
    });
  });
}

test('the text of a notification: title, body and link, the body cut to fit 320 characters', () => {
  assert.equal(smsText({ title: 'Hi', body: '', link: null }, 'https://p.test'), 'Hi');
  const long = smsText({ title: 'A title', body: 'word '.repeat(200), link: 'https://example.com/x' }, 'https://p.test');
  assert.equal(long.length, SMS_MAX_CHARS);
  assert.ok(long.endsWith('…\nhttps://example.com/x'), long.slice(-40));
  assert.ok(long.startsWith('A title\nword word'));
  const hugeLink = smsText({ title: 'T', body: 'b', link: `https://example.com/${'x'.repeat(400)}` }, 'https://p.test');
  assert.equal(hugeLink, 'T\nb', 'a link longer than half a message is dropped');
});

test('a cut body never splits an emoji', () => {
  // 2 characters of title, then 317 of the 319 before the … : the last would be the high half of an emoji.
  const text = smsText({ title: 'T', body: '😀'.repeat(400), link: null }, 'https://p.test');
  assert.ok(text.isWellFormed(), 'no lone surrogate');
  assert.equal(text, `T\n${'😀'.repeat(158)}…`);
  const linked = smsText({ title: 'T', body: '😀'.repeat(400), link: '/documents/d1' }, 'https://p.test');
  assert.ok(linked.isWellFormed() && linked.endsWith('😀…\nhttps://p.test/documents/d1') && linked.length <= SMS_MAX_CHARS, linked.slice(-40));
});
