import { hash, verify } from '@node-rs/argon2';
import { ValidationError } from '../../errors.ts';

// OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane.
const OPTIONS = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/** A hash of a random password, verified against when no user matches, so timing does not reveal accounts. */
let dummyHash: Promise<string> | undefined;

/**
 * A password as it is hashed: NFKC, as NIST SP 800-63B asks, so the same
 * characters typed on another keyboard or OS (an é composed or as e + accent,
 * a full-width letter) are the same password.
 */
const normal = (password: string) => password.normalize('NFKC');

export const passwords = {
  hash: (password: string) => hash(normal(password), OPTIONS),

  async verify(hashed: string | null | undefined, password: string): Promise<boolean> {
    if (!hashed) {
      dummyHash ??= hash('parley-dummy-password', OPTIONS);
      await verify(await dummyHash, normal(password)).catch(() => false);
      return false;
    }
    const normalized = normal(password);
    if (await verify(hashed, normalized).catch(() => false)) return true;
    // A hash made before passwords were normalized was made from the text as typed.
    return normalized !== password && verify(hashed, password).catch(() => false);
  },

  /** Length 8–256 characters (code points, once normalized: an emoji is one), and not the email address or its local part. */
  check(password: string, email: string): void {
    const length = [...normal(password)].length;
    if (length < 8) throw ValidationError('Password must be at least 8 characters', 'weak_password');
    if (length > 256) throw ValidationError('Password must be at most 256 characters', 'weak_password');
    const p = normal(password).toLowerCase();
    const e = email.toLowerCase();
    if (p === e || p === e.split('@')[0]) throw ValidationError('Password must not be your email address', 'weak_password');
  },
};
