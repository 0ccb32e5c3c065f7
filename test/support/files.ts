import assert from 'node:assert/strict';
import type { TestApp } from './app.ts';
import type { TestUser } from './factories.ts';

/** A real 1×1 PNG. */
export const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');

export interface StoredFile {
  id: string;
  name: string;
  mimeType: string;
  size: number;
}

/** A multipart upload through a real HTTP client (fetch + FormData), fields first, then the file; whatever the answer. */
export async function postFile(t: TestApp, u: TestUser, name: string, bytes: Buffer | string, fields: Record<string, string> = {}, declaredType = 'application/octet-stream') {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append('file', new Blob([bytes], { type: declaredType }), name);
  const res = await fetch(`${t.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${u.accessToken}` }, body: form });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined, text };
}

/** Uploads and expects it stored (201): for tests about what files are used for. */
export async function uploadFile(t: TestApp, u: TestUser, name: string, bytes: Buffer | string): Promise<StoredFile> {
  const res = await postFile(t, u, name, bytes);
  assert.equal(res.status, 201, res.text);
  return res.body as StoredFile;
}
