import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../support/app.ts';
import { uniqueEmail } from '../support/factories.ts';
import { mailsTo, tokenIn } from '../support/mail.ts';
import { eventually } from '../support/eventually.ts';
import { startSmtp } from '../support/smtp.ts';

for (const backend of backends()) {
  describe(`mail: embedded outbox [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend });
    });
    after(() => t.close());

    test('a message is stored in mail_outbox as sent', async () => {
      const to = uniqueEmail('outbox');
      await t.deps.mailer.send({ to, subject: 'Hello', text: 'Plain body', html: '<p>HTML body</p>' });
      const [row] = await mailsTo(t, to);
      assert.equal(row!.transport, 'outbox');
      assert.equal(row!.subject, 'Hello');
      assert.equal(row!.text, 'Plain body');
      assert.equal(row!.html, '<p>HTML body</p>');
      assert.ok(row!.sentAt instanceof Date);
      assert.equal(row!.error, null);
    });
  });

  describe(`mail: SMTP [${backend}]`, () => {
    let t: TestApp;
    let smtp: Awaited<ReturnType<typeof startSmtp>>;
    before(async () => {
      smtp = await startSmtp();
      t = await startApp({ backend, env: { SMTP_URL: smtp.url, MAIL_FROM: 'Parley Test <robot@parley.test>' } });
    });
    after(async () => {
      await t.close();
      await smtp.close();
    });

    test('a message is delivered to the recipient with subject, text and HTML, and recorded', async () => {
      const to = uniqueEmail('smtp');
      await t.deps.mailer.send({ to, subject: 'Delivery check', text: 'The plain text part.', html: '<p>The <b>HTML</b> part.</p>' });
      // Delivered by a background job: send() returns once the message and its job are stored.
      const got = await eventually(() => {
        const [m] = smtp.to(to);
        assert.ok(m, 'arrived');
        return m;
      });
      assert.deepEqual(got.to, [to]);
      assert.equal(got.from, 'robot@parley.test');
      assert.match(got.message, /^Subject: Delivery check\r?$/m);
      assert.match(got.message, new RegExp(`^To: ${to.replace(/[.+]/g, '\\$&')}\\r?$`, 'm'));
      assert.match(got.message, /^From: Parley Test <robot@parley\.test>\r?$/m);
      assert.match(got.message, /Content-Type: text\/plain/);
      assert.ok(got.message.includes('The plain text part.'));
      assert.match(got.message, /Content-Type: text\/html/);
      assert.ok(got.message.includes('<p>The <b>HTML</b> part.</p>'));
      const row = await eventually(async () => {
        const [r] = await mailsTo(t, to);
        assert.ok(r!.sentAt instanceof Date, 'marked sent');
        return r!;
      });
      assert.equal(row.transport, 'smtp');
      assert.equal(row.error, null);
    });

    test('a refused recipient records the error and the delivery job retries it', async () => {
      const to = uniqueEmail('bounce');
      await t.deps.mailer.send({ to, subject: 'Nope', text: 'x' });
      const row = await eventually(async () => {
        const [r] = await mailsTo(t, to);
        assert.ok(r!.error, 'the refusal is recorded');
        return r!;
      });
      assert.equal(row.sentAt, null);
      assert.match(row.error!, /No such mailbox|550/);
      const { jobs } = await t.deps.queue.list({ queue: 'mail.deliver', limit: 100 });
      const job = jobs.find((j) => (j.data as { mailId: string }).mailId === row.id);
      assert.ok(job, 'the delivery is a job');
      assert.ok(job.state === 'delayed' || job.state === 'waiting' || job.state === 'active', `waiting to try again (${job.state})`);
      assert.match(job.error ?? '', /No such mailbox|550/);
    });

    test('sign-up: the verification email goes out over SMTP and its link works', async () => {
      const email = uniqueEmail('signup');
      const reg = await t.api('POST', '/v1/auth/register', { body: { email, password: 'smtp tested password' } });
      assert.equal(reg.status, 201);
      const got = await eventually(() => {
        const [m] = smtp.to(email);
        assert.ok(m, 'the verification email arrived');
        return m;
      });
      assert.match(got.message, /^Subject: Confirm your email address\r?$/m);
      const token = tokenIn(got.message, '/verify-email');
      assert.ok(got.message.includes(`http://parley.test/verify-email?token=${token}`));
      assert.equal((await t.api('POST', '/v1/auth/verify-email', { body: { token } })).status, 204);
      assert.equal((await t.api('GET', '/v1/users/me', { token: reg.body.accessToken })).body.emailVerified, true);
    });

    test('sign-up still succeeds when the verification email cannot be delivered', async () => {
      const email = uniqueEmail('bounce');
      const reg = await t.api('POST', '/v1/auth/register', { body: { email, password: 'smtp tested password' } });
      assert.equal(reg.status, 201);
      await eventually(async () => {
        const [row] = await mailsTo(t, email);
        assert.ok(row!.error);
      });
    });
  });
}
