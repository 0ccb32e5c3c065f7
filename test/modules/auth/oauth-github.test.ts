import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { eq } from 'drizzle-orm';
import { randomPKCECodeVerifier } from 'openid-client';
import { loadConfig } from '../../../src/config.ts';
import { createOAuthProviders } from '../../../src/modules/auth/oauth/providers.ts';
import { oauthFlows } from '../../../src/modules/auth/schema.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, uniqueEmail } from '../../support/factories.ts';
import { startFakeGitHub, type FakeGitHub, type GitHubAccount } from '../../support/fake-github.ts';
import { startMockOidc, type MockOidc } from '../../support/mock-oidc.ts';
import { authorizeAtProvider, signInWith } from '../../support/oauth-flow.ts';

const account = (over: Partial<GitHubAccount> = {}): GitHubAccount => ({
  id: randomInt(1, 2 ** 40),
  login: 'octocat',
  name: 'The Octocat',
  email: null,
  emails: [{ email: uniqueEmail('gh'), primary: true, verified: true }],
  ...over,
});

for (const backend of backends()) {
  describe(`oauth sign-in with GitHub [${backend}]`, () => {
    let t: TestApp;
    let gh: FakeGitHub;
    let idp: MockOidc;
    before(async () => {
      gh = await startFakeGitHub();
      idp = await startMockOidc();
      t = await startApp({ backend, env: { ...gh.env, ...idp.env } });
    });
    after(async () => {
      await t.close();
      await gh.close();
      await idp.close();
    });

    test('both providers are listed', async () => {
      const list = await t.api('GET', '/v1/auth/providers');
      assert.deepEqual(list.body.data.map((p: { id: string }) => p.id).sort(), ['github', 'oidc']);
    });

    test('signs up with the primary verified email, then finds the user by GitHub id', async () => {
      const primary = uniqueEmail('primary');
      const who = account({ emails: [{ email: uniqueEmail('other'), primary: false, verified: true }, { email: primary, primary: true, verified: true }] });
      gh.state.account = who;
      const first = await signInWith(t, 'github');
      assert.equal(first.status, 200, first.text);
      assert.equal(first.body.user.email, primary);
      assert.equal(first.body.user.emailVerified, true);
      assert.equal(first.body.user.name, 'The Octocat');

      const sent = gh.state.tokenRequests.at(-1)!;
      assert.match(sent.accept ?? '', /application\/json/, 'asks for JSON, or GitHub answers form-encoded');
      assert.ok(sent.params.code_verifier, 'PKCE verifier sent (the fake checks it against the challenge)');
      assert.equal(sent.params.redirect_uri, 'http://parley.test/v1/auth/oauth/github/callback');

      gh.state.account = { ...who, login: 'renamed', name: null };
      const again = await signInWith(t, 'github');
      assert.equal(again.body.user.id, first.body.user.id);
      const sessions = await t.api('GET', '/v1/auth/sessions', { token: again.body.accessToken });
      assert.ok(sessions.body.data.every((s: { method: string }) => s.method === 'oauth:github'));
    });

    test('links to a verified password account by a verified GitHub email', async () => {
      const u = await createUser(t);
      await t.services.users.markEmailVerified(u.id);
      gh.state.account = account({ emails: [{ email: u.email, primary: true, verified: true }] });
      const res = await signInWith(t, 'github');
      assert.equal(res.status, 200);
      assert.equal(res.body.user.id, u.id);
    });

    test('unverified GitHub emails, and the public profile email, never link', async () => {
      const u = await createUser(t);
      await t.services.users.markEmailVerified(u.id);
      for (const who of [
        account({ emails: [{ email: u.email, primary: true, verified: false }] }),
        account({ email: u.email, emails: [] }),
      ]) {
        gh.state.account = who;
        const res = await signInWith(t, 'github');
        assert.equal(res.status, 409);
        assert.equal(res.body.code, 'email_not_verified_by_provider');
      }
      gh.state.account = account({ emails: [{ email: uniqueEmail('fresh'), primary: true, verified: false }] });
      const fresh = await signInWith(t, 'github');
      assert.equal(fresh.status, 200);
      assert.equal(fresh.body.user.emailVerified, false);
    });

    test("GitHub's 200-with-error for a bad code or a wrong PKCE verifier is a 400", async () => {
      gh.state.account = account();
      const callback = await authorizeAtProvider(t, 'github');
      const res = await t.api('GET', callback.replace(/code=[^&]+/, 'code=not-a-code'));
      assert.equal(res.status, 400);
      assert.equal(res.body.code, 'oauth_code_rejected');

      const other = await authorizeAtProvider(t, 'github');
      const state = new URL(other, 'http://x').searchParams.get('state')!;
      await t.deps.db.update(oauthFlows).set({ codeVerifier: randomPKCECodeVerifier() }).where(eq(oauthFlows.state, state));
      assert.equal((await t.api('GET', other)).body.code, 'oauth_code_rejected');
    });

    test("a flow started with one provider cannot finish at another's callback", async () => {
      const callback = await authorizeAtProvider(t, 'github');
      const res = await t.api('GET', callback.replace('/github/', '/oidc/'));
      assert.equal(res.status, 400);
      assert.equal(res.body.code, 'invalid_oauth_state');
    });
  });
}

test('plain-http provider endpoints are a config error unless explicitly allowed', () => {
  const env = { GITHUB_CLIENT_ID: 'a', GITHUB_CLIENT_SECRET: 'b', GITHUB_BASE_URL: 'http://github.local' };
  assert.throws(() => createOAuthProviders(loadConfig(env).auth.oauth), /not https/);
  assert.equal(createOAuthProviders(loadConfig({ ...env, OAUTH_ALLOW_INSECURE_HTTP: 'true' }).auth.oauth).size, 1);
  assert.equal(createOAuthProviders(loadConfig({ OIDC_ISSUER: 'https://id.example', OIDC_CLIENT_ID: 'a', OIDC_CLIENT_SECRET: 'b' }).auth.oauth).size, 1);
});
