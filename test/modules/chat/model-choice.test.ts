import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backends } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { answerRequests, chatAs, useChat } from './generation-fixture.ts';

// The fixture's DEFAULT_MODEL is openai:gpt-4o-mini; the fake OpenAI answers for any model name and records which was asked for.
for (const backend of backends()) {
  describe(`chat: which model answers [${backend}]`, () => {
    const f = useChat(backend);

    async function userPreferring(model: string | null): Promise<TestUser> {
      const u = await createUser(f.t);
      const res = await f.t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, body: { defaultModel: model } });
      assert.equal(res.status, 200, res.text);
      return u;
    }

    async function projectWith(u: TestUser, model: string | null): Promise<string> {
      const res = await f.t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'P', model } });
      assert.equal(res.status, 201, res.text);
      return res.body.id;
    }

    /** Sends one message and returns the model the upstream was asked for, checking the stored answer says the same. */
    async function askedFor(u: TestUser, conversation: Record<string, unknown>, body: Record<string, unknown> = {}): Promise<string> {
      const chat = chatAs(f.t, u);
      const c = await chat.conversation(conversation);
      const res = await chat.send(c, { content: 'Hi', ...body });
      assert.equal(res.status, 201, res.text);
      const requests = answerRequests(f.openai);
      const model = requests[requests.length - 1]!.body.model;
      assert.equal(res.body.model, model);
      return model;
    }

    test('no preference, no project: the deployment default', async () => {
      const u = await userPreferring(null);
      assert.equal(await askedFor(u, { title: 'T' }), 'gpt-4o-mini');
    });

    test("the user's defaultModel over the deployment default, with or without a project that names none", async () => {
      const u = await userPreferring('openai:gpt-4o');
      assert.equal(await askedFor(u, { title: 'T' }), 'gpt-4o');
      assert.equal(await askedFor(u, { title: 'T', projectId: await projectWith(u, null) }), 'gpt-4o');
    });

    test("the project's model over the user's defaultModel", async () => {
      const u = await userPreferring('openai:gpt-4o');
      assert.equal(await askedFor(u, { title: 'T', projectId: await projectWith(u, 'openai:gpt-4.1') }), 'gpt-4.1');
    });

    test("the conversation's model over the user's defaultModel", async () => {
      const u = await userPreferring('openai:gpt-4o');
      assert.equal(await askedFor(u, { title: 'T', model: 'openai:gpt-4.1-mini' }), 'gpt-4.1-mini');
    });

    test("the request's model over the project's and the user's", async () => {
      const u = await userPreferring('openai:gpt-4o');
      const projectId = await projectWith(u, 'openai:gpt-4.1');
      assert.equal(await askedFor(u, { title: 'T', projectId }, { model: 'openai:gpt-5-mini' }), 'gpt-5-mini');
    });

    test('regenerating and editing follow the preference too, and a changed preference counts from the next turn', async () => {
      const u = await userPreferring('openai:gpt-4o');
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      const first = await chat.send(c, { content: 'Hi' });
      assert.equal(first.body.model, 'gpt-4o');
      await f.t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, body: { defaultModel: 'openai:gpt-4.1' } });
      const again = await chat.regenerate(c, first.body.id);
      assert.equal(again.status, 201, again.text);
      assert.equal(again.body.model, 'gpt-4.1');
      const edited = await chat.send(c, { content: 'Hello instead', parentId: null });
      assert.equal(edited.status, 201, edited.text);
      assert.equal(edited.body.model, 'gpt-4.1');
      assert.deepEqual(answerRequests(f.openai).map((r) => r.body.model), ['gpt-4o', 'gpt-4.1', 'gpt-4.1']);
    });

    test('an unknown model in the preference gets the error an unknown model in the request gets, and writes nothing', async () => {
      const u = await userPreferring(null);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      const inRequest = await chat.send(c, { content: 'Hi', model: 'nowhere:gpt-nope' });
      await f.t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, body: { defaultModel: 'nowhere:gpt-nope' } });
      const inPreference = await chat.send(c, { content: 'Hi' });
      for (const res of [inRequest, inPreference]) {
        assert.equal(res.status, 400, res.text);
        assert.equal(res.body.code, 'unknown_model');
        assert.match(res.headers.get('content-type') ?? '', /problem\+json/);
      }
      assert.match(inPreference.body.detail, /nowhere:gpt-nope.*preferences/);
      assert.deepEqual((await chat.branch(c)).data, []);
      assert.equal(f.openai.requests.length, 0);
      // A model named closer to the answer does not depend on the preference, so the bad preference is not in the way.
      assert.equal((await chat.send(c, { content: 'Hi', model: 'openai:gpt-4o' })).status, 201);
    });

    test('the OpenAI-compatible gateway requires model: the preference does not stand in for it', async () => {
      const u = await userPreferring('openai:gpt-4o');
      const res = await f.t.api('POST', '/v1/chat/completions', { token: u.accessToken, body: { messages: [{ role: 'user', content: 'Hi' }] } });
      assert.equal(res.status, 400, res.text);
      assert.equal(f.openai.requests.length, 0);
    });
  });
}
