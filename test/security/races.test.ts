import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type ApiResponse, type TestApp } from '../support/app.ts';
import { createUser, type TestUser } from '../support/factories.ts';

/**
 * Requests that race each other on PostgreSQL, where they run side by side (PGlite runs one statement at a
 * time, so there these pass trivially): a write meeting the deletion of what it belongs to is the 404 the
 * deletion makes, never a 500; two requests that add the same thing make it once.
 */
const ROUNDS = 12;

for (const backend of backends()) {
  describe(`races [${backend}]`, () => {
    let t: TestApp;
    let u: TestUser;

    before(async () => {
      t = await startApp({ backend, env: { WEBHOOKS_ALLOW_PRIVATE: 'true' } });
      u = await createUser(t);
    });
    after(() => t.close());

    const as = (method: string, path: string, body?: unknown) => t.api(method, path, { token: u.accessToken, body });
    const statuses = (rs: ApiResponse[]) => rs.map((r) => `${r.status} ${r.body?.code ?? ''}`.trim());

    /** Each round makes a parent, then runs `write` on it alongside its deletion: the write succeeds or is a 404. */
    async function racingDelete(make: () => Promise<string>, remove: (id: string) => Promise<ApiResponse>, write: (id: string) => Promise<ApiResponse>, ok: number) {
      const seen: string[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        const id = await make();
        const [written, removed] = await Promise.all([write(id), remove(id)]);
        assert.equal(removed.status, 204, removed.text);
        assert.ok(written.status === ok || written.status === 404, `round ${i}: ${written.status} ${written.text}`);
        if (written.status === 404) assert.equal(written.headers.get('content-type'), 'application/problem+json; charset=utf-8');
        seen.push(String(written.status));
      }
      return seen;
    }

    const newDocument = async () => (await as('POST', '/v1/documents', { title: 'Raced', body: 'text' })).body.id as string;
    const deleteDocument = (id: string) => as('DELETE', `/v1/documents/${id}`);

    test("a document's tags, favorite, presence or save racing its deletion: done, or 404", async () => {
      await racingDelete(newDocument, deleteDocument, (id) => as('PATCH', `/v1/documents/${id}`, { tags: ['a'] }), 200);
      await racingDelete(newDocument, deleteDocument, (id) => as('PUT', `/v1/documents/${id}/favorite`, { favorite: true }), 200);
      await racingDelete(newDocument, deleteDocument, (id) => as('POST', `/v1/documents/${id}/presence`, { state: 'editing' }), 200);
      await racingDelete(newDocument, deleteDocument, (id) => as('PUT', `/v1/documents/${id}`, { body: 'new', baseVersion: 1 }), 200);
      await racingDelete(newDocument, deleteDocument, (id) => as('GET', `/v1/documents/${id}`), 200);
    });

    test("a webhook endpoint's change or test racing its deletion: done, or 404", async () => {
      const newEndpoint = async () => (await as('POST', '/v1/webhooks/endpoints', { url: 'http://127.0.0.1:9/hook', events: ['file.ready'] })).body.id as string;
      const deleteEndpoint = (id: string) => as('DELETE', `/v1/webhooks/endpoints/${id}`);
      await racingDelete(newEndpoint, deleteEndpoint, (id) => as('PATCH', `/v1/webhooks/endpoints/${id}`, { description: 'x' }), 200);
      await racingDelete(newEndpoint, deleteEndpoint, (id) => as('POST', `/v1/webhooks/endpoints/${id}/rotate-secret`), 200);
      await racingDelete(newEndpoint, deleteEndpoint, (id) => as('POST', `/v1/webhooks/endpoints/${id}/test`), 202);
    });

    test('a conversation started in a project racing its deletion: made, or 404', async () => {
      const newProject = async () => (await as('POST', '/v1/projects', { name: 'Raced' })).body.id as string;
      await racingDelete(newProject, (id) => as('DELETE', `/v1/projects/${id}`), (id) => as('POST', '/v1/conversations', { projectId: id }), 201);
    });

    test('an item taken out of one collection while put in another: when the add says 202, the item is there', async () => {
      for (let i = 0; i < ROUNDS; i++) {
        const [one, two] = await Promise.all(['One', 'Two'].map(async (name) => (await as('POST', '/v1/knowledge/collections', { name })).body.id as string));
        const documentId = await newDocument();
        const first = await as('POST', `/v1/knowledge/collections/${one}/items`, { documentId });
        assert.equal(first.status, 202, first.text);
        const [removed, added] = await Promise.all([as('DELETE', `/v1/knowledge/collections/${one}/items/${first.body.id}`), as('POST', `/v1/knowledge/collections/${two}/items`, { documentId })]);
        assert.deepEqual(statuses([removed, added]), ['204', '202'], `round ${i}`);
        const items = (await as('GET', `/v1/knowledge/collections/${two}/items`)).body.data;
        assert.deepEqual(
          items.map((it: { id: string }) => it.id),
          [added.body.id],
          `round ${i}: the item the add answered with is in the collection`,
        );
      }
    });

    test('sharing a document with one reader six times at once: one share, made once (one 201), the rest 200', async () => {
      const reader = await createUser(t);
      for (let i = 0; i < 4; i++) {
        const id = await newDocument();
        const shared = await Promise.all(Array.from({ length: 6 }, () => as('POST', `/v1/documents/${id}/shares`, { email: reader.email, role: 'viewer' })));
        assert.deepEqual(shared.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 201], `round ${i}: ${statuses(shared)}`);
        const listed = (await as('GET', `/v1/documents/${id}/shares`)).body.data;
        assert.equal(listed.length, 1);
      }
    });
  });
}
