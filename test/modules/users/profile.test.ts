import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser } from '../../support/factories.ts';

for (const backend of backends()) {
  describe(`users: profile [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend, worker: false });
    });
    after(() => t.close());

    test('a name is one line: line breaks, control characters and direction overrides are a 400 naming the field; Unicode names are kept', async () => {
      const u = await createUser(t, { name: 'Before' });
      const patch = (name: unknown) => t.api('PATCH', '/v1/users/me', { token: u.accessToken, body: { name } });
      for (const name of ['two\nlines', 'a\r\nb', 'tab\there', 'next\u0085line', 'line\u2028sep', 'para\u2029sep', 'bell\u0007', 'Invoice \u202Efdp.exe', 'iso\u2067late\u2069', 'emb\u202Bed\u202C']) {
        const res = await patch(name);
        assert.equal(res.status, 400, JSON.stringify(name));
        assert.equal(res.body.code, 'validation_failed');
        assert.deepEqual(res.body.errors.map((e: { path: string }) => e.path), ['/name'], JSON.stringify(res.body.errors));
      }
      assert.equal((await t.api('GET', '/v1/users/me', { token: u.accessToken })).body.name, 'Before');
      for (const name of ['Zoë Ångström-Ñúñez', '王小明', 'Priya 👩🏽‍🚀', 'مريم']) {
        const res = await patch(name);
        assert.equal(res.status, 200, res.text);
        assert.equal(res.body.name, name);
      }
      // Spaces around it are trimmed, as before; null clears it.
      assert.equal((await patch('  Ada Lovelace \n')).body.name, 'Ada Lovelace');
      assert.equal((await patch(null)).body.name, null);
    });
  });
}
