import { z } from 'zod';
import { optionalBody } from '../../http/pagination.ts';

const oneTimeToken = z.string().min(1).max(512).describe('The token from the emailed link');
const password = z.string().min(1).max(1024);
const code = z.string().min(1).max(32).describe('The 6-digit code from the authenticator app');
const backupCode = z.string().min(1).max(64).describe('One of the backup codes given when two-factor was enabled');

export const verifyEmailBody = z.object({ token: oneTimeToken });

export const forgotPasswordBody = z.object({ email: z.email().max(320) });

export const resetPasswordBody = z.object({ token: oneTimeToken, password });

export const changePasswordBody = z.object({ currentPassword: password, newPassword: password });

export const totpEnrollment = z
  .object({
    secret: z.string().describe('Base32 secret, for typing into an authenticator app'),
    otpauthUrl: z.string().describe('otpauth:// URI, for a QR code'),
  })
  .meta({ id: 'TotpEnrollment' });

export const codeBody = z.object({ code });

export const activateTotpBody = z.object({
  code,
  password: password.optional().describe('Your password; accounts without one must have signed in within the last 10 minutes instead'),
});

export const backupCodesSchema = z
  .object({ backupCodes: z.array(z.string()).describe('Shown only this once; each works once') })
  .meta({ id: 'BackupCodes' });

export const disableTotpBody = z
  .object({ code: code.optional(), password: password.optional() })
  .refine((b) => (b.code === undefined) !== (b.password === undefined), { message: 'Send either a current code or your password' });

export const mfaStatus = z.object({ totpEnabled: z.boolean(), backupCodesRemaining: z.number().int() }).meta({ id: 'MfaStatus' });

export const mfaVerifyBody = z
  .object({
    mfaToken: z.string().min(1).max(4096).describe('From the sign-in response that said mfaRequired'),
    code: code.optional(),
    backupCode: backupCode.optional(),
    /** Browser mode: set httpOnly cookies instead of returning tokens. */
    cookie: z.boolean().optional(),
  })
  .refine((b) => (b.code === undefined) !== (b.backupCode === undefined), { message: 'Send either code or backupCode' });

/** Confirms an irreversible change: the password for accounts that have one. */
export const deleteMeBody = optionalBody(z.object({ password: z.string().min(1).max(1024).optional() }).strict());
