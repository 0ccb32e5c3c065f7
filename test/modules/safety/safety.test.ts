import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { and, eq } from 'drizzle-orm';
import { loadConfig } from '../../../src/config.ts';
import { AppError, ConfigError } from '../../../src/errors.ts';
import { createSafety } from '../../../src/modules/safety/service.ts';
import { usageEvents } from '../../../src/modules/usage/schema.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { startFakeModeration, type FakeModeration } from '../../support/fake-moderation.ts';

const DEPLOYMENT_RULES = { blockedTerms: ['deploy-banned'], patterns: ['\\bcard\\s*\\d{4}-\\d{4}\\b'], maxInputChars: 2000, moderationCategories: ['sexual/minors'] };

/** The error a promise rejects with, which must be an AppError. */
async function refusal(promise: Promise<unknown>): Promise<AppError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof AppError, String(err));
    return err;
  }
  assert.fail('expected a refusal');
}

for (const backend of backends()) {
  describe(`safety [${backend}]`, () => {
    let t: TestApp;
    let moderation: FakeModeration;
    let owner: TestUser;
    let projectId: string;

    before(async () => {
      moderation = await startFakeModeration({ apiKey: 'mod-key' });
      moderation.flag('stab you', { violence: 0.97, 'harassment/threatening': 0.81 });
      moderation.flag('borderline', { violence: 0.4 });
      moderation.flag('minorsword', { 'sexual/minors': 0.9 });
      t = await startApp({ backend, worker: false, env: { ...moderation.env, MODERATION_TIMEOUT_MS: '300', SAFETY_RULES: JSON.stringify(DEPLOYMENT_RULES) } });
      owner = await createUser(t);
      const res = await t.api('POST', '/v1/projects', { token: owner.accessToken, body: { name: 'Guarded' } });
      assert.equal(res.status, 201, res.text);
      projectId = res.body.id;
    });
    after(async () => {
      await t.close();
      await moderation.close();
    });

    const scope = (user: TestUser = owner, extra: Record<string, unknown> = {}) => ({ userId: user.id, projectId, ...extra });
    const putRules = (body: unknown, token = owner.accessToken, id = projectId) => t.api('PUT', `/v1/projects/${id}/safety`, { token, body });

    test('a project starts with no rules of its own; PUT replaces them and GET reads them back, terms normalized', async () => {
      const empty = await t.api('GET', `/v1/projects/${projectId}/safety`, { token: owner.accessToken });
      assert.equal(empty.status, 200, empty.text);
      assert.deepEqual(empty.body, { projectId, blockedTerms: [], patterns: [], maxInputChars: null, moderation: { categories: null, thresholds: {} }, moderationEnabled: true, updatedAt: null });
      const put = await putRules({ blockedTerms: ['Forbidden Fruit', 'ｆｏｒｂｉｄｄｅｎ fruit', 'Ass'], patterns: ['secret-\\d+'] });
      assert.equal(put.status, 200, put.text);
      assert.deepEqual(put.body.blockedTerms, ['forbidden fruit', 'ass']);
      const got = await t.api('GET', `/v1/projects/${projectId}/safety`, { token: owner.accessToken });
      assert.deepEqual(got.body, put.body);
      assert.ok(got.body.updatedAt);
    });

    test('blocked terms match whole words, whatever the case, fullwidth letters or invisible characters in between', async () => {
      await putRules({ blockedTerms: ['forbidden fruit', 'ass'] });
      for (const text of ['Try the FORBIDDEN FRUIT.', 'ｆｏｒｂｉｄｄｅｎ ｆｒｕｉｔ', 'for\u200Dbid\u200Bden\u00A0fruit', 'forbid\uFEFFden fru\u00ADit!', 'you ass']) {
        const err = await refusal(t.services.safety.checkInput(scope(), text));
        assert.equal(err.status, 422, text);
        assert.equal(err.code, 'content_flagged');
        assert.deepEqual(err.extra.categories, ['blocked_term'], text);
        assert.equal(err.extra.source, 'project');
        assert.match(String(err.extra.rule), /^blockedTerms\[\d\]$/);
      }
      // Not inside another word (the Scunthorpe problem), and no provider needed for a clean text.
      await t.services.safety.checkInput(scope(), 'a classic forbidden fruitcake, first class');
    });

    test('patterns run with i and u on the normalized text; the deployment rules apply to every project and to turns without one', async () => {
      await putRules({ patterns: ['secret-\\d+'] });
      const own = await refusal(t.services.safety.checkInput(scope(), 'the code is SECRET-１２３'));
      assert.deepEqual({ categories: own.extra.categories, source: own.extra.source, rule: own.extra.rule }, { categories: ['blocked_pattern'], source: 'project', rule: 'patterns[0]' });
      const deployed = await refusal(t.services.safety.checkInput({ userId: owner.id }, 'my Deploy-Banned words'));
      assert.deepEqual({ categories: deployed.extra.categories, source: deployed.extra.source }, { categories: ['blocked_term'], source: 'deployment' });
      const card = await refusal(t.services.safety.checkInput(scope(), 'card 1234-5678 please'));
      assert.equal(card.extra.rule, 'patterns[0]');
      assert.equal(card.extra.source, 'deployment');
    });

    test('the shorter of the deployment and project caps refuses long input with 400 message_too_long', async () => {
      await putRules({ maxInputChars: 50 });
      const err = await refusal(t.services.safety.checkInput(scope(), 'x'.repeat(51)));
      assert.deepEqual([err.status, err.code, err.extra.max], [400, 'message_too_long', 50]);
      await putRules({ maxInputChars: 100_000 });
      const deployment = await refusal(t.services.safety.checkInput(scope(), 'x'.repeat(2001)));
      assert.equal(deployment.extra.max, 2000);
    });

    test('invalid, catastrophic and oversized rules are a 400 naming the entry; nothing is saved', async () => {
      await putRules({ blockedTerms: ['keep'] });
      const cases: Array<[unknown, RegExp]> = [
        [{ patterns: ['(unclosed'] }, /patterns\[0\] is not a valid regular expression/],
        [{ patterns: ['ok', '(a+)+$'] }, /patterns\[1\] is refused: a repeated group/],
        [{ patterns: ['(x|xy)*z'] }, /patterns\[0\] is refused/],
        [{ patterns: ['(a)\\1'] }, /backreferences/],
        [{ patterns: ['\\-'] }, /not a valid regular expression/], // an identity escape the u flag refuses
        [{ blockedTerms: ['\u200B\u200D'] }, /empty once normalized/],
        [{ patterns: Array.from({ length: 51 }, (_, i) => `p${i}`) }, /./],
        [{ patterns: ['x'.repeat(201)] }, /./],
        [{ moderation: { thresholds: { violence: 1.5 } } }, /./],
        [{ surprise: true }, /./],
      ];
      for (const [body, detail] of cases) {
        const res = await putRules(body);
        assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
        assert.match(res.body.detail, detail, JSON.stringify(body));
      }
      const got = await t.api('GET', `/v1/projects/${projectId}/safety`, { token: owner.accessToken });
      assert.deepEqual(got.body.blockedTerms, ['keep']);
      assert.deepEqual(got.body.patterns, []);
    });

    test('safe patterns of everyday shapes are accepted', async () => {
      const patterns = ['(?:cat|dog)s?', '(ab)+c', '\\b\\d{3}-\\d{4}\\b', '(?<year>\\d{4})-\\d{2}', '[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}', '(?<!\\w)sk-[A-Za-z0-9]{20,}', '(\\d+)?x'];
      const res = await putRules({ patterns });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body.patterns, patterns);
      await putRules({});
    });

    test('repeats that can match the same characters one after the other are refused: the probe of 15 s on 30 characters, and its kin', async () => {
      // \d*\d*…x on thirty 1s backtracks for seconds (each repeat multiplies the ways of sharing the text).
      const refused = ['\\d*\\d*\\d*\\d*\\d*\\d*\\d*\\d*\\d*x', 'a*a*b', '.*.*=', '\\w+\\w*!', '[0-9]*\\d+x', '\\d+1\\d+x', '(\\d*)(\\d*)x', '\\d+-?\\d+x', '\\d*(?:x\\d+)?\\d*y', 'a?a?a?a?a?a?a?a?b'];
      for (const pattern of refused) {
        const res = await putRules({ patterns: ['order-\\d{6}', pattern] });
        assert.equal(res.status, 400, `${pattern}: ${res.text}`);
        assert.equal(res.body.code, 'invalid_safety_rules');
        assert.match(res.body.detail, /^patterns\[1\] is refused: .*repeats that can match the same characters/, pattern);
      }
      // Apart when something between must match a character one of them cannot: a dash, a dot only the first takes.
      const patterns = ['\\bcard\\s*\\d{4}-\\d{4}\\b', 'secret-\\d+', '\\d+-\\d+x', '[\\w.]+\\.[a-z]+', '\\bpassword\\s*[:=]\\s*\\S+', '\\d{3}[-.\\s]?\\d{3}[-.\\s]?\\d{4}', '\\$\\d+(?:\\.\\d{2})?', '\\w+\\s+\\w+', '\\s?-?\\s?x'];
      const res = await putRules({ patterns });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body.patterns, patterns);
      await putRules({});
    });

    test('the rules are in the OpenAPI document; a key without the chat scope is refused; deleting the project deletes them', async () => {
      const doc = await t.api('GET', '/openapi.json');
      assert.ok(doc.body.paths['/v1/projects/{id}/safety'].get);
      assert.ok(doc.body.paths['/v1/projects/{id}/safety'].put);
      const user = await createUser(t);
      const key = await t.api('POST', '/v1/api-keys', { token: user.accessToken, body: { name: 'files only', scopes: ['files'] } });
      assert.equal(key.status, 201, key.text);
      const created = await t.api('POST', '/v1/projects', { token: user.accessToken, body: { name: 'Short-lived' } });
      const refused = await t.api('GET', `/v1/projects/${created.body.id}/safety`, { token: key.body.key });
      assert.equal(refused.body.code, 'insufficient_scope');
      assert.equal((await putRules({ blockedTerms: ['gone soon'] }, user.accessToken, created.body.id)).status, 200);
      assert.equal((await t.api('DELETE', `/v1/projects/${created.body.id}`, { token: user.accessToken })).status, 204);
      // Its rules went with it: a turn naming the old id meets the deployment's rules alone.
      await t.services.safety.checkInput({ userId: user.id, projectId: created.body.id }, 'gone soon');
    });

    test("another user's project, a missing one, and no token: 404, 404, 401", async () => {
      const stranger = await createUser(t);
      for (const method of ['GET', 'PUT'] as const) {
        const res = await t.api(method, `/v1/projects/${projectId}/safety`, { token: stranger.accessToken, ...(method === 'PUT' && { body: { blockedTerms: ['mine'] } }) });
        assert.equal(res.status, 404, res.text);
        assert.equal(res.body.code, 'project_not_found');
      }
      const missing = await putRules({}, owner.accessToken, '01900000-0000-7000-8000-000000000000');
      assert.equal(missing.status, 404);
      assert.equal((await t.api('GET', `/v1/projects/${projectId}/safety`)).status, 401);
      assert.deepEqual((await t.api('GET', `/v1/projects/${projectId}/safety`, { token: owner.accessToken })).body.blockedTerms.includes('mine'), false);
    });

    test('flagged by the provider: 422 content_flagged with its categories, audited, an abuse flag, a usage event with source moderation', async () => {
      await putRules({});
      const user = await createUser(t);
      moderation.reset();
      const err = await refusal(t.services.safety.checkInput({ userId: user.id, projectId: null, conversationId: null }, 'I will stab you'));
      assert.equal(err.status, 422);
      assert.equal(err.code, 'content_flagged');
      assert.deepEqual(new Set(err.extra.categories as string[]), new Set(['violence', 'harassment/threatening']));
      assert.equal(err.extra.source, 'provider');
      // The wire request, as OpenAI takes it.
      assert.equal(moderation.requests.length, 1);
      assert.deepEqual(moderation.requests[0]!.body, { model: 'omni-moderation-latest', input: 'I will stab you' });
      assert.equal(moderation.requests[0]!.headers.authorization, 'Bearer mod-key');

      const [entry] = await t.services.audit.list({ limit: 5, userId: user.id, action: 'content.flagged' });
      assert.equal(entry?.metadata.direction, 'input');
      assert.equal(entry?.metadata.source, 'provider');
      const [flag] = await t.services.usage.abuse.list({ limit: 5, userId: user.id });
      assert.equal(flag?.kind, 'content_flagged');
      assert.match(flag!.evidence, /a message flagged by the moderation provider \(.*violence.*\)/);
      assert.doesNotMatch(flag!.evidence, /stab/, 'the text itself is not kept');

      await t.services.usage.recorder.flush();
      const rows = await t.deps.db.select().from(usageEvents).where(and(eq(usageEvents.userId, user.id), eq(usageEvents.source, 'moderation')));
      assert.equal(rows.length, 1);
      assert.deepEqual([rows[0]!.provider, rows[0]!.model, rows[0]!.status, rows[0]!.costMicros], ['moderation', 'omni-moderation-2024-09-26', 'ok', 0]);

      // Admins see it through the API.
      const admin = await createUser(t, { admin: true });
      const listed = await t.api('GET', `/v1/admin/abuse-flags?userId=${user.id}`, { token: admin.accessToken });
      assert.equal(listed.status, 200, listed.text);
      assert.equal(listed.body.data[0].kind, 'content_flagged');
    });

    test("a project's thresholds and categories decide what counts; the deployment's categories always do", async () => {
      await t.services.safety.checkInput(scope(), 'a borderline remark'); // violence 0.4: not flagged by the provider
      await putRules({ moderation: { categories: [], thresholds: { violence: 0.3 } } });
      const err = await refusal(t.services.safety.checkInput(scope(), 'a borderline remark'));
      assert.deepEqual(err.extra.categories, ['violence']);
      // Harassment is not enforced here (categories: []); violence at 0.97 reaches its threshold.
      assert.deepEqual((await refusal(t.services.safety.checkInput(scope(), 'I will stab you'))).extra.categories, ['violence']);
      await putRules({ moderation: { categories: [] } });
      await t.services.safety.checkInput(scope(), 'I will stab you');
      const floor = await refusal(t.services.safety.checkInput(scope(), 'minorsword'));
      assert.deepEqual(floor.extra.categories, ['sexual/minors']);
      await putRules({});
    });

    test('checkOutput reports a flag instead of throwing, and records it as an answer', async () => {
      const user = await createUser(t);
      assert.deepEqual(await t.services.safety.checkOutput({ userId: user.id }, 'a harmless answer'), { flagged: false });
      const verdict = await t.services.safety.checkOutput({ userId: user.id, conversationId: '01900000-0000-7000-8000-000000000001', messageId: '01900000-0000-7000-8000-000000000002' }, 'then I stab you');
      assert.equal(verdict.flagged, true);
      assert.ok(verdict.flagged && verdict.categories.includes('violence') && verdict.source === 'provider');
      const [entry] = await t.services.audit.list({ limit: 5, userId: user.id, action: 'content.flagged' });
      assert.equal(entry?.metadata.direction, 'output');
      assert.equal(entry?.metadata.messageId, '01900000-0000-7000-8000-000000000002');
      const [flag] = await t.services.usage.abuse.list({ limit: 5, userId: user.id });
      assert.match(flag!.evidence, /^an answer flagged/);
    });

    test('provider down (an error, or no answer within MODERATION_TIMEOUT_MS): 503 moderation_unavailable, the failed call metered', async () => {
      const user = await createUser(t);
      moderation.reset();
      moderation.script({ status: 500 }, { hang: true });
      for (const _ of [1, 2]) {
        const err = await refusal(t.services.safety.checkInput({ userId: user.id }, 'hello'));
        assert.deepEqual([err.status, err.code], [503, 'moderation_unavailable']);
        assert.equal(err.headers['retry-after'], '5');
      }
      moderation.script({ status: 503 });
      assert.equal((await refusal(t.services.safety.checkOutput({ userId: user.id }, 'hello'))).code, 'moderation_unavailable', 'closed for answers too');
      await eventually(() => assert.equal(moderation.requests[1]!.aborted, true, 'the hung request was given up'));
      await t.services.usage.recorder.flush();
      const rows = await t.deps.db.select().from(usageEvents).where(eq(usageEvents.userId, user.id));
      assert.deepEqual(rows.map((r) => [r.source, r.status]), [['moderation', 'failed'], ['moderation', 'failed'], ['moderation', 'failed']]);
      // A working provider closes the circuit again.
      await t.services.safety.checkInput({ userId: user.id }, 'hello again');
    });

    test('MODERATION_FAIL_OPEN: an unreachable provider lets the text through (logged), local rules still apply', async () => {
      const settings = { ...t.deps.config.safety, moderation: { ...t.deps.config.safety.moderation!, url: 'http://127.0.0.1:9/v1', failOpen: true } };
      const open = createSafety({ db: t.deps.db, logger: t.deps.logger, registry: new (await import('prom-client')).Registry(), settings, projects: t.services.projects, audit: t.services.audit, abuse: t.services.usage.abuse });
      await open.checkInput({ userId: owner.id }, 'I will stab you');
      assert.deepEqual(await open.checkOutput({ userId: owner.id }, 'I will stab you'), { flagged: false });
      assert.equal((await refusal(open.checkInput({ userId: owner.id }, 'deploy-banned'))).code, 'content_flagged');
    });
  });
}

describe('SAFETY_RULES', () => {
  const base = { PARLEY_DATA_DIR: 'memory://' };
  test('bad rules stop the start with a message naming them', () => {
    assert.throws(() => loadConfig({ ...base, SAFETY_RULES: '{"patterns":["(a+)+"]}' }), (e: unknown) => e instanceof ConfigError && /SAFETY_RULES: patterns\[0\] is refused/.test(e.message));
    assert.throws(
      () => loadConfig({ ...base, SAFETY_RULES: JSON.stringify({ patterns: ['\\d*\\d*\\d*\\d*\\d*\\d*\\d*\\d*\\d*x'] }) }),
      (e: unknown) => e instanceof ConfigError && /SAFETY_RULES: patterns\[0\] is refused: .*repeats that can match the same characters/.test(e.message),
    );
    assert.throws(() => loadConfig({ ...base, SAFETY_RULES: '/no/such/file.json' }), ConfigError);
    assert.throws(() => loadConfig({ ...base, SAFETY_RULES: '{"blockedTerms":"x"}' }), ConfigError);
    assert.throws(() => loadConfig({ ...base, MODERATION_API_KEY: 'k' }), ConfigError);
    const ok = loadConfig({ ...base, SAFETY_RULES: '{"blockedTerms":["Ｂad"]}' });
    assert.deepEqual(ok.safety.rules.blockedTerms, ['bad']);
    assert.equal(ok.safety.moderation, undefined);
  });
});
