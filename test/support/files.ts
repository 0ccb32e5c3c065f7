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

/** Uploads through the real multipart endpoint and expects it stored (201): for tests about what files are used for. */
export async function uploadFile(t: TestApp, u: TestUser, name: string, bytes: Buffer | string): Promise<StoredFile> {
  const form = new FormData();
  form.append('file', new Blob([bytes]), name);
  const res = await fetch(`${t.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${u.accessToken}` }, body: form });
  const text = await res.text();
  assert.equal(res.status, 201, text);
  return JSON.parse(text) as StoredFile;
}
