import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { and, eq } from 'drizzle-orm';
import { DateTime } from 'luxon';
import { usageEvents } from '../../../src/modules/usage/schema.ts';
import type { ToolOutcome, ToolScope } from '../../../src/modules/tools/index.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { startDnsServer } from '../../support/dns-server.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { uploadFile } from '../../support/files.ts';

const BUILTINS = ['current_time', 'fetch_url', 'run_javascript', 'search_knowledge'];
const MAX_BYTES = 65_536;
const TIMEOUT_MS = 4_000;

const PAGE = `<!doctype html><html><head><title>Otters &amp; friends</title><style>body { color: red }</style>
<script>document.write('tracking')</script></head>
<body><h1>Sea otters</h1><p>Otters hold hands while sleeping.</p>
<p><a href="/more">Read more</a>, <a href="https://example.org/x">elsewhere</a>, <a href="javascript:alert(1)">click me</a>, <a href="#top">top</a>, <a href="mailto:otto@example.org">write</a>.</p>
<table><tr><th>Name</th><th>Legs</th></tr><tr><td>Otter</td><td>4</td></tr></table>
<img src="/otter.png" alt="an otter"><noscript>enable scripts</noscript></body></html>`;

/** A site on 127.0.0.2 (the one private range the app may reach) that redirects, hangs, and serves every kind of body. */
function startSite(secretUrl: () => string) {
  const hanging = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    const redirect = (to: string, status = 302) => res.writeHead(status, { location: to }).end();
    if (path === '/page') return res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
    if (path === '/latin1') return res.writeHead(200, { 'content-type': 'text/plain; charset=iso-8859-1' }).end(Buffer.from('caf\xe9', 'latin1'));
    if (path === '/json') return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ animal: 'otter', legs: 4 }));
    if (path === '/big') return res.writeHead(200, { 'content-type': 'text/plain' }).end('a'.repeat(MAX_BYTES * 4));
    if (path === '/bomb') return res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' }).end(gzipSync(Buffer.alloc(50 * 1024 * 1024, 'b')));
    if (path === '/huge-text') return res.writeHead(200, { 'content-type': 'text/plain' }).end('word\n'.repeat(10_000));
    if (path === '/image') return res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.alloc(100));
    if (path === '/missing') return res.writeHead(404, { 'content-type': 'text/plain' }).end('no such page');
    if (path === '/hang') return void hanging.add(res);
    if (path === '/slow-body') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('the start');
      return void hanging.add(res);
    }
    if (path === '/moved') return redirect('/page', 301);
    if (path === '/to-loopback') return redirect(secretUrl());
    if (path === '/to-localhost') return redirect(secretUrl().replace('127.0.0.1', 'localhost'));
    if (path === '/to-metadata') return redirect('http://169.254.169.254/latest/meta-data/');
    if (path === '/to-file') return redirect('file:///etc/passwd');
    const hop = /^\/loop\/(\d+)$/.exec(path);
    if (hop) return redirect(`/loop/${Number(hop[1]) + 1}`);
    res.writeHead(404).end();
  });
  return {
    server,
    close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

for (const backend of backends()) {
  describe(`built-in tools [${backend}]`, () => {
    let t: TestApp;
    let u: TestUser;
    let stranger: TestUser;
    let scope: ToolScope;
    let site: ReturnType<typeof startSite>;
    let siteUrl: string;
    /** A server on 127.0.0.1, which the app must never reach: it counts the requests it gets. */
    let secret: http.Server;
    let secretHits = 0;
    let secretUrl = '';

    before(async () => {
      secret = http.createServer((_req, res) => {
        secretHits++;
        res.end('secret');
      });
      await new Promise<void>((resolve) => secret.listen(0, '127.0.0.1', resolve));
      secretUrl = `http://127.0.0.1:${(secret.address() as AddressInfo).port}/secret`;
      site = startSite(() => secretUrl);
      await new Promise<void>((resolve) => site.server.listen(0, '127.0.0.2', resolve));
      siteUrl = `http://127.0.0.2:${(site.server.address() as AddressInfo).port}`;
      t = await startApp({
        backend,
        env: {
          FETCH_URL_ALLOWED_RANGES: '127.0.0.2/32',
          FETCH_URL_MAX_BYTES: String(MAX_BYTES),
          FETCH_URL_TIMEOUT_MS: String(TIMEOUT_MS),
          TOOLS_MAX_RESULT_CHARS: '20000',
          SANDBOX_WORKERS: '1',
          KNOWLEDGE_INGEST_BACKOFF_MS: '100',
        },
      });
      u = await createUser(t);
      stranger = await createUser(t);
      scope = { userId: u.id, projectId: null, conversationId: null, apiKeyId: null };
    });
    after(async () => {
      await t.close();
      await site.close();
      await new Promise<void>((resolve) => secret.close(() => resolve()));
    });

    /** One call as the loop makes it: the tool offered in this scope, its arguments parsed and checked, then run. */
    async function call(name: string, args: unknown, as: ToolScope = scope, limits = {}): Promise<ToolOutcome & { value?: any }> {
      const tool = (await t.services.toolbox.offered(as, [name])).find((x) => x.name === name);
      const parsed = t.services.toolbox.parse(tool, name, typeof args === 'string' ? args : JSON.stringify(args));
      if ('outcome' in parsed) return parsed.outcome;
      const outcome = await t.services.toolbox.run(tool!, parsed.args, { ...as, signal: new AbortController().signal, limits });
      return { ...outcome, ...(outcome.ok && { value: JSON.parse(outcome.content) }) };
    }

    test('the four built-ins are offered only where a project names them', async () => {
      assert.deepEqual((await t.services.toolbox.offered(scope, BUILTINS)).map((x) => x.name).sort(), BUILTINS);
      assert.deepEqual((await t.services.toolbox.offered(scope, ['current_time'])).map((x) => x.name), ['current_time']);
      assert.deepEqual((await t.services.toolbox.offered(scope, [])).filter((x) => BUILTINS.includes(x.name)), []);
      const all = (await t.services.toolbox.all(scope)).map((x) => x.name);
      for (const name of BUILTINS) assert.ok(all.includes(name), name);
    });

    describe('current_time', () => {
      test('without a zone: UTC for a user with none, then the zone the user prefers', async () => {
        const before = Date.now();
        const r = await call('current_time', {});
        assert.equal(r.ok, true, r.content);
        assert.equal(r.value.timeZone, 'UTC');
        assert.equal(r.value.utcOffset, '+00:00');
        assert.equal(r.value.zoneFrom, 'default');
        const at = DateTime.fromISO(r.value.iso);
        assert.ok(at.isValid && at.toMillis() >= before - 1_000 && at.toMillis() <= Date.now() + 1_000, r.value.iso);
        assert.equal(r.value.weekday, at.setZone('UTC').setLocale('en').toFormat('cccc'));

        const saved = await t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, body: { timezone: 'Asia/Kolkata' } });
        assert.equal(saved.status, 200, saved.text);
        const mine = await call('current_time', '');
        assert.equal(mine.value.timeZone, 'Asia/Kolkata');
        assert.equal(mine.value.utcOffset, '+05:30');
        assert.equal(mine.value.zoneFrom, 'user');
        assert.match(mine.value.iso, /\+05:30$/);
      });

      test('a zone the model names wins; a zone that does not exist is an error the model reads', async () => {
        const r = await call('current_time', { timeZone: 'America/New_York' });
        assert.equal(r.value.timeZone, 'America/New_York');
        assert.match(r.value.utcOffset, /^-0[45]:00$/);
        assert.equal(r.value.weekday, DateTime.fromISO(r.value.iso, { setZone: true }).setLocale('en').toFormat('cccc'));
        assert.equal(r.value.zoneFrom, 'argument');

        const bad = await call('current_time', { timeZone: 'Mars/Olympus_Mons' });
        assert.equal(bad.ok, false);
        assert.equal(bad.error?.code, 'invalid_time_zone');
        assert.match(bad.error!.message, /Mars\/Olympus_Mons.*not an IANA time zone/);
        assert.match(bad.content, /Europe\/Paris/, 'the model is told what a zone looks like');

        const wrongType = await call('current_time', { timeZone: 42 });
        assert.equal(wrongType.error?.code, 'invalid_arguments');
        const extra = await call('current_time', { zone: 'UTC' });
        assert.equal(extra.error?.code, 'invalid_arguments');
      });
    });

    describe('fetch_url', () => {
      test('HTML becomes text: title, headings and paragraphs kept, links absolute, scripts, styles and images gone', async () => {
        const r = await call('fetch_url', { url: `${siteUrl}/page` });
        assert.equal(r.ok, true, r.content);
        assert.equal(r.value.url, `${siteUrl}/page`);
        assert.equal(r.value.status, 200);
        assert.equal(r.value.contentType, 'text/html');
        assert.equal(r.value.title, 'Otters & friends');
        const text: string = r.value.text;
        assert.match(text, /SEA OTTERS/);
        assert.match(text, /Otters hold hands while sleeping\./);
        assert.ok(text.includes(`Read more [${siteUrl}/more]`), text);
        assert.ok(text.includes('elsewhere [https://example.org/x]'), text);
        assert.ok(text.includes('click me') && !text.includes('javascript:'), 'a script link keeps its text, not its target');
        assert.ok(text.includes('top') && !text.includes('#top'), text);
        assert.ok(text.includes('write') && !text.includes('otto@'), 'a mail link keeps its text');
        assert.match(text, /Otter\s+4/, 'table cells stay apart');
        for (const gone of ['color: red', 'tracking', 'document.write', 'otter.png', 'enable scripts']) assert.ok(!text.includes(gone), `${gone} in ${text}`);
        assert.equal(r.value.truncated, undefined);
      });

      test('JSON and other text come as they are, in their charset; an error page comes with its status', async () => {
        const json = await call('fetch_url', { url: `${siteUrl}/json` });
        assert.equal(json.value.contentType, 'application/json');
        assert.deepEqual(JSON.parse(json.value.text), { animal: 'otter', legs: 4 });
        assert.equal(json.value.title, undefined);
        assert.equal((await call('fetch_url', { url: `${siteUrl}/latin1` })).value.text, 'café');
        const missing = await call('fetch_url', { url: `${siteUrl}/missing` });
        assert.equal(missing.ok, true);
        assert.equal(missing.value.status, 404);
        assert.equal(missing.value.text, 'no such page');
      });

      test('redirects are followed to the final URL; more than five are refused', async () => {
        const r = await call('fetch_url', { url: `${siteUrl}/moved` });
        assert.equal(r.value.url, `${siteUrl}/page`);
        assert.equal(r.value.title, 'Otters & friends');
        const loop = await call('fetch_url', { url: `${siteUrl}/loop/0` });
        assert.equal(loop.ok, false);
        assert.equal(loop.error?.code, 'too_many_redirects');
      });

      test('a body beyond the size cap is cut, compressed ones counted as they inflate; a long text is cut to the result limit', async () => {
        const big = await call('fetch_url', { url: `${siteUrl}/big` });
        assert.equal(big.ok, true, big.content);
        assert.equal(big.value.truncated, true);
        assert.ok(big.value.text.startsWith('a'.repeat(1000)));
        assert.ok(big.content.length <= 20_000, `${big.content.length} characters`);
        assert.match(big.value.text, /\[text cut: the page is longer\]$/);

        const bomb = await call('fetch_url', { url: `${siteUrl}/bomb` });
        assert.equal(bomb.ok, true, bomb.content);
        assert.equal(bomb.value.truncated, true);
        assert.ok(bomb.content.length <= 20_000);

        // Escapes make the JSON longer than the text: still valid JSON within the limit.
        const lines = await call('fetch_url', { url: `${siteUrl}/huge-text` });
        assert.ok(lines.content.length <= 20_000, `${lines.content.length}`);
        assert.equal(lines.value.truncated, true);
      });

      test('a server that does not answer, or stops halfway, hits the time cap', async () => {
        for (const path of ['/hang', '/slow-body']) {
          const r = await call('fetch_url', { url: `${siteUrl}${path}` });
          assert.equal(r.ok, false, path);
          assert.equal(r.error?.code, 'fetch_timeout', r.content);
          assert.match(r.error!.message, new RegExp(`${TIMEOUT_MS} ms`));
        }
      });

      test('what is not text is refused, naming its type', async () => {
        const r = await call('fetch_url', { url: `${siteUrl}/image` });
        assert.equal(r.ok, false);
        assert.equal(r.error?.code, 'unsupported_content_type');
        assert.match(r.error!.message, /image\/png/);
      });

      test('only absolute http(s) URLs without credentials', async () => {
        for (const [url, code] of [
          ['file:///etc/passwd', 'url_scheme'],
          ['ftp://example.org/x', 'url_scheme'],
          ['javascript:alert(1)', 'url_scheme'],
          ['/relative/path', 'url_invalid'],
          ['not a url', 'url_invalid'],
          [`http://user:pw@127.0.0.2:1/`, 'url_credentials'],
        ] as const) {
          const r = await call('fetch_url', { url });
          assert.equal(r.error?.code, code, `${url}: ${r.content}`);
        }
        assert.equal((await call('fetch_url', {})).error?.code, 'invalid_arguments');
        const toFile = await call('fetch_url', { url: `${siteUrl}/to-file` });
        assert.equal(toFile.error?.code, 'url_scheme');
        assert.match(toFile.error!.message, /redirected to file:\/\/\/etc\/passwd/);
      });

      test('private, loopback and link-local addresses are refused, by name or literal, and after a redirect; nothing reaches them', async () => {
        const port = new URL(secretUrl).port;
        for (const url of [secretUrl, `http://[::1]:${port}/`, 'http://169.254.169.254/latest/meta-data/', `http://localhost:${port}/`, 'http://10.0.0.1/', 'http://[::ffff:127.0.0.1]/', 'http://0.0.0.0/', 'http://100.64.0.1/', 'http://[fd00::1]/']) {
          const r = await call('fetch_url', { url });
          assert.equal(r.ok, false, url);
          assert.equal(r.error?.code, 'url_private', `${url}: ${r.content}`);
        }
        for (const path of ['/to-loopback', '/to-localhost', '/to-metadata']) {
          const r = await call('fetch_url', { url: `${siteUrl}${path}` });
          assert.equal(r.error?.code, 'url_private', `${path}: ${r.content}`);
        }
        assert.equal(secretHits, 0, 'no request reached the loopback server');
        const nowhere = await call('fetch_url', { url: 'http://does-not-exist.invalid/' });
        assert.equal(nowhere.error?.code, 'url_unresolvable');
      });
    });

    describe('run_javascript', () => {
      test('a script\'s value, output and input come back; metered to the caller', async () => {
        const r = await call('run_javascript', { code: 'console.log("summing"); console.warn("careful"); input.reduce((a, b) => a + b, 0)', input: [1, 2, 3] });
        assert.equal(r.ok, true, r.content);
        assert.deepEqual(r.value, { status: 'ok', result: 6, output: ['summing', '[warn] careful'] });
        const fn = await call('run_javascript', { code: 'const x = await Promise.resolve(20); return { answer: x + 22 }' });
        assert.deepEqual(fn.value, { status: 'ok', result: { answer: 42 } });
        await t.services.usage.recorder.flush();
        const rows = await t.deps.db.select().from(usageEvents).where(and(eq(usageEvents.userId, u.id), eq(usageEvents.source, 'sandbox')));
        assert.equal(rows.length, 2, 'each run is metered to the turn\'s caller');
      });

      test('a script that throws is an answer the model reads, not a failed call', async () => {
        const r = await call('run_javascript', { code: 'throw new TypeError("no otters here")' });
        assert.equal(r.ok, true, r.content);
        assert.equal(r.value.status, 'error');
        assert.equal(r.value.error.code, 'script_error');
        assert.match(r.value.error.message, /no otters here/);
        const syntax = await call('run_javascript', { code: 'let = ;' });
        assert.equal(syntax.value.status, 'error');
        assert.equal(syntax.value.error.code, 'syntax_error');
      });

      test('an endless loop stops at the project\'s CPU limit; a limit above the deployment\'s is lowered to it', async () => {
        const r = await call('run_javascript', { code: 'for (;;) {}' }, scope, { sandboxTimeoutMs: 200 });
        assert.equal(r.ok, true, r.content);
        assert.equal(r.value.status, 'error');
        assert.equal(r.value.error.code, 'timeout');
        const capped = await call('run_javascript', { code: '1 + 1' }, scope, { sandboxTimeoutMs: 10_000_000, sandboxMemoryMb: 100_000 });
        assert.deepEqual(capped.value, { status: 'ok', result: 2 });
        assert.equal((await call('run_javascript', { code: '' })).error?.code, 'invalid_arguments');
      });

      test('a used-up budget of the turn\'s API key is an error saying so; the script is not run', async () => {
        const owner = await createUser(t);
        const created = await t.api('POST', '/v1/api-keys', { token: owner.accessToken, body: { name: 'spent' } });
        assert.equal(created.status, 201, created.text);
        t.services.usage.recorder.record({ userId: owner.id, apiKeyId: created.body.id, source: 'chat', provider: 'openai', model: 'gpt', inputTokens: 10, latencyMs: 1, status: 'ok', costMicros: 0 });
        await t.services.usage.recorder.flush();
        const budget = await t.api('PUT', '/v1/budgets', { token: owner.accessToken, body: { scope: 'api_key', subjectId: created.body.id, period: 'total', limitTokens: 5 } });
        assert.ok(budget.status < 300, budget.text);
        const ownerScope = { userId: owner.id, projectId: null, conversationId: null, apiKeyId: created.body.id };
        const refused = await call('run_javascript', { code: '1' }, ownerScope);
        assert.equal(refused.ok, false);
        assert.equal(refused.error?.code, 'budget_exceeded');
        assert.match(refused.error!.message, /^The script was not run: .*budget is used up/);
        const bySession = await call('run_javascript', { code: '1' }, { ...ownerScope, apiKeyId: null });
        assert.deepEqual(bySession.value, { status: 'ok', result: 1 }, 'outside that budget it runs');
      });
    });

    describe('search_knowledge', () => {
      let projectId: string;

      before(async () => {
        const project = await t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'Zoo' } });
        assert.equal(project.status, 201, project.text);
        projectId = project.body.id;
        const index = async (who: TestUser, collection: { name: string; projectId?: string }, fileName: string, text: string) => {
          const made = await t.api('POST', '/v1/knowledge/collections', { token: who.accessToken, body: collection });
          assert.equal(made.status, 201, made.text);
          const file = await uploadFile(t, who, fileName, Buffer.from(text));
          const added = await t.api('POST', `/v1/knowledge/collections/${made.body.id}/items`, { token: who.accessToken, body: { fileId: file.id } });
          assert.equal(added.status, 202, added.text);
          await eventually(async () => {
            const item = await t.api('GET', `/v1/knowledge/items/${added.body.id}`, { token: who.accessToken });
            assert.equal(item.body.status, 'ready', item.text);
          }, 15_000);
        };
        await index(u, { name: 'Zoo notes', projectId }, 'penguins.md', '# Penguins\n\nEmperor penguins huddle together through the Antarctic winter.');
        await index(u, { name: 'Travel' }, 'glaciers.md', '# Glaciers\n\nPenguins are rare near the Alpine glaciers of Switzerland.');
        await index(stranger, { name: 'Secrets' }, 'stranger.md', '# Penguins\n\nThe stranger keeps private penguin sightings near the harbour.');
      });

      test('outside a project: the user\'s own passages with file name, collection, score and text; never another user\'s', async () => {
        const r = await call('search_knowledge', { query: 'penguins' });
        assert.equal(r.ok, true, r.content);
        assert.equal(r.value.searched, 'all the user may read');
        const files = r.value.results.map((x: any) => x.file).sort();
        assert.deepEqual(files, ['glaciers.md', 'penguins.md']);
        const top = r.value.results.find((x: any) => x.file === 'penguins.md');
        assert.deepEqual(top.collections, ['Zoo notes']);
        assert.match(top.text, /Emperor penguins huddle/);
        assert.ok(top.score > 0);
        assert.ok(!r.content.includes('stranger'), 'nothing of the stranger\'s');

        const theirs = await call('search_knowledge', { query: 'penguin sightings harbour' }, { ...scope, userId: stranger.id });
        assert.deepEqual(theirs.value.results.map((x: any) => x.file), ['stranger.md']);
        assert.equal((await call('search_knowledge', { query: 'harbour sightings' })).value.results.length, 0);
      });

      test('in a project with collections: only those collections; limit and bad arguments', async () => {
        const r = await call('search_knowledge', { query: 'penguins', limit: 5 }, { ...scope, projectId });
        assert.equal(r.value.searched, "this project's and conversation's collections");
        assert.deepEqual(r.value.results.map((x: any) => x.file), ['penguins.md']);
        assert.equal((await call('search_knowledge', { query: 'penguins', limit: 1 })).value.results.length, 1);
        assert.equal((await call('search_knowledge', { query: 'penguins', limit: 21 })).error?.code, 'invalid_arguments');
        assert.equal((await call('search_knowledge', { query: '   ' })).error?.code, 'invalid_arguments');
        assert.equal((await call('search_knowledge', {})).error?.code, 'invalid_arguments');
      });
    });
  });
}

describe('fetch_url with FETCH_URL_ALLOW_PRIVATE', () => {
  let t: TestApp;
  let server: http.Server;
  let port: number;

  before(async () => {
    server = http.createServer((req, res) => {
      // Two megabytes (the default cap) of title tags that never close.
      if (req.url === '/titles') return res.writeHead(200, { 'content-type': 'text/html' }).end(`<html><head>${'<title>'.repeat(2_000_000 / 7)}`);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('local');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    t = await startApp({ worker: false, env: { FETCH_URL_ALLOW_PRIVATE: 'true' } });
  });
  after(async () => {
    await t.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('loopback is reachable on a closed network', async () => {
    const scope = { userId: '00000000-0000-7000-8000-000000000000', projectId: null, conversationId: null, apiKeyId: null };
    const [tool] = await t.services.toolbox.offered(scope, ['fetch_url']);
    const r = await t.services.toolbox.run(tool!, { url: `http://127.0.0.1:${port}/` }, { ...scope, signal: new AbortController().signal, limits: {} });
    assert.equal(r.ok, true, r.content);
    assert.equal(JSON.parse(r.content).text, 'local');
  });

  // A title found by a backtracking pattern scanned to the end from each of the 285,000 tags: the server's event
  // loop held for a minute and more, past every time cap (none can fire while it is held). Read in one pass, the
  // page takes a tenth of a second (no timing is asserted here: a regression shows as this test taking minutes).
  test('a page of unclosed title tags has no title, and is read to its cap', async () => {
    const scope = { userId: '00000000-0000-7000-8000-000000000000', projectId: null, conversationId: null, apiKeyId: null };
    const [tool] = await t.services.toolbox.offered(scope, ['fetch_url']);
    const r = await t.services.toolbox.run(tool!, { url: `http://127.0.0.1:${port}/titles` }, { ...scope, signal: new AbortController().signal, limits: {} });
    assert.equal(r.ok, true, r.content);
    const page = JSON.parse(r.content);
    assert.equal(page.title, undefined);
    assert.equal(page.truncated, true);
  });
});

describe('fetch_url: names resolved by DNS_SERVERS, HTML converted on a thread of its own', () => {
  const PARAGRAPHS = 20_000;
  const paragraph = (i: number) => `<p>Paragraph ${i}: otters hold hands while they sleep, <a href="/p/${i}">more</a>.</p>`;
  // Near two megabytes (the default cap) of paragraphs: about a second of the converter's time.
  const BIG = `<html><head><title>Many\n  paragraphs</title></head><body>${Array.from({ length: PARAGRAPHS }, (_, i) => paragraph(i)).join('\n')}</body></html>`;
  let t: TestApp;
  let dns: Awaited<ReturnType<typeof startDnsServer>>;
  let server: http.Server;
  let port: number;
  /** Serves the big page over plain TCP and leaves the connection open: the reader's close says it has read it all. */
  let pageServer: net.Server;
  let pagePort: number;
  /** What happened, in order: the big page's connection closed by its reader, requests served meanwhile, the page given. */
  const events: string[] = [];
  /** Only the connections the ordering test makes are counted: an earlier test's may close later. */
  let watching = false;
  const scope = { userId: '00000000-0000-7000-8000-000000000000', projectId: null, conversationId: null, apiKeyId: null };

  before(async () => {
    dns = await startDnsServer({ 'pages.test': ['127.0.0.1'], 'hang.test': 'silent', 'gone.test': 'nxdomain' });
    server = http.createServer((req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(`local ${req.headers.host}`));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    pageServer = net.createServer((socket) => {
      const watched = watching;
      socket.once('data', () => socket.write(`HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(BIG)}\r\n\r\n${BIG}`));
      socket.once('end', () => {
        if (watched) events.push('page read');
        socket.destroy();
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => pageServer.listen(0, '127.0.0.1', resolve));
    pagePort = (pageServer.address() as AddressInfo).port;
    t = await startApp({
      worker: false,
      env: {
        FETCH_URL_ALLOW_PRIVATE: 'true',
        DNS_SERVERS: dns.server,
        DNS_TIMEOUT_MS: '300',
        TOOLS_MAX_RESULT_CHARS: '10000000',
        // Room for a slow machine: these tests are about where the work runs, not how long it takes.
        FETCH_URL_TIMEOUT_MS: '120000',
        FETCH_URL_CONVERT_TIMEOUT_MS: '120000',
      },
    });
  });
  after(async () => {
    await t.close();
    await dns.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => pageServer.close(() => resolve()));
  });

  async function fetchUrl(url: string) {
    const [tool] = await t.services.toolbox.offered(scope, ['fetch_url']);
    return t.services.toolbox.run(tool!, { url }, { ...scope, signal: new AbortController().signal, limits: {} });
  }

  test('a name is asked of DNS_SERVERS and the request goes to its address; a silent server is a temporary failure, NXDOMAIN a final one', async () => {
    const r = await fetchUrl(`http://pages.test:${port}/`);
    assert.equal(r.ok, true, r.content);
    assert.equal(JSON.parse(r.content).text, `local pages.test:${port}`);
    assert.ok(dns.queries.includes('pages.test A'), dns.queries.join());

    const hang = await fetchUrl(`http://hang.test:${port}/`);
    assert.equal(hang.error?.code, 'url_unresolvable', hang.content);
    assert.match(hang.error!.message, /could not be resolved now \(ETIMEOUT\); it may work later/);
    const gone = await fetchUrl(`http://gone.test:${port}/`);
    assert.equal(gone.error?.code, 'url_unresolvable', gone.content);
    assert.match(gone.error!.message, /does not resolve$/);
  });

  test('a big page is converted whole, as on the server\'s own thread', async () => {
    const r = await fetchUrl(`http://127.0.0.1:${pagePort}/big`);
    assert.equal(r.ok, true, r.content);
    const page = JSON.parse(r.content);
    assert.equal(page.title, 'Many paragraphs');
    assert.equal(page.truncated, undefined);
    const expected = Array.from({ length: PARAGRAPHS }, (_, i) => `Paragraph ${i}: otters hold hands while they sleep, more [http://127.0.0.1:${pagePort}/p/${i}].`).join('\n\n');
    assert.equal(page.text, expected);
  });

  test('while a big page is converted, the server goes on answering requests', async () => {
    watching = true;
    const converted = fetchUrl(`http://127.0.0.1:${pagePort}/big`).then((r) => {
      events.push('page given');
      return r;
    });
    // The reader closes the page's connection once it has read it all: what is left is the conversion, and requests
    // served from now on are served during it (on the server's own thread they would wait until the page is given).
    await eventually(() => assert.ok(events.includes('page read')), 60_000);
    for (let i = 0; i < 3; i++) {
      const health = await t.api('GET', '/health');
      assert.equal(health.status, 200);
      events.push('request served');
    }
    const r = await converted;
    assert.equal(r.ok, true, r.content);
    assert.deepEqual(events, ['page read', 'request served', 'request served', 'request served', 'page given']);
  });
});
