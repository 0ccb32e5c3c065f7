import { defineModule, type ServiceContext } from '../module.ts';
import { accessRevoked } from './access-revoked.ts';
import { createAccount, type Account } from './account.ts';
import { accountRoutes } from './account-routes.ts';
import { createAuthenticator, type Authenticate } from './authenticator.ts';
import { createKnownDevices } from './devices.ts';
import { createEmailFlows, type EmailFlows } from './email-flows.ts';
import { purgeExpiredAuthRows } from './maintenance.ts';
import { createMfa, type Mfa } from './mfa.ts';
import { createMfaChallenges, MFA_CHALLENGE_TRIES, MFA_TOKEN_TTL_SECONDS } from './mfa-challenges.ts';
import { sendNewDeviceNotice, signInCategory, type NewDeviceSignIn } from './new-device.ts';
import { createOAuthProviders } from './oauth/providers.ts';
import { oauthRoutes } from './oauth/routes.ts';
import { createOAuthService, type OAuthService } from './oauth/service.ts';
import { createOneTimeTokens } from './one-time-tokens.ts';
import { createPasswordGuard, type PasswordGuard } from './password-guard.ts';
import { reclaimed } from './reclaim.ts';
import { authRoutes, jwksRoute } from './routes.ts';
import { backupCodes, jwtKeys, knownDevices, oauthAccounts, oauthFlows, oneTimeTokens, refreshTokens, sessions, totpFactors } from './schema.ts';
import { createAuthService, type AuthService } from './service.ts';
import { createSessions, type Sessions } from './sessions.ts';
import { authEnv, authSettings, type AuthSettings } from './settings.ts';
import { SigningKeys } from './signing-keys.ts';

export { accessRevoked } from './access-revoked.ts';
export { ACCESS_AUDIENCE, type Authenticate, type Principal } from './authenticator.ts';
export type { Sessions } from './sessions.ts';
export { passwords } from './passwords.ts';
export type { PasswordGuard } from './password-guard.ts';
export { onReclaimed } from './reclaim.ts';
export type { AuthSettings, OAuthProviderConfig } from './settings.ts';

declare module '../../platform/bus/events.ts' {
  interface DomainEvents {
    /** A session was opened from a device the user had not signed in from before (and they had signed in from others). */
    'session.new_device': NewDeviceSignIn;
    /**
     * A password reset proved the account's address for the first time (reclaim.ts): what was set up before may
     * be a stranger's who signed up with it, so each module drops the places it sends the user's data to that were
     * set up before `provedAt` (ISO-8601): a redelivery, however late, leaves those the owner set up since.
     */
    'user.reclaimed': { userId: string; provedAt: string };
    /**
     * Some of `userId`'s credentials may have ended: a session revoked, the account disabled, deleted or banned, or
     * one of its API keys banned (see access-revoked.ts). Published once the change is committed, maybe more than
     * once; the realtime module checks the user's sockets again. Internal: not a topic, nor a webhook event.
     */
    'user.access_revoked': { userId: string };
  }
}

declare module '../module.ts' {
  interface ServiceMap {
    /** Signing keys of access tokens (JWKS at /.well-known/jwks.json). */
    keys: SigningKeys;
    sessions: Sessions;
    /** Bearer credential (access JWT or API key) → principal; the one code path for both. */
    authenticate: Authenticate;
    /** Per-IP and per-account limiters of the sign-in endpoints. */
    authLimits: ReturnType<typeof authLimiters>;
    passwordGuard: PasswordGuard;
    mfa: Mfa;
    emailFlows: EmailFlows;
    auth: AuthService;
    oauth: OAuthService;
    /** What a user does to their own account that needs proof beyond a bearer token (deletion; turning two-factor on). */
    account: Account;
  }
  interface ModuleSettings {
    /** Token lifetimes, sign-in rate limits and OAuth providers. */
    auth: AuthSettings;
  }
}

function authLimiters({ deps, config }: ServiceContext<never>) {
  const rl = config.auth.rateLimit;
  const per = (name: string, points: number) => deps.limiters.create({ name, points, durationSeconds: rl.windowSeconds });
  return {
    login: per('login:ip', rl.perIp),
    register: per('register:ip', rl.perIp),
    refresh: per('refresh:ip', rl.perIp * 4),
    reset: per('reset:ip', rl.perIp),
    mfa: per('mfa:ip', rl.perIp),
    oauth: per('oauth:ip', rl.perIp * 2),
    accountFailures: per('login:account', rl.perAccount),
  };
}

/**
 * Auth: sign-up and sign-in (password, OAuth/OIDC, TOTP), sessions with rotating refresh tokens, access JWTs;
 * the devices each user signs in from, and a `security.sign-in` notification for a new one.
 */
export const authModule = defineModule({
  name: 'auth',
  tables: { sessions, refreshTokens, jwtKeys, oneTimeTokens, oauthAccounts, oauthFlows, totpFactors, backupCodes, knownDevices },
  config: { env: authEnv, read: authSettings },
  needs: ['users', 'audit', 'apiKeys'],
  // The new-device notice is sent through notifications (a module built after this one).
  // Bans (the limits module) refuse a banned address at sign-up and a banned user or address at sign-in.
  uses: ['notifications', 'limits'],
  provides: ['keys', 'sessions', 'authenticate', 'authLimits', 'passwordGuard', 'mfa', 'emailFlows', 'auth', 'oauth', 'account'],
  services(ctx) {
    const { deps, config } = ctx;
    const { users, audit, apiKeys } = ctx.services;
    const { db } = deps;
    const settings = config.auth;
    // Retired keys keep verifying for a token lifetime plus the other instances' key-cache refresh.
    const keys = new SigningKeys(db, deps.cipher, settings.accessTtl + 120);
    const sessions = createSessions(db, { refreshTtl: settings.refreshTtl, reuseGrace: settings.reuseGrace, lockAccount: users.repo.lockById, queue: deps.queue });
    const authenticate = createAuthenticator({ keys, sessions, apiKeys, issuer: settings.issuer });
    const authLimits = authLimiters(ctx);
    const passwordGuard = createPasswordGuard(authLimits.accountFailures);
    const account = createAccount({ db, users, audit, passwordGuard, credentialsChanged: apiKeys.forgetUser, queue: deps.queue });
    const mfa = createMfa({
      db,
      cipher: deps.cipher,
      audit,
      users,
      issuer: new URL(config.publicUrl).host,
      attempts: deps.limiters.create({ name: 'mfa:user', points: settings.rateLimit.perAccount, durationSeconds: settings.rateLimit.windowSeconds }),
      passwordGuard,
      reauthenticate: account.reauthenticate,
    });
    const tokens = createOneTimeTokens(db);
    const devices = createKnownDevices(db);
    const emailFlows = createEmailFlows({
      db,
      users,
      sessions,
      tokens,
      mailer: deps.mailer,
      audit,
      logger: deps.logger,
      publicUrl: config.publicUrl,
      emailTokenTtl: settings.emailTokenTtl,
      resetTokenTtl: settings.resetTokenTtl,
      resendIntervalSeconds: 60,
      passwordGuard,
      apiKeys,
      mfa,
      devices,
      queue: deps.queue,
    });
    const challenges = createMfaChallenges({
      keys,
      tokens,
      users,
      issuer: settings.issuer,
      tries: deps.limiters.create({ name: 'mfa:challenge', points: MFA_CHALLENGE_TRIES, durationSeconds: MFA_TOKEN_TTL_SECONDS }),
    });
    const auth = createAuthService({
      db,
      queue: deps.queue,
      users,
      sessions,
      keys,
      mfa,
      challenges,
      audit,
      issuer: settings.issuer,
      accessTtl: settings.accessTtl,
      requireEmailVerification: settings.requireEmailVerification,
      passwordGuard,
      onRegistered: emailFlows.onRegistered,
      devices,
      announce: deps.announce,
    });
    const oauth = createOAuthService({
      db,
      providers: createOAuthProviders(settings.oauth),
      users,
      auth,
      audit,
      logger: deps.logger,
      publicUrl: config.publicUrl,
      allowedOrigins: config.allowedOrigins,
      requireEmailVerification: settings.requireEmailVerification,
    });
    return { keys, sessions, authenticate, authLimits, passwordGuard, mfa, emailFlows, auth, oauth, account };
  },
  start: ({ keys }) => keys.init(),
  routes(app, ctx) {
    authRoutes(app, ctx);
    accountRoutes(app, ctx);
    oauthRoutes(app, ctx);
  },
  rootRoutes: jwksRoute,
  // At least once from the bus; once per session all the same (the notification's source is the session).
  subscriptions: ({ services }) => [
    {
      group: 'auth',
      types: ['session.new_device'],
      handler: async (event) => {
        if (event.type === 'session.new_device') await sendNewDeviceNotice(services.notifications, event.payload);
      },
    },
  ],
  notifications: [signInCategory],
  jobs: ({ deps }) => [reclaimed.job(deps.bus), accessRevoked.job(deps.bus)],
  schedules: ({ deps }) => [{ name: 'auth.purge-expired', cron: '17 * * * *', handler: async () => void (await purgeExpiredAuthRows(deps.db, new Date())) }],
});
