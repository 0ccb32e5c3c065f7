import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { PNG } from '../../support/files.ts';
import { startS3, type LocalS3 } from '../../support/s3.ts';


describe('files: downloads redirected to presigned S3 URLs (FILES_DOWNLOAD_REDIRECT)', () => {
  let s3: LocalS3;
  let t: TestApp;
  let u: TestUser;
  let fileId: string;
  before(async () => {
    s3 = await startS3();
    // The public endpoint names the same server by another host, as compose's `localhost:9000` names `minio:9000`.
    const publicEndpoint = s3.env.S3_ENDPOINT!.replace('127.0.0.1', 'localhost');
    t = await startApp({ env: { ...s3.env, S3_PUBLIC_ENDPOINT: publicEndpoint, FILES_DOWNLOAD_REDIRECT: 'true' } });
    u = await createUser(t);
    const form = new FormData();
    form.append('file', new Blob([PNG]), 'pixel é.png');
    const res = await fetch(`${t.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${u.accessToken}` }, body: form });
    assert.equal(res.status, 201);
    fileId = ((await res.json()) as { id: string }).id;
  });
  after(async () => {
    await t.close();
    await s3.close();
  });

  test('the owner is sent to the store, which serves the bytes with the type and name Parley chose, and ranges', async () => {
    const res = await fetch(`${t.url}/v1/files/${fileId}/content`, { headers: { authorization: `Bearer ${u.accessToken}` }, redirect: 'manual' });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('cache-control'), 'private, no-store');
    const location = new URL(res.headers.get('location')!);
    assert.equal(location.hostname, 'localhost', 'signed for the public endpoint');
    assert.match(location.search, /X-Amz-Expires=300/);

    const direct = await fetch(location);
    assert.equal(direct.status, 200);
    assert.deepEqual(Buffer.from(await direct.arrayBuffer()), PNG);
    assert.equal(direct.headers.get('content-type'), 'image/png');
    assert.match(direct.headers.get('content-disposition')!, /^inline; filename="pixel _.png"; filename\*=UTF-8''pixel%20%C3%A9\.png$/);

    const ranged = await fetch(location, { headers: { range: 'bytes=0-7' } });
    assert.equal(ranged.status, 206);
    assert.deepEqual(Buffer.from(await ranged.arrayBuffer()), PNG.subarray(0, 8));
  });

  test('a signed Parley link redirects too, to a URL signed (SigV4) with the deployment\'s key', async () => {
    const link = await t.api('POST', `/v1/files/${fileId}/url`, { token: u.accessToken, body: {} });
    assert.equal(link.status, 200);
    const url = new URL(link.body.url);
    const res = await fetch(`${t.url}${url.pathname}${url.search}`, { redirect: 'manual' });
    assert.equal(res.status, 302);
    const location = res.headers.get('location')!;
    assert.equal((await fetch(location)).status, 200);
    // s3rver does not check SigV4 signatures, so refusing a forged one is the real store's part; here, that it is signed at all.
    const query = new URL(location).searchParams;
    assert.equal(query.get('X-Amz-Algorithm'), 'AWS4-HMAC-SHA256');
    assert.match(query.get('X-Amz-Credential')!, /^S3RVER\//);
    assert.match(query.get('X-Amz-Signature')!, /^[0-9a-f]{64}$/);
  });

  test('a stranger gets 404, not a URL', async () => {
    const stranger = await createUser(t);
    const res = await fetch(`${t.url}/v1/files/${fileId}/content`, { headers: { authorization: `Bearer ${stranger.accessToken}` }, redirect: 'manual' });
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('location'), null);
  });
});
