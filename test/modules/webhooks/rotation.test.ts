import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { startReceiver, verifies, type Received } from './receiver.ts';

// Loopback receivers need private addresses allowed.
const ENV = { WEBHOOKS_ALLOW_PRIVATE: 'true', WEBHOOKS_RETRY_SCALE: '0.001' };

/** The request as it would arrive with only this one of its signatures. */
const withSignature = (r: Received, signature: string): Received => ({ ...r, headers: { ...r.headers, 'webhook-signature': signature } });
const signaturesOf = (r: Received) => String(r.headers['webhook-signature']).split(' ');

for (const backend of backends()) {
  describe(`webhooks: secret rotations [${backend}]`, () => {
    let t: TestApp;
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    let u: TestUser;

    before(async () => {
      receiver = await startReceiver({});
      t = await startApp({ backend, env: ENV });
      u = await createUser(t);
    });
    after(async () => {
      await t.close();
      await receiver.close();
    });

    const register = async (path: string) => {
      const res = await t.api('POST', '/v1/webhooks/endpoints', { token: u.accessToken, body: { url: receiver.url + path, events: ['file.ready'] } });
      assert.equal(res.status, 201, res.text);
      return res.body as { id: string; secret: string };
    };
    const rotate = async (id: string) => {
      const res = await t.api('POST', `/v1/webhooks/endpoints/${id}/rotate-secret`, { token: u.accessToken });
      assert.equal(res.status, 200, res.text);
      return res.body as { secret: string; secretRotatedUntil: string | null };
    };
    const rotatedUntil = async (id: string) => (await t.api('GET', `/v1/webhooks/endpoints/${id}`, { token: u.accessToken })).body.secretRotatedUntil as string | null;
    /** A test send to the endpoint, as its receiver got it (the n-th request on `path`). */
    const delivered = async (id: string, path: string, n: number) => {
      assert.equal((await t.api('POST', `/v1/webhooks/endpoints/${id}/test`, { token: u.accessToken })).status, 202);
      return eventually(() => {
        const got = receiver.on(path);
        assert.equal(got.length, n);
        return got[n - 1]!;
      });
    };
    /** Writes a replaced secret's expiry (by its place, newest first) straight into the row. */
    const expire = (id: string, place: number, until: string) =>
      t.deps.db.execute(sql`update webhook_endpoints set previous_secrets = jsonb_set(previous_secrets, ${`{${place},until}`}::text[], to_jsonb(${until}::text)) where id = ${id}`);
    const storedCount = async (id: string) => {
      const result = (await t.deps.db.execute(sql`select jsonb_array_length(previous_secrets) as n from webhook_endpoints where id = ${id}`)) as unknown as { rows: Array<{ n: number }> };
      return Number(result.rows[0]!.n);
    };

    test('rotating twice within the grace period: A, B and C each sign (newest first), each until its own expiry', async () => {
      const { id, secret: a } = await register('/twice');
      const first = await rotate(id);
      const second = await rotate(id);
      const [b, c] = [first.secret, second.secret];
      assert.equal(new Set([a, b, c]).size, 3);
      assert.ok(first.secretRotatedUntil && second.secretRotatedUntil);
      assert.ok(second.secretRotatedUntil > first.secretRotatedUntil, 'the latest expiry: the one B took when it was replaced');
      assert.equal(await rotatedUntil(id), second.secretRotatedUntil);

      const r = await delivered(id, '/twice', 1);
      const signatures = signaturesOf(r);
      assert.equal(signatures.length, 3, signatures.join(' '));
      for (const [i, [name, secret]] of [['C', c], ['B', b], ['A', a]].entries()) {
        assert.ok(verifies(secret!, withSignature(r, signatures[i]!)), `signature ${i + 1} verifies with ${name}`);
        assert.ok(verifies(secret!, r), `the header verifies with ${name}`);
      }
    });

    test('a replaced secret past its expiry no longer signs, nor counts in secretRotatedUntil, and the next rotation forgets it', async () => {
      const { id, secret: a } = await register('/expired');
      const { secret: b } = await rotate(id);
      const { secret: c, secretRotatedUntil } = await rotate(id);

      await expire(id, 1, new Date(Date.now() - 1000).toISOString());
      const r = await delivered(id, '/expired', 1);
      assert.equal(signaturesOf(r).length, 2);
      assert.ok(verifies(c, r) && verifies(b, r), 'C and B sign');
      assert.ok(!verifies(a, r), 'A, expired, does not');
      assert.equal(await rotatedUntil(id), secretRotatedUntil, "B's expiry");

      await expire(id, 0, new Date(Date.now() - 1000).toISOString());
      const alone = await delivered(id, '/expired', 2);
      assert.deepEqual([signaturesOf(alone).length, verifies(c, alone), verifies(b, alone)], [1, true, false]);
      assert.equal(await rotatedUntil(id), null);

      const { secret: d } = await rotate(id);
      assert.equal(await storedCount(id), 1, 'only C is kept');
      const last = await delivered(id, '/expired', 3);
      assert.deepEqual([signaturesOf(last).length, verifies(d, last), verifies(c, last)], [2, true, true]);
    });

    test('at most 5 replaced secrets sign: after 6 rotations, the current one and the 5 before it; the first stops', async () => {
      const { id, secret: first } = await register('/bounded');
      const secrets: string[] = [];
      for (let i = 0; i < 6; i++) secrets.push((await rotate(id)).secret);
      assert.equal(await storedCount(id), 5);

      const r = await delivered(id, '/bounded', 1);
      const signatures = signaturesOf(r);
      assert.equal(signatures.length, 6, signatures.join(' '));
      for (const [i, secret] of secrets.toReversed().entries()) assert.ok(verifies(secret, withSignature(r, signatures[i]!)), `signature ${i + 1} verifies with secret ${6 - i}`);
      assert.ok(!verifies(first, r), 'the first secret, the sixth replaced, no longer signs');
    });
  });
}
