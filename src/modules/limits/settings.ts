import { z } from 'zod';
import { envBool, envInt, envSeconds, MAX_TIMER_SECONDS } from '../../platform/config/env.ts';

/**
 * Request and token rate limits per role, and the ban policy. config.ts
 * spreads `limitsEnv` into its env schema and calls `limitSettings`, so env
 * is still read and validated once, at start. A limit of 0 means unlimited.
 */

export type Role = 'user' | 'admin';

export interface RoleLimits {
  /** Requests per minute per user (sessions and keys together), per API key, per client IP. */
  userRpm: number;
  keyRpm: number;
  ipRpm: number;
  /** Model tokens per minute per user and per API key. */
  userTpm: number;
  keyTpm: number;
}

export interface LimitSettings {
  /** Off: no request or token limits and no automatic bans; bans set by an admin still hold. */
  enabled: boolean;
  roles: Record<Role, RoleLimits>;
  ban: {
    /** Violations within `windowSeconds` that ban the subject; 0 never bans automatically. */
    violations: number;
    windowSeconds: number;
    seconds: number;
    /** Days a ban that ended (expired or lifted) stays listed before it is purged; 0 keeps every one. Each stays in the audit log. */
    historyDays: number;
  };
}

// 10^12: far past any real rate (tests use it for "unlimited" but counted).
const limit = envInt(0, 1e12);
const bool = envBool;

/** The env fields config.ts validates for this module. */
export const limitsEnv = {
  RATE_LIMIT_ENABLED: bool.default(true),
  RATE_LIMIT_USER_RPM: limit.default(120),
  RATE_LIMIT_KEY_RPM: limit.default(120),
  RATE_LIMIT_IP_RPM: limit.default(300),
  RATE_LIMIT_USER_TPM: limit.default(200_000),
  RATE_LIMIT_KEY_TPM: limit.default(200_000),
  RATE_LIMIT_ADMIN_USER_RPM: limit.default(600),
  RATE_LIMIT_ADMIN_KEY_RPM: limit.default(600),
  RATE_LIMIT_ADMIN_IP_RPM: limit.default(1_200),
  RATE_LIMIT_ADMIN_USER_TPM: limit.default(1_000_000),
  RATE_LIMIT_ADMIN_KEY_TPM: limit.default(1_000_000),
  RATE_LIMIT_BAN_VIOLATIONS: limit.default(20),
  // A rate limiter's window is a timer in the in-process limiter.
  RATE_LIMIT_BAN_WINDOW_SECONDS: envSeconds(1, MAX_TIMER_SECONDS).default(600),
  RATE_LIMIT_BAN_SECONDS: envSeconds(1).default(900),
  RATE_LIMIT_BAN_HISTORY_DAYS: envInt(0, 36_500).default(90),
};

const limitsEnvObject = z.object(limitsEnv);
type LimitsEnv = z.output<typeof limitsEnvObject>;

export function limitSettings(e: LimitsEnv): LimitSettings {
  return {
    enabled: e.RATE_LIMIT_ENABLED,
    roles: {
      user: { userRpm: e.RATE_LIMIT_USER_RPM, keyRpm: e.RATE_LIMIT_KEY_RPM, ipRpm: e.RATE_LIMIT_IP_RPM, userTpm: e.RATE_LIMIT_USER_TPM, keyTpm: e.RATE_LIMIT_KEY_TPM },
      admin: {
        userRpm: e.RATE_LIMIT_ADMIN_USER_RPM,
        keyRpm: e.RATE_LIMIT_ADMIN_KEY_RPM,
        ipRpm: e.RATE_LIMIT_ADMIN_IP_RPM,
        userTpm: e.RATE_LIMIT_ADMIN_USER_TPM,
        keyTpm: e.RATE_LIMIT_ADMIN_KEY_TPM,
      },
    },
    ban: { violations: e.RATE_LIMIT_BAN_VIOLATIONS, windowSeconds: e.RATE_LIMIT_BAN_WINDOW_SECONDS, seconds: e.RATE_LIMIT_BAN_SECONDS, historyDays: e.RATE_LIMIT_BAN_HISTORY_DAYS },
  };
}
