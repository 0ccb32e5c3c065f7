import type { Deps } from './deps.ts';
import { createAdmin } from './modules/admin/service.ts';
import { createAi } from './modules/ai/service.ts';
import { createApiKeys } from './modules/api-keys/service.ts';
import { createAudit } from './modules/audit/service.ts';
import { createAuthenticator } from './modules/auth/authenticator.ts';
import { createEmailFlows } from './modules/auth/email-flows.ts';
import { createMfa } from './modules/auth/mfa.ts';
import { createOAuthProviders } from './modules/auth/oauth/providers.ts';
import { createOAuthService } from './modules/auth/oauth/service.ts';
import { createOneTimeTokens } from './modules/auth/one-time-tokens.ts';
import { createAuthService } from './modules/auth/service.ts';
import { createSessions } from './modules/auth/sessions.ts';
import { SigningKeys } from './modules/auth/signing-keys.ts';
import { createConversations } from './modules/chat/conversations.ts';
import { createGeneration } from './modules/chat/generation.ts';
import { createGenerationRepository } from './modules/chat/generation-repository.ts';
import { createMessages } from './modules/chat/messages.ts';
import { createSearch } from './modules/chat/search.ts';
import { createTitles } from './modules/chat/titles.ts';
import { createIdempotency } from './http/idempotency.ts';
import { createRequestLimits } from './modules/limits/service.ts';
import { createPasswordGuard } from './modules/auth/password-guard.ts';
import { createProjects } from './modules/projects/service.ts';
import { createAccount } from './modules/users/account.ts';
import { createUsersService } from './modules/users/service.ts';
import { createOutbox } from './platform/mail/outbox.ts';
import { createUsage } from './modules/usage/service.ts';
import { createRequestReports } from './modules/usage/requests.ts';
import { createStorageReport } from './modules/usage/storage.ts';
import { chatStorage } from './modules/chat/storage.ts';
import { projectsStorage } from './modules/projects/storage.ts';
import { createJobs } from './modules/jobs/service.ts';
import { announcer } from './platform/bus/bus.ts';

/** Every module's service, built once over the deps. Modules reach each other only through these. */
export function createServices(deps: Deps) {
  const { config, db, limiters } = deps;
  const announce = announcer(deps.bus, deps.logger);
  const jobs = createJobs({ queue: deps.queue, scheduler: deps.scheduler, bus: deps.bus, announce });
  const rl = config.auth.rateLimit;
  const audit = createAudit(db);
  const users = createUsersService(db, announce);
  // Retired keys keep verifying for a token lifetime plus the other instances' key-cache refresh.
  const keys = new SigningKeys(db, deps.cipher, config.auth.accessTtl + 120);
  const sessions = createSessions(db, { refreshTtl: config.auth.refreshTtl, reuseGrace: config.auth.reuseGrace });
  const apiKeys = createApiKeys(db, { audit, broadcast: deps.broadcast, logger: deps.logger });
  const credentialsChanged = apiKeys.forgetUser;
  const authenticate = createAuthenticator({ keys, sessions, apiKeys, issuer: config.auth.issuer });
  const limits = createRequestLimits({ db, audit, broadcast: deps.broadcast, limiters, settings: config.limits, logger: deps.logger });
  const authLimits = {
    login: limiters.create({ name: 'login:ip', points: rl.perIp, durationSeconds: rl.windowSeconds }),
    register: limiters.create({ name: 'register:ip', points: rl.perIp, durationSeconds: rl.windowSeconds }),
    refresh: limiters.create({ name: 'refresh:ip', points: rl.perIp * 4, durationSeconds: rl.windowSeconds }),
    reset: limiters.create({ name: 'reset:ip', points: rl.perIp, durationSeconds: rl.windowSeconds }),
    mfa: limiters.create({ name: 'mfa:ip', points: rl.perIp, durationSeconds: rl.windowSeconds }),
    oauth: limiters.create({ name: 'oauth:ip', points: rl.perIp * 2, durationSeconds: rl.windowSeconds }),
    accountFailures: limiters.create({ name: 'login:account', points: rl.perAccount, durationSeconds: rl.windowSeconds }),
  };
  const passwordGuard = createPasswordGuard(authLimits.accountFailures);
  const mfa = createMfa({
    db,
    cipher: deps.cipher,
    audit,
    users,
    issuer: new URL(config.publicUrl).host,
    attempts: limiters.create({ name: 'mfa:user', points: rl.perAccount, durationSeconds: rl.windowSeconds }),
    passwordGuard,
  });
  const emailFlows = createEmailFlows({
    db,
    users,
    sessions,
    tokens: createOneTimeTokens(db),
    mailer: deps.mailer,
    audit,
    logger: deps.logger,
    publicUrl: config.publicUrl,
    emailTokenTtl: config.auth.emailTokenTtl,
    resetTokenTtl: config.auth.resetTokenTtl,
    resendIntervalSeconds: 60,
    passwordGuard,
  });
  const auth = createAuthService({
    users,
    sessions,
    keys,
    mfa,
    audit,
    issuer: config.auth.issuer,
    accessTtl: config.auth.accessTtl,
    requireEmailVerification: config.auth.requireEmailVerification,
    passwordGuard,
    onRegistered: emailFlows.onRegistered,
  });
  const oauth = createOAuthService({
    db,
    providers: createOAuthProviders(config.oauth),
    users,
    auth,
    audit,
    logger: deps.logger,
    publicUrl: config.publicUrl,
    allowedOrigins: config.allowedOrigins,
    requireEmailVerification: config.auth.requireEmailVerification,
  });
  const account = createAccount({ db, users, audit, passwordGuard, credentialsChanged });
  const admin = createAdmin({ db, users, sessions, audit, outbox: createOutbox(db), credentialsChanged });
  const usage = createUsage(deps, {
    // Tokens-per-minute limits count what every metered call used.
    onTokens: (meter, tokens) => void limits.addTokens({ userId: meter.userId, role: meter.role ?? 'user', via: meter.apiKeyId ? 'api_key' : 'session', apiKeyId: meter.apiKeyId ?? undefined, scopes: [] }, tokens),
    ban: (userId, seconds, reason) => limits.ban('user', userId, seconds, reason),
  });
  const ai = createAi(config.ai, { logger: deps.logger, metering: config.usage.enabled ? usage.metering : undefined });
  const projects = createProjects(db);
  const conversations = createConversations({ db, projects });
  const messages = createMessages({ db });
  const search = createSearch(db);
  const idempotency = createIdempotency(db);
  // Every kind of thing users store, each declared by its own module: a files module adds its source here.
  const storageReport = createStorageReport(db, [...chatStorage, ...projectsStorage]);
  const requestReports = createRequestReports(db);
  const titles = createTitles({ ai, repo: createGenerationRepository(db), logger: deps.logger, jobs });
  const generation = createGeneration({ ai, messages, conversations, projects, users, streams: deps.streams, titles, logger: deps.logger, limits: config.chat, announce, checkBudget: config.usage.enabled ? usage.budgets.assertRoom : async () => {} });
  return { jobs, announce, usage, audit, users, keys, sessions, apiKeys, mfa, emailFlows, authenticate, limits, authLimits, auth, oauth, account, admin, ai, projects, conversations, messages, search, idempotency, generation, storageReport, requestReports };
}

export type Services = ReturnType<typeof createServices>;
