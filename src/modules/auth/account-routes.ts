import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { principal, rateLimit, requestContext } from '../../http/guards.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import { clientKey } from '../../platform/net/client-address.ts';
import type { RouteContext } from '../module.ts';
import {
  activateTotpBody,
  backupCodesSchema,
  changePasswordBody,
  codeBody,
  disableTotpBody,
  deleteMeBody,
  forgotPasswordBody,
  mfaStatus,
  mfaVerifyBody,
  resetPasswordBody,
  totpEnrollment,
  verifyEmailBody,
} from './account-contracts.ts';
import { sessionTokens } from './contracts.ts';
import { sessionResponse } from './session-response.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 409: problemSchema, 429: problemSchema };
const noContent = { 204: z.null(), ...problems };
const FORGOT_MESSAGE = 'If an account uses this address, a link to reset its password is on its way.';

/** Email verification, password reset and change, and two-factor authentication. */
export function accountRoutes(app: App, { config, services, guards }: RouteContext<'emailFlows' | 'mfa' | 'authLimits' | 'account' | 'auth' | 'limits'>) {
  const unbannedAddress = (request: FastifyRequest) => services.limits.refuseBannedAddress(request);
  const { emailFlows, mfa, authLimits, account } = services;
  // An IPv6 client by its /64, as request limits and bans count it: one host holds a whole /64.
  const byIp = (r: FastifyRequest) => clientKey(r.ip);

  app.post('/auth/verify-email', {
    schema: { security: [], tags: ['auth'], summary: 'Confirm an email address with the token from the emailed link', body: verifyEmailBody, response: noContent },
    handler: async (request, reply) => {
      await emailFlows.verifyEmail(request.body.token, requestContext(request));
      return reply.status(204).send(null);
    },
  });

  app.post('/auth/verify-email/resend', {
    schema: { tags: ['auth'], summary: 'Send the verification email again', description: 'Does nothing if the address is already verified.', response: noContent },
    onRequest: guards.user(),
    handler: async (request, reply) => {
      await emailFlows.resendVerification(principal(request).userId);
      return reply.status(204).send(null);
    },
  });

  app.post('/auth/password/forgot', {
    schema: {
      security: [],
      tags: ['auth'],
      summary: 'Email a password reset link',
      description: 'Answers 202 whether or not the address has an account, so it cannot be used to find accounts.',
      body: forgotPasswordBody,
      response: { 202: z.object({ message: z.string() }), ...problems },
    },
    onRequest: [unbannedAddress, rateLimit(authLimits.reset, byIp)],
    handler: async (request, reply) => {
      emailFlows.requestPasswordReset(request.body.email, requestContext(request));
      return reply.status(202).send({ message: FORGOT_MESSAGE });
    },
  });

  app.post('/auth/password/reset', {
    schema: {
      security: [],
      tags: ['auth'],
      summary: 'Set a new password with the token from the emailed link',
      description: 'Signs the account out of every session.',
      body: resetPasswordBody,
      response: noContent,
    },
    onRequest: [unbannedAddress, rateLimit(authLimits.reset, byIp)],
    handler: async (request, reply) => {
      await emailFlows.resetPassword(request.body.token, request.body.password, requestContext(request));
      return reply.status(204).send(null);
    },
  });

  app.post('/auth/password/change', {
    schema: {
      tags: ['auth'],
      summary: 'Change your password',
      description: 'Needs the current password. Every other session of the account is signed out.',
      body: changePasswordBody,
      response: noContent,
    },
    onRequest: guards.user(),
    handler: async (request, reply) => {
      await emailFlows.changePassword(principal(request), request.body, requestContext(request));
      return reply.status(204).send(null);
    },
  });

  app.get('/auth/mfa', {
    schema: { tags: ['mfa'], summary: 'Your two-factor status', response: { 200: mfaStatus, 401: problemSchema, 403: problemSchema } },
    onRequest: guards.user(),
    handler: async (request) => mfa.status(principal(request).userId),
  });

  app.post('/auth/mfa/totp/enroll', {
    schema: {
      tags: ['mfa'],
      summary: 'Start setting up an authenticator app',
      description: 'Returns a new secret; two-factor stays off until POST /v1/auth/mfa/totp/activate gets a code. Enrolling again replaces a pending secret.',
      response: { 200: totpEnrollment, ...problems },
    },
    onRequest: guards.user(),
    handler: async (request) => mfa.enroll(principal(request).userId),
  });

  app.post('/auth/mfa/totp/activate', {
    schema: {
      tags: ['mfa'],
      summary: 'Turn two-factor on with a first code',
      description:
        'Accounts with a password must send it in `password` (403 `reauthentication_required` without it, `invalid_password` when wrong); ' +
        'accounts without one must have signed in within the last 10 minutes. A session alone cannot put its holder\'s authenticator on the account.',
      body: activateTotpBody,
      response: { 200: backupCodesSchema, ...problems },
    },
    onRequest: [rateLimit(authLimits.mfa, byIp), guards.user()],
    handler: async (request) => mfa.activate(principal(request), request.body, requestContext(request)),
  });

  app.post('/auth/mfa/totp/disable', {
    schema: { tags: ['mfa'], summary: 'Turn two-factor off', description: 'Needs a current code or the account password.', body: disableTotpBody, response: noContent },
    onRequest: [rateLimit(authLimits.mfa, byIp), guards.user()],
    handler: async (request, reply) => {
      await mfa.disable(principal(request).userId, request.body, requestContext(request));
      return reply.status(204).send(null);
    },
  });

  app.post('/auth/mfa/backup-codes/regenerate', {
    schema: { tags: ['mfa'], summary: 'Replace your backup codes', body: codeBody, response: { 200: backupCodesSchema, ...problems } },
    onRequest: [rateLimit(authLimits.mfa, byIp), guards.user()],
    handler: async (request) => mfa.regenerateBackupCodes(principal(request).userId, request.body.code, requestContext(request)),
  });

  app.post('/auth/mfa/verify', {
    schema: {
      security: [],
      tags: ['mfa'],
      summary: 'Finish signing in with a code or a backup code',
      description:
        'Takes the mfaToken of a sign-in response that said mfaRequired. It opens one session: used again, or after its fifth wrong code, ' +
        'it is 401 invalid_mfa_token, as when expired, and the user signs in again.',
      body: mfaVerifyBody,
      response: { 200: sessionTokens, ...problems },
    },
    onRequest: rateLimit(authLimits.mfa, byIp),
    handler: async (request, reply) => {
      const { mfaToken, code, backupCode, cookie } = request.body;
      const proof = code !== undefined ? { code } : { backupCode: backupCode! };
      // A user banned (or, but for admins, at an address banned) since the first step gets no session: 403 banned, as there.
      const tokens = await services.auth.completeMfaSignIn({ mfaToken, proof }, requestContext(request), (user) => services.limits.refuseBanned(request, { userId: user.id, role: user.role }));
      return sessionResponse(reply, tokens, cookie ?? false, config);
    },
  });

  app.delete('/users/me', {
    schema: {
      tags: ['users'],
      summary: 'Delete your account',
      description:
        'Irreversible. Accounts with a password must send it in `password`; accounts without one must have signed in within the last 10 minutes. ' +
        'Every session and API key stops working at once. The only administrator who can sign in gets 409 `last_admin`.',
      body: deleteMeBody,
      response: { 204: z.null(), 400: problemSchema, 401: problemSchema, 403: problemSchema, 409: problemSchema, 429: problemSchema },
    },
    onRequest: guards.user(),
    handler: async (request, reply) => {
      await account.delete(principal(request), request.body, requestContext(request));
      return reply.status(204).send(null);
    },
  });
}
