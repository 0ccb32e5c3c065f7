import { z } from 'zod';
import { envBool, envMs } from '../../../platform/config/env.ts';

export interface PushSettings {
  /** Web push is offered (the channel, its routes); on unless turned off. */
  enabled: boolean;
  /** The VAPID `sub` claim push services use to reach the operator: a mailto: or https: URL; null: `mailto:admin@<PUBLIC_URL's host>`. */
  subject: string | null;
  /** Subscriptions whose endpoint is plain http or resolves to a private, loopback or link-local address are accepted and sent to (a closed network, or tests). */
  allowPrivate: boolean;
  /** A push service's answer must be complete within this long. */
  timeoutMs: number;
}

export const pushEnv = {
  PUSH_ENABLED: envBool.default(true),
  VAPID_SUBJECT: z
    .string()
    .regex(/^(mailto:[^\s@]+@[^\s@]+|https:\/\/[^\s]+)$/, 'a mailto: address or an https: URL where the operator can be reached')
    .optional(),
  PUSH_ALLOW_PRIVATE: envBool.default(false),
  PUSH_TIMEOUT_MS: envMs(100, 120_000).default(10_000),
};

const pushEnvObject = z.object(pushEnv);

export function pushSettings(e: z.output<typeof pushEnvObject>): PushSettings {
  return { enabled: e.PUSH_ENABLED, subject: e.VAPID_SUBJECT ?? null, allowPrivate: e.PUSH_ALLOW_PRIVATE, timeoutMs: e.PUSH_TIMEOUT_MS };
}
