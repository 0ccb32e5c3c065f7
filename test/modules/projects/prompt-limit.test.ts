import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

for (const backend of backends()) {
  describe(`prompts per project [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend, env: { PROJECTS_MAX_PROMPTS: '2' } });
    });
    after(() => t.close());

    const newProject = async (u: TestUser, body: Record<string, unknown> = { name: 'Agent' }) => {
      const res = await t.api('POST', '/v1/projects', { token: u.accessToken, body });
      assert.equal(res.status, 201, res.text);
      return res.body.id as string;
    };
    const add = (u: TestUser, projectId: string, name: string) => t.api('POST', `/v1/projects/${projectId}/prompts`, { token: u.accessToken, body: { name, content: `Be ${name}.` } });
    const held = async (u: TestUser, projectId: string) => (await t.api('GET', `/v1/projects/${projectId}/prompts?limit=100`, { token: u.accessToken })).body.data.length;

    test('a project holds at most PROJECTS_MAX_PROMPTS prompts (2 here); one more is 409 prompt_limit and stores nothing; a deleted one frees its place', async () => {
      const u = await createUser(t);
      const projectId = await newProject(u);
      const first = await add(u, projectId, 'formal');
      assert.equal(first.status, 201, first.text);
      assert.equal((await add(u, projectId, 'casual')).status, 201);
      const refused = await add(u, projectId, 'terse');
      assert.equal(refused.status, 409, refused.text);
      assert.equal(refused.body.code, 'prompt_limit');
      assert.match(refused.headers.get('content-type') ?? '', /application\/problem\+json/);
      assert.equal(await held(u, projectId), 2, 'the refused creation stored nothing');
      assert.equal((await add(u, await newProject(u), 'formal')).status, 201, 'the cap is per project');

      assert.equal((await t.api('DELETE', `/v1/projects/${projectId}/prompts/${first.body.id}`, { token: u.accessToken })).status, 204);
      assert.equal((await add(u, projectId, 'terse')).status, 201, 'a deleted prompt no longer counts');
      assert.equal((await add(u, projectId, 'verbose')).status, 409);
    });

    test('the prompt a project is created with counts', async () => {
      const u = await createUser(t);
      const projectId = await newProject(u, { name: 'Agent', systemPrompt: 'Be brief.' });
      assert.equal((await add(u, projectId, 'formal')).status, 201);
      assert.equal((await add(u, projectId, 'casual')).status, 409);
    });

    test('creations side by side leave exactly the cap', async () => {
      const u = await createUser(t);
      const projectId = await newProject(u);
      const raced = await Promise.all(Array.from({ length: 8 }, (_, i) => add(u, projectId, `racer ${i}`)));
      assert.deepEqual(raced.map((r) => r.status).sort(), [201, 201, ...Array(6).fill(409)], raced.map((r) => r.text).join('\n'));
      assert.equal(await held(u, projectId), 2);
    });
  });
}
