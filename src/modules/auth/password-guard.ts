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
  /**
   * The check of each email running now, in this process. Checks of one email wait for each other: guesses
   * sent together would otherwise each read a count none of them had raised yet, and get far more checks
   * than the limit (200 at once got 50 against a limit of 10). Across processes the count is shared, and
   * guesses at once get at most one more check per process. Right passwords are never counted, so a burst
   * of real sign-ins is only queued.
   */
  const running = new Map<string, Promise<unknown>>();

  async function check(email: string, hash: string | null | undefined, password: string): Promise<boolean> {
    const state = await failures.peek(email);
    if (!state.allowed || state.remaining === 0) {
      throw RateLimited(state.resetMs / 1000, 'Too many failed password attempts for this account; try again later', 'too_many_attempts');
    }
    const ok = await passwords.verify(hash, password);
    if (ok) await failures.reset(email);
    else await failures.consume(email);
    return ok;
  }

  return {
    /** True when `password` matches `hash`; throws 429 while the account is locked. */
    async verify(email: string, hash: string | null | undefined, password: string): Promise<boolean> {
      const before = running.get(email);
      const mine = (before ?? Promise.resolve()).then(() => check(email, hash, password));
      const settled = mine.catch(() => undefined);
      running.set(email, settled);
      try {
        return await mine;
      } finally {
        if (running.get(email) === settled) running.delete(email);
      }
    },

    /** Clears the count, e.g. after a successful password reset. */
    reset: (email: string) => failures.reset(email),
  };
}

export type PasswordGuard = ReturnType<typeof createPasswordGuard>;
