import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

for (const backend of backends()) {
  describe(`project prompts [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend });
    });
    after(() => t.close());

    const project = async (u: TestUser, body: Record<string, unknown> = { name: 'Agent' }) => {
      const res = await t.api('POST', '/v1/projects', { token: u.accessToken, body });
      assert.equal(res.status, 201, res.text);
      return res.body;
    };
    const prompt = async (u: TestUser, projectId: string, body: Record<string, unknown>) => {
      const res = await t.api('POST', `/v1/projects/${projectId}/prompts`, { token: u.accessToken, body });
      assert.equal(res.status, 201, res.text);
      return res.body;
    };

    test('add, list, read, rewrite and delete prompts', async () => {
      const u = await createUser(t);
      const p = await project(u);
      const a = await prompt(u, p.id, { name: ' Formal ', content: 'Be formal.' });
      assert.equal(a.name, 'Formal');
      assert.equal(a.projectId, p.id);
      assert.equal(a.active, false);
      const b = await prompt(u, p.id, { name: 'Casual', content: 'Be casual.' });
      const list = await t.api('GET', `/v1/projects/${p.id}/prompts`, { token: u.accessToken });
      assert.deepEqual(list.body.data.map((x: { id: string }) => x.id), [b.id, a.id]);
      assert.deepEqual((await t.api('GET', `/v1/projects/${p.id}/prompts/${a.id}`, { token: u.accessToken })).body, a);

      const changed = await t.api('PATCH', `/v1/projects/${p.id}/prompts/${a.id}`, { token: u.accessToken, body: { content: 'Be very formal.' } });
      assert.equal(changed.status, 200, changed.text);
      assert.equal(changed.body.content, 'Be very formal.');
      assert.equal(changed.body.name, 'Formal');

      assert.equal((await t.api('DELETE', `/v1/projects/${p.id}/prompts/${b.id}`, { token: u.accessToken })).status, 204);
      const gone = await t.api('GET', `/v1/projects/${p.id}/prompts/${b.id}`, { token: u.accessToken });
      assert.equal(gone.status, 404);
      assert.equal(gone.body.code, 'prompt_not_found');
    });

    test('names are unique within a project', async () => {
      const u = await createUser(t);
      const p = await project(u);
      const other = await project(u, { name: 'Other' });
      const a = await prompt(u, p.id, { name: 'One', content: '1' });
      await prompt(u, p.id, { name: 'Two', content: '2' });
      await prompt(u, other.id, { name: 'One', content: 'same name, other project' });
      const dup = await t.api('POST', `/v1/projects/${p.id}/prompts`, { token: u.accessToken, body: { name: 'One', content: 'x' } });
      assert.equal(dup.status, 409);
      assert.equal(dup.body.code, 'prompt_name_taken');
      const rename = await t.api('PATCH', `/v1/projects/${p.id}/prompts/${a.id}`, { token: u.accessToken, body: { name: 'Two' } });
      assert.equal(rename.status, 409);
      assert.equal(rename.body.code, 'prompt_name_taken');
      const same = await t.api('PATCH', `/v1/projects/${p.id}/prompts/${a.id}`, { token: u.accessToken, body: { name: 'One' } });
      assert.equal(same.status, 200, 'keeping its own name is fine');
    });

    test('activate through the endpoint or PATCH activePromptId; the project shows it', async () => {
      const u = await createUser(t);
      const p = await project(u);
      const a = await prompt(u, p.id, { name: 'A', content: 'prompt A' });
      const b = await prompt(u, p.id, { name: 'B', content: 'prompt B', activate: true });
      assert.equal(b.active, true);
      let got = (await t.api('GET', `/v1/projects/${p.id}`, { token: u.accessToken })).body;
      assert.equal(got.activePromptId, b.id);
      assert.equal(got.activePrompt.content, 'prompt B');

      const activated = await t.api('POST', `/v1/projects/${p.id}/prompts/${a.id}/activate`, { token: u.accessToken });
      assert.equal(activated.status, 200, activated.text);
      assert.equal(activated.body.activePromptId, a.id);
      assert.equal(activated.body.activePrompt.content, 'prompt A');
      const listed = (await t.api('GET', `/v1/projects/${p.id}/prompts`, { token: u.accessToken })).body.data;
      assert.deepEqual(listed.map((x: { name: string; active: boolean }) => [x.name, x.active]), [['B', false], ['A', true]]);

      const patched = await t.api('PATCH', `/v1/projects/${p.id}`, { token: u.accessToken, body: { activePromptId: b.id } });
      assert.equal(patched.body.activePrompt.id, b.id);
      const cleared = await t.api('PATCH', `/v1/projects/${p.id}`, { token: u.accessToken, body: { activePromptId: null } });
      assert.equal(cleared.body.activePromptId, null);
      assert.equal(cleared.body.activePrompt, null);
      got = (await t.api('GET', '/v1/projects', { token: u.accessToken })).body.data.find((x: { id: string }) => x.id === p.id);
      assert.equal(got.activePrompt, null);
    });

    test("a prompt of another project cannot be made active", async () => {
      const u = await createUser(t);
      const p = await project(u);
      const other = await project(u, { name: 'Other' });
      const foreign = await prompt(u, other.id, { name: 'Foreign', content: 'not yours' });
      const viaPatch = await t.api('PATCH', `/v1/projects/${p.id}`, { token: u.accessToken, body: { activePromptId: foreign.id, name: 'renamed' } });
      assert.equal(viaPatch.status, 404);
      assert.equal(viaPatch.body.code, 'prompt_not_found');
      const viaActivate = await t.api('POST', `/v1/projects/${p.id}/prompts/${foreign.id}/activate`, { token: u.accessToken });
      assert.equal(viaActivate.status, 404);
      const after_ = (await t.api('GET', `/v1/projects/${p.id}`, { token: u.accessToken })).body;
      assert.equal(after_.activePromptId, null);
      assert.equal(after_.name, 'Agent', 'the refused PATCH changed nothing');
    });

    test('deleting the active prompt leaves the project without one', async () => {
      const u = await createUser(t);
      const p = await project(u, { name: 'P', systemPrompt: 'original' });
      assert.equal((await t.api('DELETE', `/v1/projects/${p.id}/prompts/${p.activePromptId}`, { token: u.accessToken })).status, 204);
      const got = (await t.api('GET', `/v1/projects/${p.id}`, { token: u.accessToken })).body;
      assert.equal(got.activePromptId, null);
      assert.equal(got.activePrompt, null);
    });

    test('bad prompt input is a 400 and stores nothing', async () => {
      const u = await createUser(t);
      const p = await project(u);
      for (const body of [{}, { name: 'x' }, { content: 'x' }, { name: '', content: 'x' }, { name: 'x', content: '' }, { name: 'x', content: 'c'.repeat(100_001) }, { name: 'n'.repeat(101), content: 'x' }, { name: 'x', content: 5 }, { name: 'x', content: 'y', activate: 'yes' }]) {
        const res = await t.api('POST', `/v1/projects/${p.id}/prompts`, { token: u.accessToken, body });
        assert.equal(res.status, 400, JSON.stringify(body).slice(0, 80));
        assert.equal(res.body.code, 'validation_failed');
      }
      assert.deepEqual((await t.api('GET', `/v1/projects/${p.id}/prompts`, { token: u.accessToken })).body.data, []);
      const big = await prompt(u, p.id, { name: 'big', content: 'c'.repeat(100_000) });
      assert.equal(big.content.length, 100_000);
    });

    test('forGeneration resolves the active prompt and settings; undefined for others', async () => {
      const u = await createUser(t);
      const stranger = await createUser(t);
      const p = await project(u, { name: 'Gen', model: 'openai:gpt-4o', fallbackModels: ['anthropic:claude-3-5-haiku'], temperature: 0.2, maxTokens: 500, tools: ['fetch_url'], toolApprovals: ['fetch_url'], maxToolSteps: 3, sandboxTimeoutMs: 200, systemPrompt: 'Be brief.' });
      assert.deepEqual(await t.services.projects.forGeneration(u.id, p.id), {
        systemPrompt: 'Be brief.',
        model: 'openai:gpt-4o',
        fallbackModels: ['anthropic:claude-3-5-haiku'],
        temperature: 0.2,
        maxTokens: 500,
        tools: ['fetch_url'],
        toolApprovals: ['fetch_url'],
        maxToolSteps: 3,
        sandboxTimeoutMs: 200,
        sandboxMemoryMb: null,
      });
      await t.api('PATCH', `/v1/projects/${p.id}`, { token: u.accessToken, body: { activePromptId: null } });
      assert.equal((await t.services.projects.forGeneration(u.id, p.id))!.systemPrompt, null);
      assert.equal(await t.services.projects.forGeneration(stranger.id, p.id), undefined);
      assert.equal(await t.services.projects.forGeneration(u.id, '00000000-0000-7000-8000-000000000000'), undefined);
    });
  });
}
