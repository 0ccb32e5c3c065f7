import { hash, verify } from '@node-rs/argon2';
import { ValidationError } from '../../errors.ts';

// OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane.
const OPTIONS = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/** A hash of a random password, verified against when no user matches, so timing does not reveal accounts. */
let dummyHash: Promise<string> | undefined;

export const passwords = {
  hash: (password: string) => hash(password, OPTIONS),

  async verify(hashed: string | null | undefined, password: string): Promise<boolean> {
    if (!hashed) {
      dummyHash ??= hash('parley-dummy-password', OPTIONS);
      await verify(await dummyHash, password).catch(() => false);
      return false;
    }
    return verify(hashed, password).catch(() => false);
  },

  /** Length 8–256, and not the email address or its local part. */
  check(password: string, email: string): void {
    if (password.length < 8) throw ValidationError('Password must be at least 8 characters', 'weak_password');
    if (password.length > 256) throw ValidationError('Password must be at most 256 characters', 'weak_password');
    const p = password.toLowerCase();
    const e = email.toLowerCase();
    if (p === e || p === e.split('@')[0]) throw ValidationError('Password must not be your email address', 'weak_password');
  },
};
