import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mcpServers } from '../../../src/modules/mcp/schema.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser } from '../../support/factories.ts';
import { startMcpServer, type TestMcpServer } from '../../support/mcp-server.ts';

for (const backend of backends()) {
  describe(`MCP server addresses, private ones refused [${backend}]`, () => {
    let t: TestApp;
    let mcp: TestMcpServer;

    before(async () => {
      mcp = await startMcpServer();
      t = await startApp({ backend, env: { MCP_LIST_TIMEOUT_MS: '6000' } });
    });
    after(async () => {
      await t?.close();
      await mcp?.close();
    });

    test('a URL on a private, loopback or link-local address, or plain http, is a 400', async () => {
      const u = await createUser(t);
      const cases: Array<[string, string]> = [
        [mcp.url, 'mcp_url_invalid'],
        [mcp.url.replace('http:', 'https:'), 'mcp_url_private'],
        ['https://localhost/mcp', 'mcp_url_private'],
        ['https://[::1]:8443/mcp', 'mcp_url_private'],
        ['https://[::ffff:127.0.0.1]/mcp', 'mcp_url_private'],
        ['https://169.254.169.254/latest/meta-data', 'mcp_url_private'],
        ['https://10.1.2.3/mcp', 'mcp_url_private'],
        ['https://192.168.1.20/mcp', 'mcp_url_private'],
        ['https://0.0.0.0/mcp', 'mcp_url_private'],
      ];
      for (const [url, code] of cases) {
        const res = await t.api('POST', '/v1/mcp-servers', { token: u.accessToken, body: { name: 'internal', url } });
        assert.equal(res.status, 400, `${url}: ${res.text}`);
        assert.equal(res.body.code, code, url);
      }
      const project = await t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'Agent' } });
      const res = await t.api('POST', `/v1/projects/${project.body.id}/mcp-servers`, { token: u.accessToken, body: { name: 'internal', url: 'https://127.0.0.1/mcp' } });
      assert.equal(res.status, 400);
      const list = await t.api('GET', '/v1/mcp-servers', { token: u.accessToken });
      assert.deepEqual(list.body.data, []);
    });

    test('an address checked again at each connection: a server whose host now points inside is never reached', async () => {
      const u = await createUser(t);
      // As if its name resolved to a public address at registration and to a loopback one now.
      const [row] = await t.deps.db.insert(mcpServers).values({ userId: u.id, name: 'rebound', url: mcp.url.replace('http:', 'https:') }).returning();
      const before = mcp.requests.length;
      const tools = await t.api('GET', `/v1/mcp-servers/${row!.id}/tools`, { token: u.accessToken });
      assert.equal(tools.status, 502, tools.text);
      assert.match(tools.body.detail, /private, loopback or link-local/);
      assert.deepEqual(await t.services.toolbox.offered({ userId: u.id, projectId: null, conversationId: null, apiKeyId: null }, []), []);
      assert.equal(mcp.requests.length, before, 'nothing was sent');
    });
  });
}
