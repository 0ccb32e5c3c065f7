import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { AddressRefused, addressRanges, isPrivateAddress, pinnedLookup, resolvePublicHost } from '../../src/platform/net/public-address.ts';

describe('public addresses', () => {
  let server: http.Server;
  let port: number;
  let hosts: string[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      hosts.push(req.headers.host ?? '');
      res.end('pinned');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('private, loopback, link-local, unique-local, CGNAT and mapped addresses are private; public ones are not', () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '::1', '::', 'fd00::1', 'fe80::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '64:ff9b::a9fe:a9fe', 'not-an-ip']) {
      assert.equal(isPrivateAddress(a), true, a);
    }
    // Other ways IPv6 carries an IPv4 address: translated (SIIT), 6to4, written out in full; and local-use NAT64, all of it.
    // Ranges of a network's own: old site-local, documentation, segment routing.
    for (const a of ['fec0::1', 'feff::1', '3fff::1', '3fff:fff::1', '5f00::1', '2001:db8::1']) assert.equal(isPrivateAddress(a), true, a);
    for (const a of ['::ffff:0:127.0.0.1', '::ffff:0:a00:1', '2002:7f00:1::1', '2002:a9fe:a9fe::', '0:0:0:0:0:ffff:7f00:1', '64:ff9b:0:0:0:0:a00:1', '64:ff9b:1::808:808', '64:ff9b:1:ffff::1']) {
      assert.equal(isPrivateAddress(a), true, a);
    }
    for (const a of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '2606:4700:4700::1111', '3fff:1000::1', '5f01::1', '::ffff:8.8.8.8', '::ffff:0:8.8.8.8', '2002:808:808::1', '64:ff9b::808:808']) assert.equal(isPrivateAddress(a), false, a);
  });

  test('a host is refused when it resolves to a private address, unless allowed or within an allowed range', async () => {
    for (const url of ['http://localhost/', 'http://127.0.0.2/', 'http://[::1]/']) {
      await assert.rejects(resolvePublicHost(new URL(url), false), (err: unknown) => err instanceof AddressRefused && err.reason === 'private', url);
    }
    assert.deepEqual(await resolvePublicHost(new URL('http://127.0.0.2/'), true), { address: '127.0.0.2', family: 4 });
    const ranges = addressRanges('127.0.0.2/32, fd00::/8');
    assert.deepEqual(await resolvePublicHost(new URL('http://127.0.0.2/'), false, ranges), { address: '127.0.0.2', family: 4 });
    assert.deepEqual(await resolvePublicHost(new URL('http://[fd00::5]/'), false, ranges), { address: 'fd00::5', family: 6 });
    await assert.rejects(resolvePublicHost(new URL('http://127.0.0.1/'), false, ranges), AddressRefused);
    await assert.rejects(resolvePublicHost(new URL('http://nothing-here.invalid/'), true), (err: unknown) => err instanceof AddressRefused && err.reason === 'unresolvable');
  });

  test('address ranges are checked when read', () => {
    for (const bad of ['10.0.0.0/33', 'fd00::/129', 'example.org', '10.0.0/8', '10.0.0.0/x']) assert.throws(() => addressRanges(bad), /not an IP address or CIDR range/, bad);
    assert.doesNotThrow(() => addressRanges(''));
  });

  test('a pinned lookup sends the connection to the checked address, whatever the name resolves to, and keeps the name for the Host header', async () => {
    hosts = [];
    const body = await new Promise<string>((resolve, reject) => {
      // A name that resolves nowhere: only the pinned address can be reached.
      const req = http.get(`http://rebinding.invalid:${port}/`, { lookup: pinnedLookup({ address: '127.0.0.2', family: 4 }) as never, agent: false }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
    });
    assert.equal(body, 'pinned');
    assert.deepEqual(hosts, [`rebinding.invalid:${port}`]);
  });
});
