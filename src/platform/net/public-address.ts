import { BlockList, isIP } from 'node:net';
import { ipv6Words } from './client-address.ts';
import { createHostLookup, type BoundedHostLookup, type DnsSettings } from './host-lookup.ts';

/**
 * Ranges no fetch of a user-given URL may reach unless the deployment allows
 * it (webhooks, push endpoints, the fetch_url tool): private, loopback,
 * link-local, unique-local, CGNAT, multicast, reserved.
 */
const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.0.0.0', 24],
  ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(net, prefix, 'ipv4');
// 64:ff9b:1::/48 is NAT64 for a network's own use (RFC 8215): what it reaches is the operator's to say, so none of it.
// fec0::/10 is the old site-local range (deprecated, still routed inside some networks); 3fff::/20 is documentation
// (RFC 9637), as 2001:db8::/32 is; 5f00::/16 is segment routing's (RFC 9602), inside an operator's network only.
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8], ['100::', 64], ['2001:db8::', 32], ['3fff::', 20], ['5f00::', 16], ['64:ff9b:1::', 48],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

/**
 * The IPv4 address an IPv6 address carries, where one reaches it: IPv4-mapped (::ffff:a.b.c.d), -compatible
 * (::a.b.c.d), -translated (::ffff:0:a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002:aabb:ccdd::/48).
 */
function embeddedIPv4(address: string): string | undefined {
  const w = ipv6Words(address);
  const zero = (from: number, to: number) => w.slice(from, to).every((x) => x === 0);
  const v4 = (hi: number, lo: number) => [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
  if (zero(0, 5) && (w[5] === 0xffff || w[5] === 0)) return v4(w[6]!, w[7]!);
  if (zero(0, 4) && w[4] === 0xffff && w[5] === 0) return v4(w[6]!, w[7]!);
  if (w[0] === 0x64 && w[1] === 0xff9b && zero(2, 6)) return v4(w[6]!, w[7]!);
  if (w[0] === 0x2002) return v4(w[1]!, w[2]!);
  return undefined;
}

/** True for an address in a refused range, and for anything that is not an IP address at all. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIPv4(address);
    if (v4 && blocked.check(v4, 'ipv4')) return true;
    return blocked.check(address, 'ipv6');
  }
  return true;
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/**
 * Why a host was refused: it has no address, or one of its addresses is in a refused range. `temporary`: the
 * lookup itself failed (ETIMEOUT past DNS_TIMEOUT_MS, a resolver's SERVFAIL, EAI_AGAIN from a caller's own lookup) rather than answer that the name does not exist,
 * so the same host may resolve on a later try.
 */
export class AddressRefused extends Error {
  readonly reason: 'unresolvable' | 'private';
  readonly host: string;
  readonly temporary: boolean;
  /** The lookup's error code (ETIMEOUT, ESERVFAIL…) when `temporary`. */
  readonly failure?: string;
  constructor(host: string, reason: 'unresolvable' | 'private', failure?: string) {
    super(reason === 'private' ? `${host} resolves to a private, loopback or link-local address` : failure ? `${host} could not be resolved (${failure})` : `${host} does not resolve`);
    this.name = 'AddressRefused';
    this.host = host;
    this.reason = reason;
    this.temporary = failure !== undefined;
    this.failure = failure;
  }
}

/** Every address of a host name: the process's bounded resolver (see host-lookup.ts) unless a caller brings another. */
export type HostLookup = (host: string) => Promise<ResolvedAddress[]>;

/** How long a lookup of a user-given host may take unless DNS_TIMEOUT_MS says. */
export const DEFAULT_DNS_TIMEOUT_MS = 5_000;
let processLookup: BoundedHostLookup | undefined;
const systemLookup: HostLookup = (host) => (processLookup ??= createHostLookup({ timeoutMs: DEFAULT_DNS_TIMEOUT_MS }))(host);

/**
 * Makes `settings` (DNS_SERVERS, DNS_TIMEOUT_MS) what every check of a user-given host resolves with: webhooks,
 * Slack, push, MCP and fetch_url bring no lookup of their own. A name server is the process's, as with getaddrinfo
 * before, so this is set once at start (createDeps). Returns what undoes it: the one before comes back, and the
 * lookups still waiting on this one fail (temporary).
 */
export function useDnsSettings(settings: DnsSettings): () => void {
  const previous = processLookup;
  const lookup = createHostLookup(settings);
  processLookup = lookup;
  return () => {
    if (processLookup === lookup) processLookup = previous;
    lookup.close();
  };
}
/** Answers that the name has no address: final, unlike a lookup that failed. */
const NO_SUCH_NAME = new Set(['ENOTFOUND', 'ENODATA']);

/**
 * Resolves the URL's host to every address it has and refuses it when any is
 * private (unless allowed: all of them, or those in `exceptions`); the caller connects to the returned address, so a
 * DNS answer that changes between check and connect (rebinding) is never used.
 */
export async function resolvePublicHost(url: URL, allowPrivate: boolean, exceptions?: BlockList, resolve: HostLookup = systemLookup): Promise<ResolvedAddress> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: ResolvedAddress[];
  const literal = isIP(host);
  if (literal) addresses = [{ address: host, family: literal as 4 | 6 }];
  else {
    try {
      addresses = await resolve(host);
    } catch (err) {
      const code = String((err as { code?: unknown }).code ?? 'lookup failed');
      throw new AddressRefused(host, 'unresolvable', NO_SUCH_NAME.has(code) ? undefined : code);
    }
  }
  if (addresses.length === 0) throw new AddressRefused(host, 'unresolvable');
  const refused = (a: ResolvedAddress) => isPrivateAddress(a.address) && !exceptions?.check(a.address, a.family === 4 ? 'ipv4' : 'ipv6');
  if (!allowPrivate && addresses.some(refused)) throw new AddressRefused(host, 'private');
  return addresses[0]!;
}

/** `10.1.0.0/16, fd00::/8, 192.168.1.20`: address ranges as a BlockList; throws naming the first that is not one. */
export function addressRanges(list: string): BlockList {
  const ranges = new BlockList();
  for (const item of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [address, bits] = item.split('/') as [string, string | undefined];
    const family = isIP(address);
    const prefix = bits === undefined ? (family === 4 ? 32 : 128) : Number(bits);
    if (!family || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) throw new Error(`"${item}" is not an IP address or CIDR range`);
    ranges.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return ranges;
}

/**
 * A `lookup` for node:http(s) and net that answers with the address already
 * checked, whatever host it is asked for: the connection goes where the check
 * said, and TLS still verifies the certificate against the URL's host name.
 */
export function pinnedLookup(target: ResolvedAddress) {
  return (_host: string, options: { all?: boolean } | number | undefined, callback: (...args: any[]) => void) => {
    if (typeof options === 'object' && options?.all) callback(null, [{ address: target.address, family: target.family }]);
    else callback(null, target.address, target.family);
  };
}
