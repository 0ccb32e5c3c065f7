import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startApp, type ApiResponse, type TestApp } from '../support/app.ts';
import { assertUnavailable, timed } from '../support/outage.ts';
import { eventually } from '../support/eventually.ts';
import { createUser, type TestUser } from '../support/factories.ts';
import { uploadFile } from '../support/files.ts';
import { startS3, type LocalS3 } from '../support/s3.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';

/** Past the request bound the app runs with here (1 s), far short of hung (the SDK alone waited 150 s and more). */
const within = { dependency: 'Storage', withinMs: 5_000 };

// The S3 service behind a proxy the test can stall or cut.
describe('S3 storage outage', () => {
  let s3: LocalS3;
  let proxy: Awaited<ReturnType<typeof startTcpProxy>>;
  let t: TestApp;
  let u: TestUser;
  let stored: string;
  before(async () => {
    s3 = await startS3();
    const endpoint = new URL(s3.settings.endpoint!);
    proxy = await startTcpProxy({ host: endpoint.hostname, port: Number(endpoint.port) });
    t = await startApp({ env: { ...s3.env, S3_ENDPOINT: `http://${proxy.host}:${proxy.port}`, S3_REQUEST_TIMEOUT_MS: '1000' } });
    u = await createUser(t);
    stored = (await uploadFile(t, u, 'kept.txt', Buffer.from('kept'))).id;
  });
  after(async () => {
    await proxy.heal();
    await t.close();
    await proxy.close();
    await s3.close();
  });

  const upload = () => {
    const form = new FormData();
    form.append('file', new Blob([Buffer.from('new bytes')]), 'new.txt');
    return fetch(`${t.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${u.accessToken}` }, body: form }).then(async (r) => ({ status: r.status, headers: r.headers, text: await r.text() }) as ApiResponse);
  };
  const parsed = (r: ApiResponse) => ({ ...r, body: JSON.parse(r.text) });
  const download = () => t.api('GET', `/v1/files/${stored}/content`, { token: u.accessToken });

  test('a bucket that does not exist (a deployment mistake) is the same 503, not a 500', async () => {
    const wrong = await startApp({ env: { ...s3.env, S3_BUCKET: 'no-such-bucket' } });
    try {
      const someone = await createUser(wrong);
      const form = new FormData();
      form.append('file', new Blob([Buffer.from('bytes')]), 'a.txt');
      const up = await timed(() => fetch(`${wrong.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${someone.accessToken}` }, body: form }).then(async (r) => parsed({ status: r.status, headers: r.headers, text: await r.text() } as ApiResponse)));
      assertUnavailable(up, 'an upload', within);
      assert.equal((await wrong.api('GET', '/ready')).body.checks.storage, 'down');
    } finally {
      await wrong.close();
    }
  });

  for (const outage of ['stalled', 'refused'] as const) {
    test(`${outage}: uploads and downloads are a quick 503 naming the storage; nothing half-stored; back when it is`, async () => {
      const before = (await t.api('GET', '/v1/files', { token: u.accessToken })).body.data.length;
      if (outage === 'stalled') proxy.stall();
      else await proxy.cut();
      const up = await timed(async () => parsed(await upload()));
      assertUnavailable(up, 'an upload', within);
      assertUnavailable(await timed(download), 'a download', within);
      assert.equal((await t.api('GET', '/v1/files', { token: u.accessToken })).body.data.length, before, 'no row for the refused upload');
      await proxy.heal();
      await eventually(async () => assert.equal((await download()).text, 'kept'), 10_000);
      assert.equal((await upload()).status, 201);
    });
  }
});
