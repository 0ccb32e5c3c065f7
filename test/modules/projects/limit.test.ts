import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import type { TestUser } from '../../support/factories.ts';
import { checkCap, checkCapRace, type CapCase } from '../../support/per-user-cap.ts';

for (const backend of backends()) {
  describe(`projects per user [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend, env: { PROJECTS_MAX_PER_USER: '2' } });
    });
    after(() => t.close());

    const projects: CapCase = {
      code: 'project_limit',
      create: (u: TestUser, name: string) => t.api('POST', '/v1/projects', { token: u.accessToken, body: { name, systemPrompt: 'Be brief.' } }),
      held: async (u: TestUser) => (await t.api('GET', '/v1/projects?limit=100', { token: u.accessToken })).body.data.length,
      remove: async (u, created) => assert.equal((await t.api('DELETE', `/v1/projects/${created.body.id}`, { token: u.accessToken })).status, 204),
    };

    test('a user holds at most PROJECTS_MAX_PER_USER projects (2 here); one more is 409 project_limit and stores nothing; a deleted one frees its place', () => checkCap(t, projects));

    test('creations side by side leave exactly the cap', () => checkCapRace(t, projects));
  });
}
