import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startApp, type TestApp } from '../support/app.ts';
import { createUser, type TestUser } from '../support/factories.ts';

/**
 * Who may call is settled before the body is read: a caller without a valid
 * credential learns nothing about a route's schema, and costs no parsing.
 * So a bad body from a stranger is a 401, and from a non-admin on an admin
 * route a 403, never a 400.
 */
describe('authentication before validation', () => {
  let t: TestApp;
  let u: TestUser;

  before(async () => {
    t = await startApp();
    u = await createUser(t);
  });
  after(() => t.close());

  const bodies = [
    { name: 'wrong types', raw: '{"title":5,"name":[],"model":7,"messages":"x","reason":false}' },
    { name: 'malformed JSON', raw: '{"title":' },
  ];
  const routes = [
    { method: 'POST', path: '/v1/conversations' },
    { method: 'POST', path: '/v1/projects' },
    { method: 'PATCH', path: '/v1/users/me' },
    { method: 'POST', path: '/v1/api-keys' },
  ];

  for (const b of bodies) {
    for (const r of routes) {
      test(`${r.method} ${r.path} with ${b.name} and no credential is a 401`, async () => {
        const res = await t.api(r.method, r.path, { raw: b.raw });
        assert.equal(res.status, 401, res.text);
        assert.equal(res.body.code, 'unauthorized');
      });
    }

    test(`the gateway with ${b.name} and a bogus key is a 401 in OpenAI's format`, async () => {
      const res = await t.api('POST', '/v1/chat/completions', { token: 'pk_bogus', raw: b.raw });
      assert.equal(res.status, 401, res.text);
      assert.equal(res.body.error.type, 'authentication_error');
    });

    test(`an admin route with ${b.name} from a non-admin is a 403`, async () => {
      const res = await t.api('POST', '/v1/admin/bans', { token: u.accessToken, raw: b.raw });
      assert.equal(res.status, 403, res.text);
      assert.equal(res.body.code, 'admin_required');
    });
  }

  test('a NUL in the URL from a stranger is a 401 too', async () => {
    const res = await t.api('GET', '/v1/search?q=a%00b');
    assert.equal(res.status, 401, res.text);
  });

  test('with a valid credential the same bodies are 400s', async () => {
    const wrong = await t.api('POST', '/v1/conversations', { token: u.accessToken, raw: bodies[0]!.raw });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.code, 'validation_failed');
    const malformed = await t.api('POST', '/v1/conversations', { token: u.accessToken, raw: bodies[1]!.raw });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.code, 'malformed_json');
  });
});
