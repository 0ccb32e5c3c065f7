import { RateLimited } from '../../errors.ts';
import type { Limiter } from '../../platform/ratelimit/limiter.ts';
import { passwords } from './passwords.ts';

/**
 * Every password check — sign-in and each re-authentication (password change,
 * 2FA disable, account deletion) — counts against one per-account failure
 * limit, keyed by email whether or not the account exists, so neither a guesser
 * at the login form nor a thief holding a stolen token gets more tries.
 */
export function createPasswordGuard(failures: Limiter) {
  return {
    /** True when `password` matches `hash`; throws 429 while the account is locked. */
    async verify(email: string, hash: string | null | undefined, password: string): Promise<boolean> {
      // Counted before the check (a right password clears the count after): guesses sent together would each
      // pass a count none of them had raised yet, and get far more checks than the limit.
      const state = await failures.consume(email);
      if (!state.allowed) {
        throw RateLimited(state.resetMs / 1000, 'Too many failed password attempts for this account; try again later', 'too_many_attempts');
      }
      const ok = await passwords.verify(hash, password);
      if (ok) await failures.reset(email);
      return ok;
    },

    /** Clears the count, e.g. after a successful password reset. */
    reset: (email: string) => failures.reset(email),
  };
}

export type PasswordGuard = ReturnType<typeof createPasswordGuard>;
