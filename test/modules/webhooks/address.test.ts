import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AppError } from '../../../src/errors.ts';
import { checkServerUrl } from '../../../src/modules/mcp/address.ts';
import { checkEndpoint } from '../../../src/modules/notifications/push/transport.ts';
import { resolvePublic } from '../../../src/modules/webhooks/address.ts';
import { post } from '../../../src/modules/webhooks/delivery.ts';
import { startDns } from '../../support/dns.ts';

/** A user-given URL's host checked against a real DNS server that fails for a while (SERVFAIL) or says the name does not exist (NXDOMAIN). */
describe('checking a URL when DNS cannot answer for now', () => {
  let dns: Awaited<ReturnType<typeof startDns>>;
  before(async () => {
    dns = await startDns({ 'hooks.example.test': ['93.184.216.34'], 'flaky.example.test': 'servfail' });
  });
  after(() => dns.close());

  const isStatus = (status: number, code: string) => (err: unknown) => err instanceof AppError && err.status === status && err.code === code;

  test('webhooks, web push and MCP servers: a lookup that failed is a 503 naming DNS with Retry-After, not a 400 blaming the URL; a name that does not exist stays a 400', async () => {
    const flaky = new URL('https://flaky.example.test/hook');
    await assert.rejects(resolvePublic(flaky, false, dns.lookup), (err: unknown) => {
      assert.ok(isStatus(503, 'dependency_unavailable')(err), String(err));
      assert.equal((err as AppError).message, 'DNS is unavailable');
      assert.ok(Number((err as AppError).headers['retry-after']) > 0);
      return true;
    });
    await assert.rejects(checkEndpoint(flaky, false, dns.lookup), isStatus(503, 'dependency_unavailable'));
    await assert.rejects(checkServerUrl(flaky.href, false, dns.lookup), isStatus(503, 'dependency_unavailable'));

    const gone = new URL('https://gone.example.test/hook');
    await assert.rejects(resolvePublic(gone, false, dns.lookup), isStatus(400, 'webhook_url_unresolvable'));
    await assert.rejects(checkEndpoint(gone, false, dns.lookup), isStatus(400, 'push_endpoint_unreachable'));
    await assert.rejects(checkServerUrl(gone.href, false, dns.lookup), isStatus(400, 'mcp_url_unresolvable'));

    // Once DNS answers again the same URL passes.
    dns.zone['flaky.example.test'] = ['93.184.216.34'];
    assert.equal((await resolvePublic(flaky, false, dns.lookup)).address, '93.184.216.34');
  });

  test("a delivery's failed lookup is logged with the resolver's reason, so the attempt reads as worth retrying", async () => {
    dns.zone['flaky.example.test'] = 'servfail';
    const result = await post({ url: 'https://flaky.example.test/hook', headers: {}, body: '{}', timeoutMs: 2_000, allowPrivate: false, lookup: dns.lookup });
    assert.equal(result.ok, false);
    assert.match(result.error ?? '', /flaky\.example\.test could not be resolved \(ESERVFAIL\)/);
  });
});
