import assert from 'node:assert/strict';
import { pbkdf2 } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { createHostLookup } from '../../src/platform/net/host-lookup.ts';
import { AddressRefused, pinnedLookup, resolvePublicHost, useDnsSettings } from '../../src/platform/net/public-address.ts';
import { eventually } from '../support/eventually.ts';
import { startDnsServer } from '../support/dns-server.ts';

const refusal = (check: (err: AddressRefused) => boolean) => (err: unknown) => err instanceof AddressRefused && check(err);

describe('host lookups (DNS_SERVERS, DNS_TIMEOUT_MS)', () => {
  let dns: Awaited<ReturnType<typeof startDnsServer>>;
  let dir: string;
  let hostsFile: string;

  before(async () => {
    dns = await startDnsServer({
      'site.test': ['127.0.0.2'],
      'v6.test': ['::1'],
      'both.test': ['93.184.216.34', '2606:2800:220:1::1'],
      'hidden.test': ['93.184.216.34', 'fd00::5'],
      'db.corp.test': ['10.1.2.3'],
      'broken.test': 'servfail',
      'gone.test': 'nxdomain',
      ...Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`hang${i}.test`, 'silent' as const])),
      'hang.test': 'silent',
    });
    dir = mkdtempSync(path.join(tmpdir(), 'parley-hosts-'));
    hostsFile = path.join(dir, 'hosts');
    writeFileSync(hostsFile, '# a comment\n127.0.0.9   intranet.test   Intranet-Alias.test # trailing\n::1 intranet.test\n');
  });
  after(async () => {
    await dns.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('A and AAAA both: every address, IPv4 first; a name with one family has that one', async () => {
    const lookup = createHostLookup({ timeoutMs: 5_000, servers: [dns.server], search: [] });
    assert.deepEqual(await lookup('both.test'), [
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1::1', family: 6 },
    ]);
    assert.deepEqual(await lookup('v6.test'), [{ address: '::1', family: 6 }]);
    assert.deepEqual(await lookup('SITE.test.'), [{ address: '127.0.0.2', family: 4 }]);
    assert.ok(dns.queries.includes('both.test A') && dns.queries.includes('both.test AAAA'), dns.queries.join());
  });

  test('a host with a private address among public ones is refused: both families are checked', async () => {
    const lookup = createHostLookup({ timeoutMs: 5_000, servers: [dns.server], search: [] });
    await assert.rejects(resolvePublicHost(new URL('http://hidden.test/'), false, undefined, lookup), refusal((e) => e.reason === 'private'));
    assert.deepEqual(await resolvePublicHost(new URL('http://both.test/'), false, undefined, lookup), { address: '93.184.216.34', family: 4 });
  });

  test('NXDOMAIN is final ("does not resolve"); SERVFAIL and a server that never answers are temporary', async () => {
    const lookup = createHostLookup({ timeoutMs: 300, servers: [dns.server], search: [] });
    await assert.rejects(resolvePublicHost(new URL('http://gone.test/'), true, undefined, lookup), refusal((e) => e.reason === 'unresolvable' && !e.temporary));
    await assert.rejects(resolvePublicHost(new URL('http://broken.test/'), true, undefined, lookup), refusal((e) => e.temporary && e.failure === 'ESERVFAIL'));
    await assert.rejects(resolvePublicHost(new URL('http://hang.test/'), true, undefined, lookup), refusal((e) => e.temporary && e.failure === 'ETIMEOUT'));
    assert.ok(dns.queries.includes('hang.test A'), 'the silent server was asked');
  });

  test('the process resolver follows DNS_SERVERS: the checked address is the one the request goes to', async () => {
    const server = http.createServer((req, res) => res.end(`served ${req.headers.host}`));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
    const port = (server.address() as AddressInfo).port;
    const config = loadConfig({ DNS_SERVERS: dns.server, DNS_TIMEOUT_MS: '2000' });
    const restore = useDnsSettings(config.dns);
    try {
      const url = new URL(`http://site.test:${port}/`);
      // No lookup given: what webhooks, Slack, push, MCP and fetch_url resolve with.
      const target = await resolvePublicHost(url, true);
      assert.deepEqual(target, { address: '127.0.0.2', family: 4 });
      const body = await new Promise<string>((resolve, reject) => {
        http.get(url, { lookup: pinnedLookup(target) as never, agent: false }, (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve(text));
        }).on('error', reject);
      });
      assert.equal(body, `served site.test:${port}`);
    } finally {
      restore();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('lookups waiting on a server that never answers hold no thread: file, zlib and crypto work goes on', async () => {
    // A long bound, so that the lookups are surely still waiting while the rest runs; closing ends them.
    const restore = useDnsSettings({ timeoutMs: 60_000, servers: [dns.server], search: [] });
    const settled: string[] = [];
    const lookups = Array.from({ length: 8 }, (_, i) =>
      resolvePublicHost(new URL(`http://hang${i}.test/`), true).then(
        () => settled.push(`hang${i}: resolved`),
        (err: AddressRefused) => {
          settled.push(`hang${i}: ${err.failure}`);
          return err;
        },
      ),
    );
    try {
      await eventually(() => assert.ok(Array.from({ length: 8 }, (_, i) => `hang${i}.test A`).every((q) => dns.queries.includes(q)), dns.queries.join()));
      // libuv's pool has four threads: eight getaddrinfo calls in flight would hold all of them, and none of these would run.
      const [source] = await Promise.all([
        readFile(new URL(import.meta.url), 'utf8'),
        ...Array.from({ length: 4 }, () => readFile(hostsFile)),
        promisify(gzip)(Buffer.alloc(100_000, 'x')),
        promisify(pbkdf2)('secret', 'salt', 1_000, 32, 'sha256'),
      ]);
      assert.match(source, /hold no thread/);
      assert.deepEqual(settled, [], 'the lookups were still waiting while the pool ran');
    } finally {
      restore();
    }
    const ended = await Promise.all(lookups);
    assert.equal(settled.length, 8);
    for (const err of ended) assert.ok(err instanceof AddressRefused && err.temporary, String(err));
  });

  test('the hosts file answers first, localhost is loopback, .invalid does not exist: no DNS query for any of them', async () => {
    const lookup = createHostLookup({ timeoutMs: 2_000, servers: [dns.server], search: [], hostsFile });
    const before = dns.queries.length;
    assert.deepEqual(await lookup('intranet.test'), [
      { address: '127.0.0.9', family: 4 },
      { address: '::1', family: 6 },
    ]);
    assert.deepEqual(await lookup('intranet-alias.TEST'), [{ address: '127.0.0.9', family: 4 }]);
    for (const name of ['localhost', 'api.localhost']) assert.deepEqual(await lookup(name), [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }], name);
    await assert.rejects(resolvePublicHost(new URL('http://nothing.invalid/'), true, undefined, lookup), refusal((e) => !e.temporary));
    assert.deepEqual(dns.queries.slice(before), []);
    await assert.rejects(resolvePublicHost(new URL('http://localhost/'), false, undefined, lookup), refusal((e) => e.reason === 'private'));
  });

  test('a short name goes through the search domains first, as getaddrinfo tries them; a longer one as it is first', async () => {
    const lookup = createHostLookup({ timeoutMs: 2_000, servers: [dns.server], search: ['corp.test'], ndots: 1 });
    const before = dns.queries.length;
    assert.deepEqual(await lookup('db'), [{ address: '10.1.2.3', family: 4 }]);
    assert.deepEqual(dns.queries.slice(before).filter((q) => q.endsWith(' A')), ['db.corp.test A']);
    const next = dns.queries.length;
    assert.deepEqual(await lookup('site.test'), [{ address: '127.0.0.2', family: 4 }]);
    assert.deepEqual(dns.queries.slice(next).filter((q) => q.endsWith(' A')), ['site.test A']);
    await assert.rejects(lookup('nowhere'), (err: { code?: string }) => err.code === 'ENOTFOUND');
  });

  test('DNS_SERVERS takes addresses with or without a port; anything else stops the start', () => {
    assert.deepEqual(loadConfig({ DNS_SERVERS: '1.1.1.1, 10.0.0.2:5353, 2606:4700::1111, [fd00::53]:53' }).dns.servers, ['1.1.1.1', '10.0.0.2:5353', '2606:4700::1111', '[fd00::53]:53']);
    assert.equal(loadConfig({}).dns.servers, undefined);
    for (const bad of ['dns.example.org', '10.0.0.2:99999', '[10.0.0.2]:53', '1.1.1.1:']) {
      assert.throws(() => loadConfig({ DNS_SERVERS: bad }), (err: unknown) => err instanceof ConfigError && /DNS_SERVERS/.test(err.message), bad);
    }
    assert.throws(() => loadConfig({ DNS_TIMEOUT_MS: '0' }), /DNS_TIMEOUT_MS/);
  });
});
