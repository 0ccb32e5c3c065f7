import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';
import type { S3Settings } from '../../src/platform/storage/s3-storage.ts';

export interface LocalS3 {
  /** What Parley needs to use it (S3_ENDPOINT, S3_BUCKET, …). */
  settings: S3Settings;
  env: Record<string, string>;
  close(): Promise<void>;
}

/**
 * A real S3-compatible server on loopback (s3rver speaks the S3 wire protocol,
 * multipart uploads included), its objects in a temporary directory.
 */
export async function startS3(bucket = 'parley-test'): Promise<LocalS3> {
  const directory = mkdtempSync(path.join(tmpdir(), 'parley-s3-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket, configs: [] }] });
  const { port } = (await server.run()) as { port: number };
  const endpoint = `http://127.0.0.1:${port}`;
  let closed = false;
  // s3rver accepts any signature made with its default key pair.
  const settings: S3Settings = { endpoint, bucket, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true };
  return {
    settings,
    env: { S3_ENDPOINT: endpoint, S3_BUCKET: bucket, S3_REGION: 'us-east-1', S3_ACCESS_KEY_ID: 'S3RVER', S3_SECRET_ACCESS_KEY: 'S3RVER', S3_FORCE_PATH_STYLE: 'true' },
    /** Stops the server; closing a closed one does nothing. */
    async close() {
      if (closed) return;
      closed = true;
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
