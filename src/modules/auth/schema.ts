import { sql } from 'drizzle-orm';
import { index, integer, jsonb, pgTable, primaryKey, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { createdAt, id, time } from '../../platform/db/columns.ts';
import { users } from '../users/index.ts';

/** A signed-in device. Its refresh tokens form one rotation family. */
export const sessions = pgTable(
  'sessions',
  {
    id: id(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    userAgent: text('user_agent'),
    ip: text('ip'),
    /** How the session was opened: password, oauth:<provider>, … */
    method: text('method').notNull(),
    createdAt: createdAt(),
    lastUsedAt: time('last_used_at').notNull().defaultNow(),
    expiresAt: time('expires_at').notNull(),
    revokedAt: time('revoked_at'),
    revokedReason: text('revoked_reason'),
  },
  (t) => [
    index('sessions_user_idx').on(t.userId),
    // The hourly purge finds what expired or was revoked without reading every session.
    index('sessions_expires_idx').on(t.expiresAt),
    index('sessions_revoked_idx').on(t.revokedAt).where(sql`${t.revokedAt} is not null`),
  ],
);

/**
 * A device a user has signed in from, by the fingerprint of its User-Agent with version numbers left out
 * (see devices.ts): a sign-in from one not listed here is a new device (`security.sign-in`).
 */
export const knownDevices = pgTable(
  'known_devices',
  {
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    fingerprint: text('fingerprint').notNull(),
    /** The User-Agent as last seen (trimmed), for people to recognise the device. */
    description: text('description').notNull(),
    firstSeenAt: time('first_seen_at').notNull().defaultNow(),
    lastSeenAt: time('last_seen_at').notNull().defaultNow(),
    lastIp: text('last_ip'),
  },
  (t) => [primaryKey({ columns: [t.userId, t.fingerprint] }), index('known_devices_last_seen_idx').on(t.lastSeenAt)],
);

export const refreshTokens = pgTable(
  'refresh_tokens',
  {
    id: id(),
    sessionId: uuid('session_id').notNull().references(() => sessions.id, { onDelete: 'cascade' }),
    tokenHash: text('token_hash').notNull(),
    createdAt: createdAt(),
    /** Set when this token was exchanged for a new one; presenting it again later is reuse. */
    rotatedAt: time('rotated_at'),
  },
  (t) => [uniqueIndex('refresh_tokens_hash_key').on(t.tokenHash), index('refresh_tokens_session_idx').on(t.sessionId)],
);

/** Ed25519 signing keys for access tokens. Private keys are encrypted with the master key. */
export const jwtKeys = pgTable('jwt_keys', {
  id: text('id').primaryKey(),
  publicJwk: jsonb('public_jwk').$type<Record<string, unknown>>().notNull(),
  privateKeyEnc: text('private_key_enc').notNull(),
  createdAt: createdAt(),
  retiredAt: time('retired_at'),
});

/** Single-use tokens: sent by email (verification, password reset), or a sign-in's MFA challenge. */
export const oneTimeTokens = pgTable(
  'one_time_tokens',
  {
    id: id(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    // A plain text column: the list is TypeScript's alone, so a new purpose needs no migration.
    purpose: text('purpose', { enum: ['email_verification', 'password_reset', 'mfa_challenge'] }).notNull(),
    tokenHash: text('token_hash').notNull(),
    expiresAt: time('expires_at').notNull(),
    usedAt: time('used_at'),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('one_time_tokens_hash_key').on(t.tokenHash), index('one_time_tokens_user_idx').on(t.userId), index('one_time_tokens_expires_idx').on(t.expiresAt)],
);

/** External identities linked to a user. */
export const oauthAccounts = pgTable(
  'oauth_accounts',
  {
    id: id(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    provider: text('provider').notNull(),
    subject: text('subject').notNull(),
    email: text('email'),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('oauth_accounts_provider_subject_key').on(t.provider, t.subject), index('oauth_accounts_user_idx').on(t.userId)],
);

/** An authorization-code flow in progress: state, PKCE verifier and nonce, kept server-side. */
export const oauthFlows = pgTable('oauth_flows', {
  state: text('state').primaryKey(),
  provider: text('provider').notNull(),
  codeVerifier: text('code_verifier').notNull(),
  nonce: text('nonce').notNull(),
  redirectTo: text('redirect_to'),
  expiresAt: time('expires_at').notNull(),
  createdAt: createdAt(),
});

/** TOTP second factor. The secret is encrypted with the master key. */
export const totpFactors = pgTable('totp_factors', {
  userId: uuid('user_id').primaryKey().references(() => users.id, { onDelete: 'cascade' }),
  secretEnc: text('secret_enc').notNull(),
  enabledAt: time('enabled_at'),
  /** The last accepted 30-second step, so one code cannot be used twice. */
  lastUsedStep: integer('last_used_step'),
  createdAt: createdAt(),
});

export const backupCodes = pgTable(
  'backup_codes',
  {
    id: id(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    codeHash: text('code_hash').notNull(),
    usedAt: time('used_at'),
    createdAt: createdAt(),
  },
  (t) => [index('backup_codes_user_idx').on(t.userId)],
);
