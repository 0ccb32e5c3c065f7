import { ValidationError } from '../../errors.ts';
import type { HostLookup } from '../../platform/net/public-address.ts';
import { resolvePublic, type AddressErrors } from '../webhooks/index.ts';

/** An absolute https URL without credentials or fragment (plain http too where private addresses are allowed: a closed network, tests). */
export function parseServerUrl(raw: string, allowPrivate: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw ValidationError('url is not a valid absolute URL', 'mcp_url_invalid');
  }
  if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:')) throw ValidationError('url must be an https URL', 'mcp_url_invalid');
  if (url.username || url.password) throw ValidationError('url must not carry credentials; give them as headers in `credentials`', 'mcp_url_invalid');
  if (url.hash) throw ValidationError('url must not have a fragment', 'mcp_url_invalid');
  return url;
}

const SERVER_ERRORS: AddressErrors = {
  private: () => ValidationError('url resolves to a private, loopback or link-local address', 'mcp_url_private'),
  unresolvable: (host) => ValidationError(`url host ${host} does not resolve`, 'mcp_url_unresolvable'),
};

/**
 * Refuses a host that does not resolve or resolves to a private, loopback or
 * link-local address (the webhooks module's rule, shared by every fetch of a
 * user-given URL). Checked again at each connection, where DNS may answer otherwise.
 */
export async function checkServerUrl(raw: string, allowPrivate: boolean, lookup?: HostLookup): Promise<string> {
  const url = parseServerUrl(raw, allowPrivate);
  await resolvePublic(url, allowPrivate, lookup, SERVER_ERRORS);
  return url.toString();
}
