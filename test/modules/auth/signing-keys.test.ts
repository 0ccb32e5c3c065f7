import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import { ConfigError } from '../../../src/errors.ts';
import { jwtKeys } from '../../../src/modules/auth/schema.ts';
import { SigningKeys } from '../../../src/modules/auth/signing-keys.ts';
import { Cipher } from '../../../src/platform/crypto/cipher.ts';
import { openDatabase, type Database } from '../../../src/platform/db/database.ts';
import { freshPostgresDatabase } from '../../support/app.ts';

const skip = process.env.DATABASE_URL ? false : 'needs PostgreSQL (DATABASE_URL)';
const claims = { audience: 'parley', issuer: 'http://parley.test' };

describe('signing keys shared by instances on one database', { skip }, () => {
  let fresh: Awaited<ReturnType<typeof freshPostgresDatabase>>;
  let databases: Database[];

  before(async () => {
    fresh = await freshPostgresDatabase();
    databases = Array.from({ length: 4 }, () => openDatabase({ url: fresh.url, dataDir: '', poolSize: 2 }));
    await databases[0]!.migrate();
    // Connected already, so the instances' first reads really happen together.
    await Promise.all(databases.map((d) => d.ping()));
  });
  after(async () => {
    await Promise.all(databases.map((d) => d.close()));
    await fresh.drop();
  });

  test('instances starting together on an empty database make one key, and each verifies what the others sign at once', async () => {
    const cipher = new Cipher(randomBytes(32));
    const instances = databases.map((d) => new SigningKeys(d.db, cipher, 60));
    await Promise.all(instances.map((k) => k.init()));

    const tokens = await Promise.all(instances.map((k) => k.sign({}, { subject: 'u1', ttlSeconds: 60, ...claims })));
    assert.equal(new Set(tokens.map((t) => decodeProtectedHeader(t).kid)).size, 1, 'one signing key');
    for (const verifier of instances) {
      for (const token of tokens) assert.equal((await verifier.verify(token, claims)).sub, 'u1');
    }
    const stored = await databases[0]!.db.select({ id: jwtKeys.id }).from(jwtKeys);
    assert.deepEqual(stored.map((r) => r.id), [decodeProtectedHeader(tokens[0]!).kid], 'one key stored');
  });

  test('an instance given another master key is stopped by a message saying so, not a cipher error', async () => {
    const other = new SigningKeys(databases[1]!.db, new Cipher(randomBytes(32)), 60);
    await assert.rejects(other.init(), (err: Error) => err instanceof ConfigError && /PARLEY_MASTER_KEY does not decrypt the signing key stored in this database/.test(err.message));
  });
});
