import { readFile, stat } from 'node:fs/promises';
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { HostLookup, ResolvedAddress } from './public-address.ts';

export interface DnsSettings {
  /** The longest one lookup may take, every query of it together (both families, each search domain). */
  timeoutMs: number;
  /** Name servers, `ip` or `ip:port` (`[v6]:port`); none: the system's (resolv.conf). */
  servers?: string[];
  /** Search domains and the dots a name needs to be tried as it is first; unset: resolv.conf's. */
  search?: string[];
  ndots?: number;
  /** The hosts file; `/etc/hosts` unless a test brings its own. */
  hostsFile?: string;
}

/** A lookup that can be ended: `close()` fails every query still waiting (temporary, ECANCELLED). */
export type BoundedHostLookup = HostLookup & { close(): void };

const NO_SUCH_NAME = new Set(['ENOTFOUND', 'ENODATA']);
const LOOPBACK: ResolvedAddress[] = [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }];

const failure = (code: string, host: string) => Object.assign(new Error(`${code} ${host}`), { code });

/**
 * Every address of a host name, asked of name servers by node's own DNS client (c-ares) rather than the system's
 * getaddrinfo. getaddrinfo blocks one of libuv's four threads for as long as the name servers take (5 s a try,
 * several tries and servers, with no bound of ours), and the same four threads read every file and run zlib and
 * crypto: four names whose servers never answer, which a prompt or a user can give, would stall the process.
 * c-ares waits on its sockets in the event loop, and each lookup ends by `timeoutMs` (temporary: ETIMEOUT).
 *
 * What the system resolver did besides DNS is kept: the hosts file (`localhost`, Docker's and Kubernetes' entries)
 * answers first, `localhost` and `*.localhost` are loopback (RFC 6761) where it is silent, `.invalid` never exists,
 * and short names go through resolv.conf's search domains (a Kubernetes service's name) as getaddrinfo would try
 * them. Other name services (mDNS, LDAP in nsswitch) are not asked. IPv4 addresses come first: the caller
 * connects to the first, and a container without an IPv6 route is common, one without IPv4 rare.
 */
export function createHostLookup(settings: DnsSettings): BoundedHostLookup {
  // c-ares' own retry timer: two tries fit in the bound, so one lost datagram is not the end of a lookup.
  const perTry = Math.max(1, Math.floor(settings.timeoutMs / 2));
  const resolver = new Resolver({ timeout: perTry, tries: 2, maxTimeout: perTry });
  if (settings.servers?.length) resolver.setServers(settings.servers);
  const hosts = hostsFile(settings.hostsFile ?? '/etc/hosts');
  let searchList: Promise<{ search: string[]; ndots: number }> | undefined;
  const searchOf = () =>
    (searchList ??= settings.search ? Promise.resolve({ search: settings.search, ndots: settings.ndots ?? 1 }) : systemSearch().then((s) => ({ ...s, ndots: settings.ndots ?? s.ndots })));
  const waiting = new Set<(code: string) => void>();

  /** Both families of one name, until both answered or the time is up: whatever addresses came by then, else why none. */
  function ask(name: string, expired: Promise<string>): Promise<ResolvedAddress[] | { code: string }> {
    return new Promise((resolve) => {
      const found: ResolvedAddress[][] = [[], []];
      const codes: string[] = [];
      let pending = 2;
      const done = () => {
        const addresses = found.flat();
        if (addresses.length) return resolve(addresses);
        // NXDOMAIN is the name's, whichever family's query said it.
        resolve({ code: codes.includes('ENOTFOUND') ? 'ENOTFOUND' : (codes.find((c) => !NO_SUCH_NAME.has(c)) ?? 'ENODATA') });
      };
      const family = (index: 0 | 1, query: Promise<string[]>) =>
        query.then(
          (list) => (found[index] = list.map((address) => ({ address, family: index === 0 ? 4 : 6 }))),
          (err: { code?: string }) => {
            codes.push(String(err.code ?? 'lookup failed'));
            if (err.code === 'ENOTFOUND') done();
          },
        ).finally(() => --pending === 0 && done());
      void family(0, resolver.resolve4(name));
      void family(1, resolver.resolve6(name));
      void expired.then((code) => {
        codes.push(code);
        done();
      });
    });
  }

  const lookup = async (host: string): Promise<ResolvedAddress[]> => {
    const absolute = host.endsWith('.');
    const name = host.toLowerCase().replace(/\.$/, '');
    const listed = await hosts(name);
    if (listed.length) return listed;
    if (name === 'localhost' || name.endsWith('.localhost')) return LOOPBACK;
    if (name === 'invalid' || name.endsWith('.invalid')) throw failure('ENOTFOUND', host);
    const { search, ndots } = await searchOf();
    const searched = absolute ? [] : search.map((domain) => `${name}.${domain}`);
    const candidates = name.split('.').length - 1 >= ndots ? [name, ...searched] : [...searched, name];

    let end!: (code: string) => void;
    const expired = new Promise<string>((resolve) => (end = resolve));
    const timer = setTimeout(() => end('ETIMEOUT'), settings.timeoutMs);
    waiting.add(end);
    try {
      let temporary: string | undefined;
      for (const candidate of candidates) {
        const answer = await ask(candidate, expired);
        if (Array.isArray(answer)) return answer;
        if (answer.code === 'ETIMEOUT' || answer.code === 'ECANCELLED') throw failure(answer.code, host);
        if (!NO_SUCH_NAME.has(answer.code)) temporary ??= answer.code;
      }
      throw failure(temporary ?? 'ENOTFOUND', host);
    } finally {
      clearTimeout(timer);
      waiting.delete(end);
    }
  };

  return Object.assign(lookup, {
    close() {
      resolver.cancel();
      for (const end of waiting) end('ECANCELLED');
    },
  });
}

/** resolv.conf's search domains (`search`, else `domain`) and `ndots`, as getaddrinfo reads them; none without the file. */
async function systemSearch(): Promise<{ search: string[]; ndots: number }> {
  let text = '';
  try {
    text = await readFile('/etc/resolv.conf', 'utf8');
  } catch {}
  let search: string[] = [];
  let ndots = 1;
  for (const line of text.split('\n')) {
    const [key, ...values] = line.replace(/[#;].*/, '').trim().split(/\s+/);
    if (key === 'search') search = values;
    else if (key === 'domain' && values[0]) search = [values[0]];
    else if (key === 'options') {
      const dots = values.find((v) => v.startsWith('ndots:'));
      if (dots) ndots = Math.min(15, Number(dots.slice(6)) || 0);
    }
  }
  return { search: search.map((d) => d.toLowerCase().replace(/\.$/, '')).filter((d) => d && d !== '.'), ndots };
}

/** A hosts file's addresses by name, read again when it changes (Docker and Kubernetes write it at start). */
function hostsFile(file: string) {
  let read: { mtimeMs: number; size: number; names: Map<string, ResolvedAddress[]> } | undefined;
  return async (name: string): Promise<ResolvedAddress[]> => {
    let info;
    try {
      info = await stat(file);
      if (!read || read.mtimeMs !== info.mtimeMs || read.size !== info.size) read = { mtimeMs: info.mtimeMs, size: info.size, names: parseHosts(await readFile(file, 'utf8')) };
    } catch {
      return [];
    }
    return read.names.get(name) ?? [];
  };
}

function parseHosts(text: string): Map<string, ResolvedAddress[]> {
  const names = new Map<string, ResolvedAddress[]>();
  for (const line of text.split('\n')) {
    const [address = '', ...aliases] = line.replace(/#.*/, '').trim().split(/\s+/);
    const family = isIP(address);
    if (!family) continue;
    for (const alias of aliases) {
      const key = alias.toLowerCase().replace(/\.$/, '');
      const list = names.get(key) ?? [];
      if (!list.some((a) => a.address === address)) list.push({ address, family: family as 4 | 6 });
      names.set(key, list);
    }
  }
  for (const list of names.values()) list.sort((a, b) => a.family - b.family);
  return names;
}
