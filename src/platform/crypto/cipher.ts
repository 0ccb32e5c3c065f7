import { createCipheriv, createDecipheriv, createHmac, hash, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';

/** Master keys by version; a single key is version 1. */
const byVersion = (keys: Map<number, Buffer> | Buffer): Map<number, Buffer> => (keys instanceof Map ? keys : new Map([[1, keys]]));

/**
 * AES-256-GCM with a random 96-bit IV per message. Output:
 * `v<version>.<iv>.<ciphertext>.<tag>` in base64url; the version names the key
 * so a rotated master key can still open old values.
 */
export class Cipher {
  /**
   * KeyObjects, not Buffers: Node 24 spends ~20 µs per cipher or HMAC telling a Buffer key from a KeyObject
   * or CryptoKey (measured: an HMAC under a Buffer key 26 µs, under a KeyObject 4.5 µs).
   */
  readonly #keys: Map<number, KeyObject>;
  readonly #current: number;

  constructor(keys: Map<number, Buffer> | Buffer) {
    this.#keys = new Map([...byVersion(keys)].map(([v, k]) => [v, createSecretKey(k)]));
    this.#current = Math.max(...this.#keys.keys());
  }

  encrypt(plaintext: string | Buffer, context = ''): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#keys.get(this.#current)!, iv);
    cipher.setAAD(Buffer.from(context));
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return [`v${this.#current}`, iv, ct, cipher.getAuthTag()].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
  }

  decrypt(value: string, context = ''): Buffer {
    const [v, iv, ct, tag] = value.split('.');
    const key = this.#keys.get(Number(v?.slice(1)));
    if (!key || !iv || ct === undefined || !tag) throw new Error('Unreadable ciphertext');
    // A fixed tag length: GCM would otherwise accept a tag truncated to 4 bytes, which is forgeable.
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'), { authTagLength: 16 });
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]);
  }
}

/** A subkey of a master key for one purpose: MACs never share a key with encryption or with each other. */
const subkey = (key: Buffer, purpose: string) => createSecretKey(createHmac('sha256', key).update(`parley:mac:${purpose}`).digest());

/**
 * HMAC-SHA256 signatures under keys derived from the master key, for values
 * a client carries and hands back (signed URLs): `v<version>.<mac>`, so a
 * rotated master key still verifies what the old one signed.
 */
export class Signer {
  readonly #keys: Map<number, KeyObject>;
  readonly #current: number;

  constructor(keys: Map<number, Buffer> | Buffer, purpose: string) {
    this.#keys = new Map([...byVersion(keys)].map(([v, k]) => [v, subkey(k, purpose)]));
    this.#current = Math.max(...this.#keys.keys());
  }

  sign(data: string): string {
    return `v${this.#current}.${createHmac('sha256', this.#keys.get(this.#current)!).update(data).digest('base64url')}`;
  }

  /** Only the exact form `sign` writes: Node's base64url decoding skips characters it does not know, so `mac!` would pass for `mac`. */
  verify(signature: string, data: string): boolean {
    const parts = SIGNATURE.exec(signature);
    const key = parts && this.#keys.get(Number(parts[1]));
    if (!key) return false;
    const expected = createHmac('sha256', key).update(data).digest();
    return timingSafeEqual(Buffer.from(parts[2]!, 'base64url'), expected);
  }
}

/** `v<version>.<HMAC-SHA256 in unpadded base64url>` (32 bytes: 43 characters, the last one of the 16 that end on whole bits). */
const SIGNATURE = /^v(0|[1-9]\d{0,8})\.([A-Za-z0-9_-]{42}[AEIMQUYcgkosw048])$/;

/** One-shot (`crypto.hash`): no Hash object per call, which API-key checks pay on every request. */
export const sha256Hex = (value: string) => hash('sha256', value, 'hex');

/** A URL-safe random secret with `bytes` bytes of entropy. */
export const randomToken = (bytes = 32) => randomBytes(bytes).toString('base64url');
