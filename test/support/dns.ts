import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import type { AddressInfo } from 'node:net';
import type { HostLookup } from '../../src/platform/net/public-address.ts';

/** What the server answers for a name: its IPv4 addresses, an error code (`nxdomain`: no such name; `servfail`: the server failed), or nothing (`silent`: the query times out). */
export type DnsAnswer = string[] | 'nxdomain' | 'servfail' | 'silent';

const RCODE = { nxdomain: 3, servfail: 2 } as const;

/**
 * A real DNS server (RFC 1035, over UDP) on a free local port, answering A queries from `zone` (a name not in it:
 * NXDOMAIN), and a `lookup` that asks it through node's resolver, as the system's resolver would ask its own.
 */
export async function startDns(zone: Record<string, DnsAnswer>) {
  const socket = createSocket('udp4');
  socket.on('message', (query, from) => {
    // The question: labels from byte 12 to a zero length, then type and class.
    let end = 12;
    const labels: string[] = [];
    while (query[end]! > 0) {
      labels.push(query.subarray(end + 1, end + 1 + query[end]!).toString('ascii'));
      end += 1 + query[end]!;
    }
    const question = query.subarray(12, end + 5);
    const type = query.readUInt16BE(end + 1);
    const answer = zone[labels.join('.').toLowerCase()] ?? 'nxdomain';
    if (answer === 'silent') return;
    const records = typeof answer === 'string' || type !== 1 ? [] : answer;
    const header = Buffer.alloc(12);
    header.writeUInt16BE(query.readUInt16BE(0), 0);
    // QR, the query's RD, RA; the answer's code.
    header.writeUInt16BE(0x8000 | (query.readUInt16BE(2) & 0x0100) | 0x0080 | (typeof answer === 'string' ? RCODE[answer] : 0), 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(records.length, 6);
    const rrs = records.map((ip) => {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
      rr.writeUInt16BE(1, 2); // A
      rr.writeUInt16BE(1, 4); // IN
      rr.writeUInt32BE(60, 6); // TTL
      rr.writeUInt16BE(4, 10);
      ip.split('.').forEach((octet, i) => rr.writeUInt8(Number(octet), 12 + i));
      return rr;
    });
    socket.send(Buffer.concat([header, question, ...rrs]), from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const server = `127.0.0.1:${(socket.address() as AddressInfo).port}`;
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([server]);
  const lookup: HostLookup = async (host) => (await resolver.resolve4(host)).map((address) => ({ address, family: 4 as const }));
  return { server, lookup, zone, close: () => new Promise<void>((resolve) => socket.close(() => resolve())) };
}
