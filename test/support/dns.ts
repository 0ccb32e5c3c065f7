import { Resolver } from 'node:dns/promises';
import type { HostLookup } from '../../src/platform/net/public-address.ts';
import { startDnsServer, type DnsZoneEntry } from './dns-server.ts';

/** What the server answers for a name (see DnsZoneEntry). */
export type DnsAnswer = DnsZoneEntry;

/**
 * A real DNS server (see dns-server.ts), and a `lookup` that asks it for IPv4 addresses through node's resolver,
 * as the system's resolver would ask its own: for code that takes a lookup of its own.
 */
export async function startDns(zone: Record<string, DnsAnswer>) {
  const dns = await startDnsServer(zone);
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([dns.server]);
  const lookup: HostLookup = async (host) => (await resolver.resolve4(host)).map((address) => ({ address, family: 4 as const }));
  return { ...dns, lookup };
}
