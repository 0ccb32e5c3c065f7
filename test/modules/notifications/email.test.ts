import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../../src/config.ts';
import { ConfigError } from '../../../src/errors.ts';
import { MODULES } from '../../../src/modules/index.ts';
import type { NotificationCategory } from '../../../src/modules/module.ts';
import { absoluteLink } from '../../../src/modules/notifications/channels/channel.ts';
import { DIGEST_QUEUE } from '../../../src/modules/notifications/deliveries.ts';
import { missingVariables, renderDigest, renderEmail } from '../../../src/modules/notifications/email.ts';
import { createNotifications } from '../../../src/modules/notifications/service.ts';
import type { NotificationRow } from '../../../src/modules/notifications/schema.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { observeEvents } from '../../support/bus.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, uniqueEmail, type TestUser } from '../../support/factories.ts';
import { startSmtp } from '../../support/smtp.ts';

for (const backend of backends()) {
  describe(`notifications: email over SMTP [${backend}]`, () => {
    let t: TestApp;
    let admin: TestUser;
    let smtp: Awaited<ReturnType<typeof startSmtp>>;

    before(async () => {
      smtp = await startSmtp();
      // The deployment's own category, with its templates and a French translation.
      const config = join(tmpdir(), `parley-notifications-${backend}-${process.pid}.json`);
      writeFileSync(
        config,
        JSON.stringify({
          categories: [
            {
              name: 'shop.order-shipped',
              description: 'An order left the warehouse',
              channels: { email: true },
              email: {
                subject: 'Order {{data.order}} shipped',
                text: 'Order {{data.order}} is on its way.{{#data.carrier}} Carrier: {{data.carrier}}.{{/data.carrier}}',
                translations: { fr: { subject: 'Commande {{data.order}} expédiée', text: 'La commande {{data.order}} est en route.' } },
              },
            },
          ],
        }),
      );
      t = await startApp({ backend, env: { SMTP_URL: smtp.url, MAIL_FROM: 'Parley <robot@parley.test>', NOTIFICATIONS_CONFIG: config } });
      admin = await createUser(t, { admin: true });
    });
    after(async () => {
      await t.close();
      await smtp.close();
    });

    const send = async (body: Record<string, unknown>) => {
      const res = await t.api('POST', '/v1/notifications', { token: admin.accessToken, body });
      assert.equal(res.status, 201, res.text);
      return res.body;
    };
    const status = async (u: TestUser, id: string) => (await t.api('GET', `/v1/notifications/${id}`, { token: u.accessToken })).body.channels.email;

    test('delivered with List-Unsubscribe headers; the signed link turns that category off, and the next one is suppressed', async () => {
      const u = await createUser(t);
      const n = await send({ userId: u.id, category: 'system.message', title: 'Maintenance <tonight>', body: 'We restart at 22:00.', link: 'https://app.example/status' });
      assert.equal(n.channels.email.status, 'queued');
      const [mail] = await eventually(() => {
        const got = smtp.to(u.email).filter((m) => m.message.includes('Maintenance'));
        assert.equal(got.length, 1);
        return got;
      }, 10_000);
      assert.match(mail!.message, /^Subject: Maintenance <tonight>/m);
      assert.match(mail!.message, /We restart at 22:00\./);
      assert.match(mail!.message, /Maintenance &#60;tonight&#62;/, 'the HTML part escapes the title');
            const headers = mail!.message.slice(0, mail!.message.search(/\r?\n\r?\n/)).replace(/\r?\n[ \t]+/g, ' ');
      const header = /^List-Unsubscribe: <([^>]+)>/m.exec(headers);
      assert.ok(header, `List-Unsubscribe header in:\n${headers}`);
      assert.match(headers, /^List-Unsubscribe-Post: List-Unsubscribe=One-Click/m);
      const url = new URL(header[1]!);
      assert.equal(url.origin + url.pathname, 'http://parley.test/v1/notifications/unsubscribe');
      await eventually(async () => assert.equal((await status(u, n.id)).status, 'sent'));

      // Someone else's category is untouched; a tampered token is refused.
      const token = url.searchParams.get('token')!;
      assert.equal((await t.api('POST', `/v1/notifications/unsubscribe?token=${encodeURIComponent(token.slice(0, -2) + 'xx')}`, {})).status, 400);
      const page = await t.api('GET', `/v1/notifications/unsubscribe?token=${encodeURIComponent(token)}`, {});
      assert.equal(page.status, 200);
      assert.match(page.text, /<form method="post"/);
      // A mail client's one-click POST (RFC 8058), no sign-in.
      const res = await t.api('POST', url.pathname + url.search, { raw: 'List-Unsubscribe=One-Click', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assert.equal(res.status, 200, res.text);
      assert.match(res.text, /system\.message/);
      const prefs = (await t.api('GET', '/v1/notifications/preferences', { token: u.accessToken })).body.data;
      assert.deepEqual(prefs.find((p: any) => p.category === 'system.message').channels.email, { enabled: false, default: true, chosen: true, allOff: false });
      assert.equal(prefs.find((p: any) => p.category === 'system.message').channels.inApp.enabled, true);

      const next = await send({ userId: u.id, category: 'system.message', title: 'After unsubscribing' });
      assert.deepEqual([next.channels.email.status, next.channels.email.reason], ['suppressed', 'preference']);
      assert.equal(next.channels.inApp.status, 'sent');
      const other = await send({ userId: u.id, category: 'comment.mention', title: 'Still emailed' });
      assert.equal(other.channels.email.status, 'queued');
      await eventually(async () => assert.equal((await status(u, other.id)).status, 'sent'), 10_000);
      assert.equal(smtp.to(u.email).filter((m) => m.message.includes('After unsubscribing')).length, 0);
    });

    test('the unsubscribe page asks about the channel and category its link stops, changing nothing; a bad token is 400', async () => {
      const u = await createUser(t);
      const page = async (channel: 'email' | 'slack', category = 'system.message') => {
        const url = new URL(t.services.notifications.unsubscribeUrl(u.id, category, channel));
        return t.api('GET', url.pathname + url.search, {});
      };
      assert.match((await page('email')).text, /<p>Stop receiving emails about <b>system\.message<\/b>\?<\/p>/);
      assert.match((await page('slack')).text, /<p>Stop receiving Slack messages about <b>system\.message<\/b>\?<\/p>/);
      assert.match((await page('email', '*')).text, /<p>Stop receiving notification emails\?<\/p>/);
      const prefs = (await t.api('GET', '/v1/notifications/preferences', { token: u.accessToken })).body.data;
      assert.deepEqual(prefs.find((p: any) => p.category === 'system.message').channels.email, { enabled: true, default: true, chosen: false, allOff: false }, 'a GET changes nothing');
      const bad = await t.api('GET', '/v1/notifications/unsubscribe?token=bm90LmEudG9rZW4.xx', {});
      assert.deepEqual([bad.status, bad.body.code], [400, 'bad_signature']);
      for (const token of ['bad', 'x.y']) {
        const short = await t.api('POST', `/v1/notifications/unsubscribe?token=${token}`, {});
        assert.deepEqual([short.status, short.body.code], [400, 'bad_signature'], `a short token (${token}) is as bad as a forged one`);
      }
    });

    test('the email switch in the user preferences stops every category', async () => {
      const u = await createUser(t);
      await t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, body: { notifications: { email: false } } });
      const n = await send({ userId: u.id, category: 'comment.mention', title: 'No mail' });
      assert.deepEqual([n.channels.email.status, n.channels.email.reason], ['suppressed', 'preference']);
    });

    test("a deployment category's templates fill its data, in the user's language when translated; a missing variable is a 400", async () => {
      const [en, fr] = await Promise.all([createUser(t), createUser(t)]);
      await t.api('PATCH', '/v1/users/me/preferences', { token: fr.accessToken, body: { locale: 'fr-CA' } });
      await send({ userId: en.id, category: 'shop.order-shipped', title: 'Shipped', data: { order: 'A-17', carrier: 'Post' } });
      await send({ userId: fr.id, category: 'shop.order-shipped', title: 'Shipped', data: { order: 'B-42' } });
      const [mailEn] = await eventually(() => {
        const got = smtp.to(en.email).filter((m) => m.message.includes('A-17'));
        assert.equal(got.length, 1);
        return got;
      }, 10_000);
      assert.match(mailEn!.message, /^Subject: Order A-17 shipped/m);
      assert.match(mailEn!.message, /Order A-17 is on its way\. Carrier: Post\./);
      const [mailFr] = await eventually(() => {
        const got = smtp.to(fr.email).filter((m) => m.message.includes('B-42'));
        assert.equal(got.length, 1);
        return got;
      }, 10_000);
      // fr-CA has no translation of its own: the French one (the subject is MIME-encoded, so look at the text).
      assert.match(mailFr!.message, /La commande B-42 est en route\./);
      // Text templates only: sent as text alone, with no default HTML part for mail clients to show instead.
      for (const mail of [mailEn!, mailFr!]) {
        assert.doesNotMatch(mail.message, /^Content-Type: text\/html/im);
        assert.match(mail.message, /^Content-Type: text\/plain/im);
      }

      const missing = await t.api('POST', '/v1/notifications', { token: admin.accessToken, body: { userId: en.id, category: 'shop.order-shipped', title: 'No order', data: { carrier: 'Post' } } });
      assert.equal(missing.status, 400);
      assert.equal(missing.body.code, 'missing_template_variable');
      assert.match(missing.body.detail, /data\.order/);
      const categories = (await t.api('GET', '/v1/notifications/categories', { token: en.accessToken })).body.data;
      assert.equal(categories.find((c: { name: string }) => c.name === 'shop.order-shipped').description, 'An order left the warehouse');
    });

    test('the status says what the SMTP server did: a refused mailbox fails at once with its reason, a later send still goes', async () => {
      const u = await createUser(t, { email: uniqueEmail('bounce') });
      const n = await send({ userId: u.id, category: 'system.message', title: 'Into the void' });
      const email = await eventually(async () => {
        const s = await status(u, n.id);
        assert.equal(s.status, 'failed');
        return s;
      }, 10_000);
      assert.match(email.reason, /550/);
      assert.equal(email.attempts, 1, 'a permanent refusal is not retried');
      const ok = await createUser(t);
      const m = await send({ userId: ok.id, category: 'system.message', title: 'Into the inbox' });
      await eventually(async () => assert.equal((await status(ok, m.id)).status, 'sent'), 10_000);
      assert.equal(smtp.to(ok.email).filter((x) => x.message.includes('Into the inbox')).length, 1);
    });

    test('a digest the SMTP server refuses (550) fails at once, its items with their attempts; its dead job tells the user nothing', async () => {
      const failed = await observeEvents(t.deps.bus, ['job.failed']);
      try {
        const u = await createUser(t, { email: uniqueEmail('bounce') });
        assert.equal((await t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, body: { notifications: { digest: 'daily', digestTime: '09:00' } } })).status, 200);
        const n = await send({ userId: u.id, category: 'system.message', title: 'Held for a dead mailbox' });
        assert.equal(n.channels.email.status, 'held');
        await t.services.notifications.sendDueDigests(new Date(Date.now() + 36 * 3600_000));
        const email = await eventually(async () => {
          const s = await status(u, n.id);
          assert.equal(s.status, 'failed');
          return s;
        }, 10_000);
        assert.match(email.reason, /^digest: SMTP 550/);
        assert.equal(email.attempts, 1, 'a permanent refusal is not retried');
        const job = await eventually(async () => {
          const dead = (await t.services.jobs.list({ state: 'dead', queue: DIGEST_QUEUE, limit: 100 })).jobs.find((j) => (j.data as { userId: string }).userId === u.id);
          assert.ok(dead, 'the digest job is dead');
          return dead;
        }, 10_000);
        assert.deepEqual([job.attempts, job.userId], [1, null]);
        // The failure was announced (or not) before the job died; give the bus a moment to bring it.
        await new Promise((resolve) => setTimeout(resolve, 500));
        assert.deepEqual(failed.events.filter((e) => e.payload.jobId === job.id), [], 'no job.failed for a delivery job');
        const inbox = (await t.api('GET', '/v1/notifications?limit=100', { token: u.accessToken })).body.data as { category: string }[];
        assert.deepEqual(inbox.map((x) => x.category), ['system.message']);
      } finally {
        await failed.close();
      }
    });

    test("a module's template Mustache cannot read stops the start, naming it; every module's own templates read", () => {
      // What the notifications module builds at start, over this app's deps, with a module's categories.
      const build = (categories: NotificationCategory[]) =>
        createNotifications({
          db: t.deps.db,
          announce: t.deps.announce,
          queue: t.deps.queue,
          mailer: t.deps.mailer,
          signer: t.deps.signer('notifications.unsubscribe'),
          users: t.services.users,
          usage: t.services.usage,
          settings: t.deps.config.notifications,
          categories,
          channels: [],
          publicUrl: t.deps.config.publicUrl,
          broadcast: t.deps.broadcast,
        });
      const broken: NotificationCategory = {
        name: 'shop.order-packed',
        description: 'x',
        email: { subject: 'Order {{data.order}}', translations: { fr: { text: 'Transporteur : {{#data.carrier}}{{data.carrier.name}}' } } },
      };
      assert.throws(
        () => build([{ name: 'shop.fine', description: 'x', email: { text: 'Fine {{data.x}}' } }, broken]),
        (err: Error) => /notification category shop\.order-packed email\.translations\.fr\.text: not a Mustache template: Unclosed section "data\.carrier"/.test(err.message) && !/shop\.fine/.test(err.message),
      );
      assert.doesNotThrow(() => build(MODULES.flatMap((m) => m.notifications ?? [])));
    });
  });
}

/** A stored notification, as the renderers get it. */
const row = (fields: Partial<NotificationRow>): NotificationRow => ({
  id: randomUUID(),
  userId: randomUUID(),
  category: 'system.message',
  title: 'A title',
  body: '',
  markdown: null,
  link: null,
  data: {},
  priority: 'normal',
  listed: true,
  sourceKey: null,
  readAt: null,
  createdAt: new Date(),
  ...fields,
});
const links = { publicUrl: 'https://parley.example/app', unsubscribeUrl: 'https://parley.example/app/v1/notifications/unsubscribe?token=t' };

for (const backend of backends()) {
  describe(`notification emails where sign-in needs a verified address [${backend}]`, () => {
    let t: TestApp;
    let smtp: Awaited<ReturnType<typeof startSmtp>>;
    before(async () => {
      smtp = await startSmtp();
      t = await startApp({ backend, env: { SMTP_URL: smtp.url, REQUIRE_EMAIL_VERIFICATION: 'true' } });
    });
    after(async () => {
      await t.close();
      await smtp.close();
    });

    test("an address not yet verified gets no notification email (whoever signed up with it may not own it); once verified, it does", async () => {
      // Anyone can sign up with anyone's address: the account exists, unverified (403 email_not_verified).
      const email = uniqueEmail('unverified');
      const signUp = await t.api('POST', '/v1/auth/register', { body: { email, password: 'correct horse battery staple' } });
      assert.equal(signUp.status, 403, signUp.text);
      const user = (await t.services.users.byEmail(email))!;
      const before = await t.services.notifications.send({ userId: user.id, category: 'system.message', title: 'You won $1000: claim at https://evil.test' });
      assert.deepEqual([before.channels.email?.status, before.channels.email?.reason], ['suppressed', 'unreachable: email address not verified']);
      assert.equal(before.channels.inApp?.status, 'sent');
      await t.services.users.markEmailVerified(user.id);
      const after = await t.services.notifications.send({ userId: user.id, category: 'system.message', title: 'Verified now' });
      assert.equal(after.channels.email?.status, 'queued');
      await eventually(() => assert.equal(smtp.to(email).filter((m) => m.message.includes('Verified now')).length, 1), 10_000);
      assert.equal(smtp.to(email).filter((m) => m.message.includes('evil.test')).length, 0);
    });
  });
}

test("a path link is emailed under PUBLIC_URL (HTML and text, a category's {{link}} and a digest too); a URL as given", () => {
  const mail = renderEmail(undefined, row({ link: '/documents/d1' }), links);
  assert.match(mail.html ?? '', /<a href="https:\/\/parley\.example\/app\/documents\/d1"/);
  assert.match(mail.text, /^https:\/\/parley\.example\/app\/documents\/d1$/m);
  const templated = renderEmail({ name: 'x', description: 'x', email: { text: 'Open {{link}}', html: '<a href="{{link}}">Open</a>' } }, row({ link: '/jobs/j1' }), links);
  assert.equal(templated.text, 'Open https://parley.example/app/jobs/j1');
  assert.equal(templated.html, '<a href="https://parley.example/app/jobs/j1">Open</a>');
  assert.match(renderEmail(undefined, row({ link: 'https://elsewhere.example/x' }), links).text, /^https:\/\/elsewhere\.example\/x$/m);

  const digest = renderDigest([row({ title: 'Shared', link: '/documents/d2' }), row({ title: 'Elsewhere', link: 'https://elsewhere.example/y' })], { period: 'daily', ...links });
  assert.match(digest.text, /^ {2}https:\/\/parley\.example\/app\/documents\/d2$/m);
  assert.match(digest.html, /<a href="https:\/\/parley\.example\/app\/documents\/d2"[^>]*>Shared<\/a>/);
  assert.match(digest.html, /<a href="https:\/\/elsewhere\.example\/y"/);
  assert.doesNotMatch(digest.text + digest.html, /"\/documents|^ {2}\/documents/m, 'no bare path left');
});

test("a path made absolute stays on PUBLIC_URL's origin, even one stored before `//` and `/\\` paths were refused", () => {
  for (const publicUrl of ['https://parley.example', 'https://parley.example/app']) {
    for (const path of ['/documents/d1', '//evil.test/phish', '/\\evil.test/phish', '/\\\\evil.test', '/\t/evil.test', '/@evil.test', '/..//evil.test']) {
      const url = new URL(absoluteLink(path, publicUrl));
      assert.equal(url.origin, 'https://parley.example', `${publicUrl} + ${JSON.stringify(path)} gave ${url.href}`);
    }
  }
});

test('an email subject is one line: direction overrides and isolates dropped, separators and control characters a space', () => {
  const subject = (title: string, category?: NotificationCategory) => renderEmail(category, row({ title }), links).subject;
  assert.equal(subject('Invoice \u202Efdp.exe\u202C'), 'Invoice fdp.exe');
  assert.equal(subject('\u2067Isolated\u2069 \u202Aembedded\u202C \u202Bright\u202C \u202Doverride\u202C \u2066x\u2069 \u2068y\u2069'), 'Isolated embedded right override x y');
  assert.equal(subject('Subject\u2028line\u0085sep\u000bvt\u2029end\r\nBcc: x@evil.test\tz'), 'Subject line sep vt end Bcc: x@evil.test z');
  // A category's subject template takes `data` as sent: made one line too.
  const category: NotificationCategory = { name: 'x', description: 'x', email: { subject: 'Order {{data.order}}' } };
  assert.equal(renderEmail(category, row({ data: { order: 'A\u202E17\n\nBcc: x' } }), links).subject, 'Order A17 Bcc: x');
  assert.equal(subject('Ordinary: café, 日本語, 👩‍💻 and العربية'), 'Ordinary: café, 日本語, 👩‍💻 and العربية');
});

test('a template with text and no HTML is sent as text only; a translation uses its own parts, never the untranslated ones', () => {
  const n = row({ title: 'Shipped', data: { order: 'A-17' } });
  const textOnly = renderEmail({ name: 'x', description: 'x', email: { text: 'Order {{data.order}} left.' } }, n, links);
  assert.deepEqual(textOnly, { subject: 'Shipped', text: 'Order A-17 left.' });

  const category: NotificationCategory = {
    name: 'shop.order-shipped',
    description: 'x',
    email: { subject: 'Order {{data.order}} shipped', text: 'Order {{data.order}} is on its way.', html: '<p>Order {{data.order}} is on its way.</p>', translations: { fr: { text: 'La commande {{data.order}} est en route.' } } },
  };
  assert.deepEqual(renderEmail(category, n, links, 'fr-CA'), { subject: 'Shipped', text: 'La commande A-17 est en route.' }, 'no English subject or HTML beside the French text');
  assert.deepEqual(renderEmail(category, n, links, 'en'), { subject: 'Order A-17 shipped', text: 'Order A-17 is on its way.', html: '<p>Order A-17 is on its way.</p>' });
  // No template at all: the default look, both parts.
  const plain = renderEmail(undefined, n, links);
  assert.match(plain.text, /^Shipped$/m);
  assert.match(plain.html ?? '', /<h2[^>]*>Shipped<\/h2>/);
});

test('templates are Mustache: an inverted section shows when a value is missing, a dotted name reaches into nested data, an object shows as its JSON', () => {
  const category: NotificationCategory = {
    name: 'x',
    description: 'x',
    email: { text: '{{^data.carrier}}No carrier yet.{{/data.carrier}}{{#data.carrier}}By {{data.carrier.name}} ({{data.carrier}}).{{/data.carrier}}' },
  };
  assert.equal(renderEmail(category, row({ data: {} }), links).text, 'No carrier yet.');
  assert.equal(renderEmail(category, row({ data: { carrier: { name: 'Post' } } }), links).text, 'By Post ({"name":"Post"}).');
});

test('an object or a list shows as its JSON unescaped too ({{{x}}}, {{&x}}): never [object Object]', () => {
  const category: NotificationCategory = {
    name: 'x',
    description: 'x',
    email: { subject: 'Items {{{data.items}}}', text: '{{{data.carrier}}} {{&data.items}} {{#data.items}}[{{{.}}}]{{/data.items}}', html: '<pre>{{{data.carrier}}}</pre><p>{{data.carrier}}</p>' },
  };
  const mail = renderEmail(category, row({ data: { carrier: { name: 'P&O' }, items: [{ sku: 'a' }, 'b'] } }), links);
  assert.equal(mail.subject, 'Items [{"sku":"a"},"b"]');
  assert.equal(mail.text, '{"name":"P&O"} [{"sku":"a"},"b"] [{"sku":"a"}][b]');
  assert.equal(mail.html, '<pre>{"name":"P&O"}</pre><p>{&#34;name&#34;:&#34;P&#38;O&#34;}</p>', 'unescaped as the author asked; escaped with {{x}}');
  // A missing value is still nothing, a string or a number itself.
  assert.equal(renderEmail(category, row({ data: { carrier: 'Post', items: 3 } }), links).text, 'Post 3 [3]');
});

test('a value is HTML-escaped in the HTML part, as it is in the subject and the text part; {{{x}}} is the template author\'s unescaped HTML', () => {
  const category: NotificationCategory = { name: 'x', description: 'x', email: { subject: 'Re: {{data.v}}', text: 'Said: {{data.v}}', html: '<p title="{{data.v}}">{{data.v}}</p>{{{data.markup}}}' } };
  const v = `<script>alert("1")</script> & 'x'`;
  const mail = renderEmail(category, row({ data: { v, markup: '<b>bold</b>' } }), links);
  assert.equal(mail.html, '<p title="&#60;script&#62;alert(&#34;1&#34;)&#60;/script&#62; &#38; &#39;x&#39;">&#60;script&#62;alert(&#34;1&#34;)&#60;/script&#62; &#38; &#39;x&#39;</p><b>bold</b>');
  assert.equal(mail.text, `Said: ${v}`);
  assert.equal(mail.subject, `Re: ${v}`);
});

test('the data fields a template needs are those it names outside a section or an inverted section', () => {
  const category: NotificationCategory = {
    name: 'x',
    description: 'x',
    email: {
      subject: 'Order {{data.order.id}}',
      text: '{{#data.carrier}}Track {{data.tracking}}{{/data.carrier}}{{^data.gift}}Paid {{data.price}}{{/data.gift}}',
      html: '{{{data.note}}}',
      translations: { fr: { text: 'Pour {{ data.customer }}' } },
    },
  };
  assert.deepEqual(missingVariables(category, {}).sort(), ['customer', 'note', 'order']);
  assert.deepEqual(missingVariables(category, { order: { id: 1 }, note: '', customer: 'Ana' }), []);
});

test('a template Mustache cannot read stops the start, naming where it is', () => {
  const config = join(tmpdir(), `parley-notifications-bad-${process.pid}.json`);
  writeFileSync(config, JSON.stringify({ categories: [{ name: 'shop.order-shipped', description: 'x', email: { text: '{{#data.carrier}}Carrier: {{data.carrier}}' } }] }));
  assert.throws(
    () => loadConfig({ PARLEY_DATA_DIR: 'memory://', NOTIFICATIONS_CONFIG: config }),
    (err: Error) => err instanceof ConfigError && /NOTIFICATIONS_CONFIG categories\.0\.email\.text: not a Mustache template: Unclosed section "data\.carrier"/.test(err.message),
  );
});
