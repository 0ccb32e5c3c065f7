import { createSocket } from 'node:dgram';
import { isIP, type AddressInfo } from 'node:net';

/**
 * What the server answers for a name: its addresses (IPv4 as A, IPv6 as AAAA records; a family it has none of is
 * an empty answer), an error code (`nxdomain`: no such name; `servfail`: the server failed), or nothing at all
 * (`silent`: every query about it goes unanswered, as from a name server that never replies).
 */
export type DnsZoneEntry = string[] | 'nxdomain' | 'servfail' | 'silent';

const RCODE = { nxdomain: 3, servfail: 2 } as const;
const A = 1;
const AAAA = 28;

/** An IPv6 address as its 16 bytes. */
function ipv6Bytes(address: string): Buffer {
  const [head, tail] = address.split('::') as [string, string | undefined];
  const words = (part: string | undefined) => (part ? part.split(':') : []);
  const all = tail === undefined ? words(head) : [...words(head), ...Array(8 - words(head).length - words(tail).length).fill('0'), ...words(tail)];
  const bytes = Buffer.alloc(16);
  all.forEach((w, i) => bytes.writeUInt16BE(parseInt(w, 16), i * 2));
  return bytes;
}

/**
 * A real DNS server (RFC 1035 over UDP) on a free local port, answering A and AAAA queries from `zone` (a name not
 * in it: NXDOMAIN). `queries` lists every question it was asked (`name type`), answered or not.
 */
export async function startDnsServer(zone: Record<string, DnsZoneEntry>) {
  const socket = createSocket('udp4');
  const queries: string[] = [];
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
    const name = labels.join('.').toLowerCase();
    queries.push(`${name} ${type === A ? 'A' : type === AAAA ? 'AAAA' : type}`);
    const entry = zone[name] ?? 'nxdomain';
    if (entry === 'silent') return;
    const wanted = typeof entry === 'string' ? [] : entry.filter((ip) => isIP(ip) === (type === A ? 4 : type === AAAA ? 6 : 0));
    const header = Buffer.alloc(12);
    header.writeUInt16BE(query.readUInt16BE(0), 0);
    // QR, the query's RD, RA, AA; the answer's code.
    header.writeUInt16BE(0x8000 | 0x0400 | (query.readUInt16BE(2) & 0x0100) | 0x0080 | (typeof entry === 'string' ? RCODE[entry] : 0), 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(wanted.length, 6);
    const records = wanted.map((ip) => {
      const data = type === A ? Buffer.from(ip.split('.').map(Number)) : ipv6Bytes(ip);
      const rr = Buffer.alloc(12);
      rr.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
      rr.writeUInt16BE(type, 2);
      rr.writeUInt16BE(1, 4); // IN
      rr.writeUInt32BE(60, 6); // TTL
      rr.writeUInt16BE(data.length, 10);
      return Buffer.concat([rr, data]);
    });
    socket.send(Buffer.concat([header, question, ...records]), from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    /** `127.0.0.1:port`, as DNS_SERVERS takes it. */
    server: `127.0.0.1:${(socket.address() as AddressInfo).port}`,
    zone,
    queries,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
