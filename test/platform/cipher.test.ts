import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Cipher, Signer } from '../../src/platform/crypto/cipher.ts';
import { resolveMasterKey } from '../../src/platform/crypto/master-key.ts';

/** Flips one bit of the base64url part `index` of a `v.iv.ct.tag` value. */
function flip(value: string, index: number): string {
  const parts = value.split('.');
  const bytes = Buffer.from(parts[index]!, 'base64url');
  bytes[0]! ^= 1;
  parts[index] = bytes.toString('base64url');
  return parts.join('.');
}

describe('Cipher (AES-256-GCM)', () => {
  const cipher = new Cipher(randomBytes(32));

  test('round trip, strings and buffers, with and without a context', () => {
    assert.equal(cipher.decrypt(cipher.encrypt('hello')).toString(), 'hello');
    assert.equal(cipher.decrypt(cipher.encrypt('naïve ☕', 'ctx'), 'ctx').toString(), 'naïve ☕');
    const bytes = randomBytes(1000);
    assert.deepEqual(cipher.decrypt(cipher.encrypt(bytes)), bytes);
    assert.equal(cipher.decrypt(cipher.encrypt('')).toString(), '');
  });

  test('a tampered IV, ciphertext or tag is refused', () => {
    const sealed = cipher.encrypt('secret value', 'ctx');
    for (const part of [1, 2, 3]) assert.throws(() => cipher.decrypt(flip(sealed, part), 'ctx'), `part ${part}`);
    assert.throws(() => cipher.decrypt(sealed.split('.').slice(0, 3).join('.'), 'ctx'), /Unreadable/);
    assert.throws(() => cipher.decrypt('not a ciphertext', 'ctx'), /Unreadable/);
  });

  test('a truncated tag is refused (GCM would otherwise check only its first bytes)', () => {
    const [v, iv, ct, tag] = cipher.encrypt('secret value').split('.');
    const short = Buffer.from(tag!, 'base64url').subarray(0, 4).toString('base64url');
    assert.throws(() => cipher.decrypt([v, iv, ct, short].join('.')));
  });

  test('the wrong context is refused', () => {
    const sealed = cipher.encrypt('totp seed', 'user:1');
    assert.throws(() => cipher.decrypt(sealed, 'user:2'));
    assert.throws(() => cipher.decrypt(sealed));
  });

  test('another key is refused', () => {
    assert.throws(() => new Cipher(randomBytes(32)).decrypt(cipher.encrypt('x')));
  });

  test('every message gets a fresh IV', () => {
    const sealed = Array.from({ length: 200 }, () => cipher.encrypt('same plaintext'));
    const ivs = new Set(sealed.map((s) => s.split('.')[1]));
    assert.equal(ivs.size, sealed.length);
    assert.equal(Buffer.from(sealed[0]!.split('.')[1]!, 'base64url').length, 12);
    assert.equal(new Set(sealed).size, sealed.length, 'equal plaintexts give different ciphertexts');
  });

  test('key versions: a rotated cipher writes with the newest key and still reads the old', () => {
    const k1 = randomBytes(32);
    const old = new Cipher(new Map([[1, k1]]));
    const rotated = new Cipher(new Map([[1, k1], [2, randomBytes(32)]]));
    const before = old.encrypt('kept');
    const after = rotated.encrypt('new');
    assert.ok(after.startsWith('v2.'));
    assert.equal(rotated.decrypt(before).toString(), 'kept');
    assert.throws(() => old.decrypt(after), /Unreadable/);
  });
});

describe('master key', () => {
  test('generated once into the data dir with mode 0600, then reused', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'parley-key-'));
    try {
      const first = resolveMasterKey(undefined, dir);
      assert.equal(first.length, 32);
      assert.equal(statSync(path.join(dir, 'master.key')).mode & 0o777, 0o600);
      assert.deepEqual(resolveMasterKey(undefined, dir), first);
      const configured = randomBytes(32);
      assert.equal(resolveMasterKey(configured, dir), configured, 'a configured key wins');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Signer (HMAC-SHA256, versioned keys)', () => {
  const old = randomBytes(32);
  const signer = new Signer(new Map([[1, old], [2, randomBytes(32)]]), 'links');

  test('a signature verifies for its data and purpose, under a rotated key too', () => {
    const signature = signer.sign('file:1');
    assert.match(signature, /^v2\.[A-Za-z0-9_-]{43}$/);
    assert.equal(signer.verify(signature, 'file:1'), true);
    assert.equal(signer.verify(signature, 'file:2'), false);
    assert.equal(new Signer(new Map([[2, randomBytes(32)]]), 'links').verify(signature, 'file:1'), false, 'another key');
    const before = new Signer(old, 'links').sign('file:1');
    assert.equal(before.startsWith('v1.'), true);
    assert.equal(signer.verify(before, 'file:1'), true, 'signed before the rotation');
    assert.equal(new Signer(old, 'other').verify(before, 'file:1'), false, 'another purpose');
  });

  test('only the exact form it writes: no other tag, trailing characters or extra parts', () => {
    const signature = signer.sign('file:1');
    const mac = signature.slice(3);
    for (const forged of [`w2.${mac}`, `V2.${mac}`, `v02.${mac}`, `v2.${mac}!`, `v2.${mac}=`, `v2.${mac}.x`, ` ${signature}`, `v2.${mac.slice(0, -1)}`, `v2..${mac}`, `v2.${mac}${mac}`, '', 'v2.']) {
      assert.equal(signer.verify(forged, 'file:1'), false, forged);
    }
  });
});
