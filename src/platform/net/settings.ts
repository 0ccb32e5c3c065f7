import { isIP } from 'node:net';
import { z } from 'zod';
import { envList, envMs } from '../config/env.ts';
import type { DnsSettings } from './host-lookup.ts';
import { DEFAULT_DNS_TIMEOUT_MS } from './public-address.ts';

/** `1.1.1.1`, `10.0.0.2:5353`, `2606:4700::1111`, `[fd00::53]:53`: what c-ares' setServers takes, nothing else. */
function isServer(entry: string): boolean {
  const port = (p: string) => /^\d{1,5}$/.test(p) && Number(p) >= 1 && Number(p) <= 65535;
  if (isIP(entry)) return true;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (v6) return isIP(v6[1]!) === 6 && (v6[2] === undefined || port(v6[2]));
  const v4 = /^([\d.]+):(\d+)$/.exec(entry);
  return !!v4 && isIP(v4[1]!) === 4 && port(v4[2]!);
}

/** The env fields config.ts validates for the lookups of user-given hosts (webhooks, Slack, push, MCP, fetch_url). */
export const dnsEnv = {
  DNS_TIMEOUT_MS: envMs(100, 60_000).default(DEFAULT_DNS_TIMEOUT_MS),
  DNS_SERVERS: envList
    .refine((list) => list.every(isServer), { error: 'comma-separated name server addresses: ip or ip:port ([v6]:port)' })
    .default([]),
};

const dnsEnvObject = z.object(dnsEnv);

export function dnsSettings(e: z.output<typeof dnsEnvObject>): DnsSettings {
  return { timeoutMs: e.DNS_TIMEOUT_MS, servers: e.DNS_SERVERS.length ? e.DNS_SERVERS : undefined };
}
