import { randomUUID } from 'node:crypto';
import { desc, gt, isNull, or, sql } from 'drizzle-orm';
import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type JWK, type JWTPayload, type CryptoKey } from 'jose';
import { ConfigError } from '../../errors.ts';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import type { Cipher } from '../../platform/crypto/cipher.ts';
import { jwtKeys } from './schema.ts';

const ALG = 'EdDSA';
const RELOAD_INTERVAL_MS = 60_000;

interface LoadedKey {
  kid: string;
  publicKey: CryptoKey;
  publicJwk: JWK;
  privateJwk?: JWK;
  createdAt: Date;
  retiredAt: Date | null;
}

/**
 * Ed25519 keys for access tokens, persisted (private halves encrypted) so every
 * instance and every restart signs and verifies with the same set. A rotated
 * key keeps verifying for `verifyGraceSeconds` after its retirement.
 */
export class SigningKeys {
  readonly #db: Db;
  readonly #cipher: Cipher;
  readonly #graceSeconds: number;
  #keys = new Map<string, LoadedKey>();
  #signer?: { kid: string; key: CryptoKey };
  #loadedAt = 0;
  #loading?: Promise<void>;

  constructor(db: Db, cipher: Cipher, verifyGraceSeconds: number) {
    this.#db = db;
    this.#cipher = cipher;
    this.#graceSeconds = verifyGraceSeconds;
  }

  /**
   * Loads keys, creating the first one if there is none. Instances starting
   * together on an empty database take a table lock to check and create, so
   * they all end up with the same single key (two first keys made at once
   * would each sign tokens the other instance does not know yet).
   */
  async init(): Promise<void> {
    await this.#reload();
    if (!this.#signer) {
      await inTransaction(this.#db, async (tx) => {
        await tx.execute(sql`lock table ${jwtKeys} in share row exclusive mode`);
        const [current] = await tx.select({ id: jwtKeys.id }).from(jwtKeys).where(isNull(jwtKeys.retiredAt)).limit(1);
        if (!current) await this.#create(tx);
      });
      await this.#reload();
    }
  }

  /** Adds a new signing key and retires the current ones. Returns the new kid. */
  async rotate(): Promise<string> {
    const kid = await inTransaction(this.#db, async (tx) => {
      await tx.update(jwtKeys).set({ retiredAt: new Date() }).where(isNull(jwtKeys.retiredAt));
      return this.#create(tx);
    });
    await this.#reload();
    return kid;
  }

  async sign(claims: JWTPayload, opts: { subject: string; audience: string; issuer: string; ttlSeconds: number }): Promise<string> {
    await this.#fresh();
    const signer = this.#signer!;
    return new SignJWT(claims)
      .setProtectedHeader({ alg: ALG, kid: signer.kid, typ: 'JWT' })
      .setSubject(opts.subject)
      .setAudience(opts.audience)
      .setIssuer(opts.issuer)
      .setIssuedAt()
      .setJti(randomUUID())
      .setExpirationTime(Math.floor(Date.now() / 1000) + opts.ttlSeconds)
      .sign(signer.key);
  }

  /** Verifies signature, algorithm, issuer, audience and expiry; throws on any failure. */
  async verify(token: string, opts: { audience: string; issuer: string }): Promise<JWTPayload> {
    const { payload } = await jwtVerify(token, async (header) => this.#publicKey(header.kid), {
      algorithms: [ALG],
      audience: opts.audience,
      issuer: opts.issuer,
    });
    return payload;
  }

  async jwks(): Promise<{ keys: JWK[] }> {
    await this.#fresh();
    return { keys: [...this.#keys.values()].map((k) => ({ ...k.publicJwk, kid: k.kid, alg: ALG, use: 'sig' })) };
  }

  async #publicKey(kid: string | undefined): Promise<CryptoKey> {
    if (!kid) throw new Error('token has no kid');
    let key = this.#keys.get(kid);
    // A key rotated on another instance: look once more before refusing.
    if (!key && Date.now() - this.#loadedAt > 1000) {
      await this.#reload();
      key = this.#keys.get(kid);
    }
    if (!key) throw new Error('unknown signing key');
    return key.publicKey;
  }

  async #fresh() {
    if (Date.now() - this.#loadedAt > RELOAD_INTERVAL_MS) await this.#reload();
  }

  async #create(db: Db = this.#db): Promise<string> {
    const { publicKey, privateKey } = await generateKeyPair(ALG, { crv: 'Ed25519', extractable: true });
    const kid = randomUUID();
    const privateJwk = await exportJWK(privateKey);
    await db.insert(jwtKeys).values({
      id: kid,
      publicJwk: await exportJWK(publicKey) as Record<string, unknown>,
      privateKeyEnc: this.#cipher.encrypt(JSON.stringify(privateJwk), `jwt:${kid}`),
    });
    return kid;
  }

  #reload(): Promise<void> {
    this.#loading ??= (async () => {
      try {
        const horizon = new Date(Date.now() - this.#graceSeconds * 1000);
        const rows = await this.#db
          .select()
          .from(jwtKeys)
          .where(or(isNull(jwtKeys.retiredAt), gt(jwtKeys.retiredAt, horizon)))
          .orderBy(desc(jwtKeys.createdAt));
        const keys = new Map<string, LoadedKey>();
        let signer: { kid: string; key: CryptoKey } | undefined;
        for (const row of rows) {
          const publicJwk = row.publicJwk as JWK;
          keys.set(row.id, {
            kid: row.id,
            publicJwk,
            publicKey: (await importJWK(publicJwk, ALG)) as CryptoKey,
            createdAt: row.createdAt,
            retiredAt: row.retiredAt,
          });
          if (!signer && !row.retiredAt) {
            const privateJwk = JSON.parse(this.#decrypt(row.privateKeyEnc, row.id).toString('utf8')) as JWK;
            signer = { kid: row.id, key: (await importJWK(privateJwk, ALG)) as CryptoKey };
          }
        }
        this.#keys = keys;
        this.#signer = signer ?? this.#signer;
        this.#loadedAt = Date.now();
      } finally {
        this.#loading = undefined;
      }
    })();
    return this.#loading;
  }

  /**
   * The signing key's private half. A master key that cannot open it is the deployment's, not a bug's:
   * an instance started with a PARLEY_MASTER_KEY other than the one that wrote the key (or with none,
   * so a key of its own was made under its data directory).
   */
  #decrypt(sealed: string, kid: string): Buffer {
    try {
      return this.#cipher.decrypt(sealed, `jwt:${kid}`);
    } catch (err) {
      throw new ConfigError(
        `PARLEY_MASTER_KEY does not decrypt the signing key stored in this database (kid ${kid}): every instance on one database must ` +
          'be given the same PARLEY_MASTER_KEY (an instance without one uses a key of its own, made in its data directory)',
        { cause: err },
      );
    }
  }
}

