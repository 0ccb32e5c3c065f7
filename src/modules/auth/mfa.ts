import { and, count, eq, isNotNull, isNull, lt, or } from 'drizzle-orm';
import { Conflict, Forbidden, RateLimited, ValidationError } from '../../errors.ts';
import type { Cipher } from '../../platform/crypto/cipher.ts';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import type { Limiter } from '../../platform/ratelimit/limiter.ts';
import type { Audit, AuditContext } from '../audit/index.ts';
import type { UserRow, UsersService } from '../users/index.ts';
import type { Caller } from './account.ts';
import { backupCodes as codes } from './backup-codes.ts';
import type { PasswordGuard } from './password-guard.ts';
import { backupCodes, totpFactors } from './schema.ts';
import { totp } from './totp.ts';

export interface MfaDeps {
  db: Db;
  cipher: Cipher;
  audit: Audit;
  users: UsersService;
  /** Shown as the account's issuer in authenticator apps. */
  issuer: string;
  /** Counts code attempts per user; reset by a right code. */
  attempts: Limiter;
  /** The per-account password failure counter sign-in uses (keyed by email). */
  passwordGuard: PasswordGuard;
  /** The proof beyond a session that turning two-factor on takes, as deleting the account does (account.ts). */
  reauthenticate: (user: UserRow, caller: Caller, proof: { password?: string }) => Promise<unknown>;
}

/** What proves the second factor at sign-in. */
export type MfaProof = { code: string } | { backupCode: string };
type Stage = 'sign_in' | 'activate' | 'disable' | 'regenerate';

const invalidCode = () => ValidationError('The code is wrong, expired or was already used', 'invalid_mfa_code');
const notEnabled = () => Conflict('Two-factor authentication is not enabled', 'mfa_not_enabled');

/**
 * TOTP second factor and backup codes. A TOTP code is accepted once: the
 * matched time step is claimed with a conditional UPDATE, so neither a replay
 * nor two concurrent requests with the same code can both pass.
 */
export function createMfa(d: MfaDeps) {
  const { db } = d;
  const secretContext = (userId: string) => `totp:${userId}`;

  async function factorOf(userId: string, tx: Db = db) {
    const [row] = await tx.select().from(totpFactors).where(eq(totpFactors.userId, userId));
    return row;
  }

  /** Runs one code check under the per-user attempt limit; a failure is audited and refused. */
  async function attempt<T>(userId: string, stage: Stage, method: string, ctx: AuditContext, check: () => Promise<T | undefined>): Promise<T> {
    const limit = await d.attempts.consume(userId);
    if (!limit.allowed) throw RateLimited(limit.resetMs / 1000, 'Too many two-factor attempts; try again later', 'too_many_attempts');
    const result = await check();
    if (result === undefined) {
      await d.audit.record({ action: 'mfa.failed', userId, ...ctx, metadata: { stage, method } });
      throw invalidCode();
    }
    await d.attempts.reset(userId);
    return result;
  }

  /**
   * Claims the step of a right TOTP code, once. `enabled` says which state the
   * factor must be in; `activate` also switches it on in the same statement.
   */
  async function claimTotp(userId: string, code: string, opts: { enabled: boolean; activate?: boolean }, tx: Db = db): Promise<number | undefined> {
    const factor = await factorOf(userId, tx);
    if (!factor || (factor.enabledAt !== null) !== opts.enabled) return undefined;
    const step = await totp.matchStep(d.cipher.decrypt(factor.secretEnc, secretContext(userId)).toString(), code);
    if (step === undefined) return undefined;
    const claimed = await tx
      .update(totpFactors)
      .set(opts.activate ? { lastUsedStep: step, enabledAt: new Date() } : { lastUsedStep: step })
      .where(
        and(
          eq(totpFactors.userId, userId),
          // The same secret that was checked: a re-enrolment in between makes this a miss.
          eq(totpFactors.secretEnc, factor.secretEnc),
          opts.enabled ? isNotNull(totpFactors.enabledAt) : isNull(totpFactors.enabledAt),
          or(isNull(totpFactors.lastUsedStep), lt(totpFactors.lastUsedStep, step)),
        ),
      )
      .returning({ userId: totpFactors.userId });
    return claimed.length ? step : undefined;
  }

  async function useBackupCode(userId: string, code: string, tx: Db = db): Promise<true | undefined> {
    const used = await tx
      .update(backupCodes)
      .set({ usedAt: new Date() })
      .where(and(eq(backupCodes.userId, userId), eq(backupCodes.codeHash, codes.hash(userId, code)), isNull(backupCodes.usedAt)))
      .returning({ id: backupCodes.id });
    return used.length ? true : undefined;
  }

  /** Replaces the user's backup codes; returns the new plaintext codes, which are never stored. */
  async function replaceBackupCodes(userId: string, tx: Db): Promise<string[]> {
    const fresh = codes.generate();
    await tx.delete(backupCodes).where(eq(backupCodes.userId, userId));
    await tx.insert(backupCodes).values(fresh.map((c) => ({ userId, codeHash: codes.hash(userId, c) })));
    return fresh;
  }

  async function checkPassword(userId: string, password: string, ctx: AuditContext): Promise<void> {
    const user = await d.users.require(userId);
    if (!(await d.passwordGuard.verify(user.email, user.passwordHash, password))) {
      await d.audit.record({ action: 'mfa.failed', userId, ...ctx, metadata: { stage: 'disable', method: 'password' } });
      throw Forbidden('Password is incorrect', 'invalid_password');
    }
  }

  const isEnabled = async (userId: string) => Boolean((await factorOf(userId))?.enabledAt);

  return {
    isEnabled,

    async status(userId: string): Promise<{ totpEnabled: boolean; backupCodesRemaining: number }> {
      const factor = await factorOf(userId);
      const [row] = await db
        .select({ n: count() })
        .from(backupCodes)
        .where(and(eq(backupCodes.userId, userId), isNull(backupCodes.usedAt)));
      const totpEnabled = Boolean(factor?.enabledAt);
      return { totpEnabled, backupCodesRemaining: totpEnabled ? (row?.n ?? 0) : 0 };
    },

    /** Starts (or restarts) enrolment with a new secret; the factor stays off until activated with a code. */
    async enroll(userId: string): Promise<{ secret: string; otpauthUrl: string }> {
      const user = await d.users.require(userId);
      const secret = totp.newSecret();
      const secretEnc = d.cipher.encrypt(secret, secretContext(userId));
      const rows = await db
        .insert(totpFactors)
        .values({ userId, secretEnc })
        .onConflictDoUpdate({
          target: totpFactors.userId,
          set: { secretEnc, lastUsedStep: null, createdAt: new Date() },
          setWhere: isNull(totpFactors.enabledAt),
        })
        .returning({ userId: totpFactors.userId });
      if (!rows.length) throw Conflict('Two-factor authentication is already enabled; disable it first', 'mfa_already_enabled');
      return { secret, otpauthUrl: totp.uri({ issuer: d.issuer, label: user.email, secret }) };
    },

    /**
     * Turns the enrolled factor on with a first code; returns the backup codes, shown this once. Needs the password
     * (or a fresh session): a stolen session must not put the thief's authenticator between the owner and the account.
     */
    async activate(caller: Caller, input: { code: string; password?: string }, ctx: AuditContext): Promise<{ backupCodes: string[] }> {
      const { userId } = caller;
      const { code } = input;
      await d.reauthenticate(await d.users.require(userId), caller, { password: input.password });
      const factor = await factorOf(userId);
      if (!factor) throw Conflict('Start enrolment first', 'mfa_not_enrolled');
      if (factor.enabledAt) throw Conflict('Two-factor authentication is already enabled', 'mfa_already_enabled');
      return attempt(userId, 'activate', 'totp', ctx, () =>
        inTransaction(db, async (tx) => {
          if ((await claimTotp(userId, code, { enabled: false, activate: true }, tx)) === undefined) return undefined;
          const fresh = await replaceBackupCodes(userId, tx);
          await d.audit.record({ action: 'mfa.enabled', userId, ...ctx, metadata: { factor: 'totp' } }, tx);
          return { backupCodes: fresh };
        }),
      );
    },

    /** Turns two-factor off, given a current code or the account password; deletes the backup codes. */
    async disable(userId: string, proof: { code?: string; password?: string }, ctx: AuditContext): Promise<void> {
      if (!(await isEnabled(userId))) throw notEnabled();
      if (proof.code !== undefined) {
        await attempt(userId, 'disable', 'totp', ctx, () => claimTotp(userId, proof.code!, { enabled: true }));
      } else if (proof.password !== undefined) {
        await checkPassword(userId, proof.password, ctx);
      } else {
        throw ValidationError('Send a current code or your password', 'mfa_proof_required');
      }
      await inTransaction(db, async (tx) => {
        await tx.delete(backupCodes).where(eq(backupCodes.userId, userId));
        await tx.delete(totpFactors).where(eq(totpFactors.userId, userId));
        await d.audit.record({ action: 'mfa.disabled', userId, ...ctx, metadata: { confirmedWith: proof.code !== undefined ? 'totp' : 'password' } }, tx);
      });
    },

    /**
     * Deletes every second factor of the user (TOTP, enabled or pending, and backup codes), within `tx`, without
     * any proof: for a caller that has its own (a reset that first proves the address). Returns what was there.
     */
    async removeAll(userId: string, tx: Db = db): Promise<Array<'totp' | 'backup_codes'>> {
      const totpRows = await tx.delete(totpFactors).where(eq(totpFactors.userId, userId)).returning({ userId: totpFactors.userId });
      const codeRows = await tx.delete(backupCodes).where(eq(backupCodes.userId, userId)).returning({ id: backupCodes.id });
      return [...(totpRows.length ? (['totp'] as const) : []), ...(codeRows.length ? (['backup_codes'] as const) : [])];
    },

    /** New backup codes for a current code; the old ones stop working. */
    async regenerateBackupCodes(userId: string, code: string, ctx: AuditContext): Promise<{ backupCodes: string[] }> {
      if (!(await isEnabled(userId))) throw notEnabled();
      await attempt(userId, 'regenerate', 'totp', ctx, () => claimTotp(userId, code, { enabled: true }));
      return inTransaction(db, async (tx) => {
        const fresh = await replaceBackupCodes(userId, tx);
        await d.audit.record({ action: 'mfa.backup_codes_regenerated', userId, ...ctx }, tx);
        return { backupCodes: fresh };
      });
    },

    /**
     * Checks the second factor of a sign-in; returns what was used, for the session's method. The challenge is spent
     * (`spendChallenge`, which locks and checks the account again) and the code claimed in one transaction: a
     * challenge opens one session, a right code sent with a challenge spent meanwhile is not used up, and a wrong
     * one leaves the challenge for its next try. The challenge goes first: the account's row is then locked before
     * the factor's, in the order a password reset takes them (the user, then the factors it removes).
     */
    async verifySignIn(userId: string, proof: MfaProof, ctx: AuditContext, spendChallenge: (tx: Db) => Promise<unknown>): Promise<'totp' | 'backup_code'> {
      if (!(await isEnabled(userId))) throw Conflict('Two-factor authentication is no longer enabled; sign in again', 'mfa_not_enabled');
      const method = 'code' in proof ? 'totp' : 'backup_code';
      const missed = new Error('the code was not claimed');
      return attempt(userId, 'sign_in', method, ctx, () =>
        inTransaction(db, async (tx) => {
          await spendChallenge(tx);
          const claimed = 'code' in proof ? await claimTotp(userId, proof.code, { enabled: true }, tx) : await useBackupCode(userId, proof.backupCode, tx);
          // Thrown to undo the spending; read below as a wrong code.
          if (claimed === undefined) throw missed;
          return method;
        }).catch((err: unknown) => {
          if (err === missed) return undefined;
          throw err;
        }),
      );
    },
  };
}

export type Mfa = ReturnType<typeof createMfa>;
