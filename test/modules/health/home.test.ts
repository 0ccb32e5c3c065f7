import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';

const version = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version as string;

for (const backend of backends()) {
  describe(`GET / with the console off [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend, worker: false, env: { CONSOLE_ENABLED: 'false' } });
    });
    after(() => t.close());

    test('an HTML page naming Parley and its version, linking the docs, the OpenAPI document and /health', async () => {
      const res = await fetch(`${t.url}/`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
      const html = await res.text();
      assert.match(html, /<title>Parley [^<]+<\/title>/);
      assert.ok(html.includes(`Version ${version}.`), html);
      const hrefs = [...html.matchAll(/href="([^"]+)"/g)].map((m) => m[1]);
      assert.deepEqual(hrefs, ['/docs/', '/openapi.json', '/health']);
      assert.doesNotMatch(html, /<script/i);
    });

    test('every link answers 200 as it stands (no redirect to follow)', async () => {
      const html = await (await fetch(`${t.url}/`)).text();
      for (const [, href] of html.matchAll(/href="([^"]+)"/g)) {
        const res = await fetch(new URL(href!, t.url), { redirect: 'manual' });
        assert.equal(res.status, 200, href);
      }
    });

    test('safe headers: nosniff, and a policy that allows the one inline style by its hash and nothing else', async () => {
      const res = await fetch(`${t.url}/`);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      const csp = res.headers.get('content-security-policy')!;
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /frame-ancestors 'none'/);
      const style = /<style>([^<]*)<\/style>/.exec(await res.text())![1]!;
      const hash = createHash('sha256').update(style).digest('base64');
      assert.match(csp, new RegExp(`style-src 'sha256-${hash.replace(/[+/]/g, '\\$&')}'`), 'the style in the page is the one the policy allows');
      assert.ok(res.headers.get('x-request-id'), 'the app-wide headers are there too');
    });

    test('HEAD / answers with the same headers and no body', async () => {
      const res = await fetch(`${t.url}/`, { method: 'HEAD' });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(await res.text(), '');
    });

    test('hidden from the OpenAPI document', async () => {
      const doc = await t.api('GET', '/openapi.json');
      assert.equal(doc.body.paths['/'], undefined);
    });
  });
}
