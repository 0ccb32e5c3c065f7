import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AnyBusEvent } from '../../../src/platform/bus/events.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { observeEvents } from '../../support/bus.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser } from '../../support/factories.ts';

for (const backend of backends()) {
  describe(`user events [${backend}]`, () => {
    let t: TestApp;
    let seen: Array<AnyBusEvent<'user.updated'>>;
    let close: () => Promise<void>;
    before(async () => {
      t = await startApp({ backend, worker: false });
      ({ events: seen, close } = await observeEvents(t.deps.bus, ['user.updated']));
    });
    after(async () => {
      await close();
      await t.close();
    });

    test('a profile or preferences change announces user.updated with what changed; a refused one does not', async () => {
      const u = await createUser(t);
      assert.equal((await t.api('PATCH', '/v1/users/me', { token: u.accessToken, body: { name: 'New name' } })).status, 200);
      assert.equal((await t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, body: { theme: 'dark' } })).status, 200);
      assert.equal((await t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, raw: '{"theme":' })).status, 400);
      await eventually(() => assert.equal(seen.filter((e) => e.payload.userId === u.id).length, 2));
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(
        seen.filter((e) => e.payload.userId === u.id).map((e) => e.payload.fields),
        [['name'], ['preferences']],
      );
    });
  });
}
