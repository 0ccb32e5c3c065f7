import { Unauthorized } from '../../errors.ts';
import type { ApiKeys } from '../api-keys/index.ts';
import type { SigningKeys } from './signing-keys.ts';
import type { Sessions } from './sessions.ts';

export interface Principal {
  userId: string;
  role: 'user' | 'admin';
  via: 'session' | 'api_key';
  sessionId?: string;
  sessionCreatedAt?: Date;
  apiKeyId?: string;
  /** For API keys: the scopes it is limited to; empty means all the owner's. */
  scopes: string[];
}

export const ACCESS_AUDIENCE = 'parley';

/** Turns a bearer credential (access JWT or API key) into a principal, or throws 401. One code path for both. */
export function createAuthenticator(deps: { keys: SigningKeys; sessions: Sessions; apiKeys: ApiKeys; issuer: string }) {
  return async function authenticate(credential: string): Promise<Principal> {
    if (credential.startsWith('pk_')) {
      const found = await deps.apiKeys.verify(credential);
      if (!found) throw Unauthorized('Invalid API key', 'invalid_api_key');
      if (found.key.expiresAt && found.key.expiresAt <= new Date()) throw Unauthorized('API key has expired', 'api_key_expired');
      if (found.disabledAt) throw Unauthorized('Account is disabled', 'account_disabled');
      return { userId: found.key.userId, role: found.role, via: 'api_key', apiKeyId: found.key.id, scopes: found.key.scopes };
    }
    let claims;
    try {
      claims = await deps.keys.verify(credential, { audience: ACCESS_AUDIENCE, issuer: deps.issuer });
    } catch (err) {
      const expired = (err as { code?: string }).code === 'ERR_JWT_EXPIRED';
      throw expired ? Unauthorized('Access token has expired', 'token_expired') : Unauthorized('Invalid access token', 'invalid_token');
    }
    if (typeof claims.sid !== 'string' || typeof claims.sub !== 'string') throw Unauthorized('Invalid access token', 'invalid_token');
    const session = await deps.sessions.status(claims.sid);
    if (!session || session.userId !== claims.sub) throw Unauthorized('Invalid access token', 'invalid_token');
    if (session.disabledAt) throw Unauthorized('Account is disabled', 'account_disabled');
    if (session.revokedAt || session.expiresAt <= new Date()) throw Unauthorized('Session has ended', 'session_revoked');
    return { userId: claims.sub, role: session.role, via: 'session', sessionId: claims.sid, sessionCreatedAt: session.createdAt, scopes: [] };
  };
}

export type Authenticate = ReturnType<typeof createAuthenticator>;
