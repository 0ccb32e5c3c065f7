import { AppError, Forbidden, Unauthorized } from '../../errors.ts';
import { sha256Hex } from '../../platform/crypto/cipher.ts';
import type { Db } from '../../platform/db/database.ts';
import type { Limiter } from '../../platform/ratelimit/limiter.ts';
import type { UserRow, UsersService } from '../users/index.ts';
import type { OneTimeTokens } from './one-time-tokens.ts';
import type { SigningKeys } from './signing-keys.ts';

export const MFA_AUDIENCE = 'parley:mfa';
export const MFA_TOKEN_TTL_SECONDS = 300;
/** Codes one challenge takes, wrong or right: after the fifth wrong one it is spent, and the user signs in again. */
export const MFA_CHALLENGE_TRIES = 5;

export interface MfaChallengesDeps {
  keys: SigningKeys;
  tokens: OneTimeTokens;
  users: UsersService;
  issuer: string;
  /** Counts the codes tried against each challenge (by the token's hash), on every instance; sized MFA_CHALLENGE_TRIES over MFA_TOKEN_TTL_SECONDS. */
  tries: Limiter;
}

/** A challenge that checked out: whose it is, how its first step was passed, and how to spend it. */
export interface MfaChallenge {
  user: UserRow;
  method: string;
  /**
   * Uses the challenge up within `tx`, after checking the account again under its row lock; returns the account as
   * locked. Throws 401 invalid_mfa_token when the challenge already was used, or the account is gone or its
   * password changed; 403 account_disabled when an administrator disabled it since the first step.
   */
  spend(tx: Db): Promise<UserRow>;
}

const invalidChallenge = () => Unauthorized('The sign-in challenge is invalid, has expired or was already used; sign in again', 'invalid_mfa_token');

/** Which password the first step of a sign-in saw, for its MFA challenge: a short digest of the hash, which the token shows to its holder. */
const passwordTag = (user: UserRow) => sha256Hex(user.passwordHash ?? '').slice(0, 16);

/**
 * The MFA challenge of a sign-in: a signed token (who passed the first step, how, with which password) that is
 * also a one-time token in the database, so it completes one sign-in, on whichever instance, and no more. It is
 * spent in the transaction that claims the code, or by its last allowed wrong code.
 */
export function createMfaChallenges(d: MfaChallengesDeps) {
  async function open(mfaToken: string): Promise<MfaChallenge> {
    let claims: { sub?: string; pwd?: unknown; method?: unknown };
    try {
      claims = await d.keys.verify(mfaToken, { audience: MFA_AUDIENCE, issuer: d.issuer });
    } catch {
      throw invalidChallenge();
    }
    const userId = await d.tokens.peek(mfaToken, 'mfa_challenge');
    const user = userId && userId === claims.sub ? await d.users.byId(userId) : undefined;
    checkAccount(user, claims.pwd);
    const method = typeof claims.method === 'string' && /^[\w:.-]{1,64}$/.test(claims.method) ? claims.method : 'password';
    return {
      user,
      method,
      async spend(tx) {
        // Again in the transaction that spends the challenge, the account's row locked: an account disabled (or
        // deleted, or its password changed) after the read above, while the code was being checked, is refused here,
        // and an administrator disabling it now waits for this sign-in to commit, then revokes the session it opens.
        const current = await d.users.repo.lockById(user.id, tx);
        checkAccount(current, claims.pwd);
        if ((await d.tokens.consume(mfaToken, 'mfa_challenge', tx)) !== user.id) throw invalidChallenge();
        return current;
      },
    };
  }

  /**
   * An account that may still finish signing in: a challenge of an account deleted since, or passed with a password
   * since changed or reset, opens nothing (401, sign in again); a disabled one is refused as at the first step (403).
   */
  function checkAccount(user: UserRow | undefined, pwd: unknown): asserts user is UserRow {
    if (!user || pwd !== passwordTag(user)) throw invalidChallenge();
    if (user.disabledAt) throw Forbidden('This account is disabled', 'account_disabled');
  }

  return {
    /** A challenge for a user who passed the first step by `method`. */
    async issue(user: UserRow, method: string): Promise<{ mfaToken: string; expiresIn: number }> {
      const mfaToken = await d.keys.sign({ purpose: 'mfa', method, pwd: passwordTag(user) }, { subject: user.id, audience: MFA_AUDIENCE, issuer: d.issuer, ttlSeconds: MFA_TOKEN_TTL_SECONDS });
      // Beside the user's other challenges: two devices may be signing in at once.
      await d.tokens.record(user.id, 'mfa_challenge', mfaToken, MFA_TOKEN_TTL_SECONDS);
      return { mfaToken, expiresIn: MFA_TOKEN_TTL_SECONDS };
    },

    /** The challenge a token names, without trying or spending it; throws 401 if it is bad, expired or spent. */
    open,

    /**
     * Tries the challenge with `verify`, which must call `spend` in the transaction that accepts the code. One try
     * more than MFA_CHALLENGE_TRIES finds the challenge spent (as is the last wrong code's), whatever its code.
     */
    async redeem<T>(mfaToken: string, verify: (challenge: MfaChallenge) => Promise<T>): Promise<MfaChallenge & { result: T }> {
      const challenge = await open(mfaToken);
      const tries = await d.tries.consume(sha256Hex(mfaToken));
      if (!tries.allowed) {
        await d.tokens.consume(mfaToken, 'mfa_challenge');
        throw invalidChallenge();
      }
      // The account as the spending transaction locked and checked it: what the session is opened for.
      let spent: UserRow | undefined;
      const spend = async (tx: Db) => (spent = await challenge.spend(tx));
      try {
        const result = await verify({ ...challenge, spend });
        if (!spent) throw new Error('An MFA challenge was verified without being spent');
        return { ...challenge, user: spent, result };
      } catch (err) {
        if (tries.remaining === 0 && err instanceof AppError && err.code === 'invalid_mfa_code') await d.tokens.consume(mfaToken, 'mfa_challenge');
        throw err;
      }
    },
  };
}

export type MfaChallenges = ReturnType<typeof createMfaChallenges>;
