import { outboxEvent } from '../module.ts';

/**
 * A change that may end some of a user's credentials: a session revoked (signed out, out everywhere, from the
 * sessions list, by a password change or reset, a refresh token used twice), the account disabled, deleted or
 * banned, or its role changed (a former admin no longer escapes an IP ban). Queued in the change's transaction (see outboxEvent); its `user.access_revoked` has every instance
 * check that user's open WebSockets again at once, so they do not outlive the credential by WS_REAUTH_MS.
 */
export const accessRevoked = outboxEvent('auth.access-revoked', 'user.access_revoked');
