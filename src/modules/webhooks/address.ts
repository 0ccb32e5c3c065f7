import { ValidationError } from '../../errors.ts';
import { AddressRefused, isPrivateAddress, resolvePublicHost, type ResolvedAddress } from '../../platform/net/public-address.ts';

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
  return url;
}

/**
 * The platform's address check (see platform/net/public-address.ts) with the
 * webhooks' error codes: the caller connects to the returned address, so a
 * DNS answer that changes between check and connect (rebinding) is never used.
 */
export async function resolvePublic(url: URL, allowPrivate: boolean): Promise<ResolvedAddress> {
  try {
    return await resolvePublicHost(url, allowPrivate);
  } catch (err) {
    if (!(err instanceof AddressRefused)) throw err;
    if (err.reason === 'private') throw ValidationError('The webhook URL resolves to a private, loopback or link-local address', 'webhook_url_private');
    throw ValidationError(`The webhook host ${err.host} does not resolve`, 'webhook_url_unresolvable');
  }
}
