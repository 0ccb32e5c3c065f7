import { isIP } from 'node:net';

/** An IPv6 address (valid: isIP said so) as its eight 16-bit words; a zone (`%eth0`) is dropped. */
export function ipv6Words(address: string): number[] {
  let a = address.toLowerCase().replace(/%.*$/, '');
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (dotted) {
    const [b0, b1, b2, b3] = dotted.slice(1).map(Number) as [number, number, number, number];
    a = `${a.slice(0, dotted.index)}${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const [head, tail] = a.split('::') as [string, string | undefined];
  const words = (part: string | undefined) => (part ? part.split(':') : []);
  const all = tail === undefined ? words(head) : [...words(head), ...Array(8 - words(head).length - words(tail).length).fill('0'), ...words(tail)];
  return all.map((w) => parseInt(w, 16));
}

/** One spelling per address, so a ban matches however the socket reported it or an admin wrote it (IPv4-mapped IPv6, case, zeros). */
export function normalizeIp(ip: string): string {
  const lower = ip.trim().toLowerCase();
  if (isIP(lower) !== 6) return lower;
  // The URL parser writes an IPv6 address in its one canonical form (RFC 5952, any IPv4 tail in hex): `2001:0DB8:0::1` is
  // `2001:db8::1`. A zone (`fe80::1%eth0`) names the local interface, not the peer.
  const canonical = new URL(`http://[${lower.replace(/%.*$/, '')}]`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (!mapped) return canonical;
  const [high, low] = [parseInt(mapped[1]!, 16), parseInt(mapped[2]!, 16)];
  return [high >> 8, high & 255, low >> 8, low & 255].join('.');
}

/**
 * What an address is counted and banned as: an IPv4 address itself, an IPv6 address its /64
 * (`2001:db8:1:2::/64`). One IPv6 host commonly holds a whole /64 and rotates through it (privacy
 * addresses), so counting each address apart would let it step past a limit or a ban by changing
 * address. Undefined when the text is neither an address nor an IPv6 /64.
 */
export function ipSubject(text: string): string | undefined {
  const lower = text.trim().toLowerCase();
  const network = lower.endsWith('/64');
  const ip = normalizeIp(network ? lower.slice(0, -3) : lower);
  const version = isIP(ip);
  if (version === 4 && !network) return ip;
  if (version !== 6) return undefined;
  const network64 = ipv6Words(ip).slice(0, 4).map((w) => w.toString(16));
  return `${normalizeIp(`${network64.join(':')}::`)}/64`;
}

/**
 * What a client address is counted (rate limits) and banned as: an IPv4 address itself, an IPv6 address its /64
 * (see ipSubject); text that is no address, as it came, in one spelling.
 */
export const clientKey = (address: string): string => ipSubject(address) ?? normalizeIp(address);
