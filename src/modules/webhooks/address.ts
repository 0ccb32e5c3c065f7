import { DependencyUnavailable, ValidationError } from '../../errors.ts';
import { AddressRefused, isPrivateAddress, resolvePublicHost, type HostLookup, type ResolvedAddress } from '../../platform/net/public-address.ts';

export { isPrivateAddress, type ResolvedAddress };

/** Refuses what is not an absolute http(s) URL without credentials. */
export function parseWebhookUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw ValidationError('The webhook URL is not a valid absolute URL', 'webhook_url_invalid');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw ValidationError('The webhook URL must use http or https', 'webhook_url_scheme');
  if (url.username || url.password) throw ValidationError('The webhook URL must not carry credentials', 'webhook_url_credentials');
  if (!url.hostname) throw ValidationError('The webhook URL has no host', 'webhook_url_invalid');
  // Port 0 names no port: nothing could ever be delivered there.
  if (url.port === '0') throw ValidationError('The webhook URL has port 0, which no server listens on', 'webhook_url_invalid');
  return url;
}

/** Seconds after which a lookup that failed for a while (a resolver down, a timeout) is worth trying again. */
const DNS_RETRY_AFTER_S = 5;

/** What an address check answers when it refuses a host: the webhooks' errors by default; push and MCP name their own. */
export interface AddressErrors {
  /** The host resolves to a private, loopback or link-local address. */
  private(): Error;
  /** The host does not resolve (for good: a lookup that failed for now is a 503, whoever asks). */
  unresolvable(host: string): Error;
}

const WEBHOOK_ADDRESS_ERRORS: AddressErrors = {
  private: () => ValidationError('The webhook URL resolves to a private, loopback or link-local address', 'webhook_url_private'),
  unresolvable: (host) => ValidationError(`The webhook host ${host} does not resolve`, 'webhook_url_unresolvable'),
};

/**
 * The platform's address check (see platform/net/public-address.ts) with the
 * caller's error codes (the webhooks' unless given): the caller connects to the returned address, so a
 * DNS answer that changes between check and connect (rebinding) is never used.
 * A lookup that failed for now (EAI_AGAIN, a resolver's SERVFAIL) is not the
 * URL's fault: 503 `dependency_unavailable` naming DNS, not a 400.
 */
export async function resolvePublic(url: URL, allowPrivate: boolean, lookup?: HostLookup, errors: AddressErrors = WEBHOOK_ADDRESS_ERRORS): Promise<ResolvedAddress> {
  try {
    return await resolvePublicHost(url, allowPrivate, undefined, lookup);
  } catch (err) {
    if (!(err instanceof AddressRefused)) throw err;
    if (err.reason === 'private') throw errors.private();
    if (err.temporary) throw DependencyUnavailable('DNS', DNS_RETRY_AFTER_S, err);
    throw errors.unresolvable(err.host);
  }
}

/** The check failed because DNS could not answer now (see resolvePublic), not because of the URL: pass it on. */
export const isLookupUnavailable = (err: unknown) => (err as { code?: string }).code === 'dependency_unavailable';
