import { LRUCache } from 'lru-cache';
import type { RemoteTool } from './connection.ts';

/** A listing kept: the server row's version it answers for, until when, and its tools (null: the server could not be listed). */
interface Entry {
  version: number;
  expiresAt: number;
  tools: Promise<RemoteTool[] | null>;
  bytes: number;
}

/** What an entry counts besides its tools (its key, its bookkeeping), and all it counts while its listing is still under way. */
const ENTRY_BYTES = 256;

/**
 * The listings of one process, bounded by their size rather than their number: a listing may be as large as
 * MCP_MAX_RESPONSE_BYTES, so a bound of entries alone let a few thousand servers hold gigabytes. A listing
 * counts its tools' size as JSON once it is in (lru-cache's maxSize); past `maxBytes` the least recently used go
 * first, and a listing larger than `maxBytes` on its own is not kept at all (it would only push every other one out).
 */
export function createListingCache(maxBytes: number) {
  // maxSize 1 when nothing may be kept: every entry is larger, so none is.
  const entries = new LRUCache<string, Entry>({ maxSize: Math.max(1, maxBytes), sizeCalculation: (entry) => entry.bytes });

  return {
    /** The listing kept for this version of the server, while it lasts (a hit is the most recently used). */
    get(key: string, version: number): Promise<RemoteTool[] | null> | undefined {
      const entry = entries.get(key);
      if (!entry || entry.version !== version || entry.expiresAt <= Date.now()) return undefined;
      return entry.tools;
    },

    /** Keeps `tools` for `ttl` ms, in place of what was kept for the server; sized again once it settles. */
    set(key: string, version: number, tools: Promise<RemoteTool[] | null>, ttl: number) {
      const entry: Entry = { version, expiresAt: Date.now() + ttl, tools, bytes: ENTRY_BYTES };
      entries.set(key, entry);
      void tools.then(
        (list) => {
          // Replaced, forgotten or pushed out meanwhile: nothing of it is counted any more.
          if (entries.peek(key) !== entry) return;
          entry.bytes = ENTRY_BYTES + (list ? Buffer.byteLength(JSON.stringify(list)) : 0);
          entries.set(key, entry);
        },
        () => entries.peek(key) === entry && entries.delete(key),
      );
    },

    /** Keeps the listing `tools` (if it is still the one kept) for `ms` more at most. */
    shorten(key: string, tools: Promise<RemoteTool[] | null>, ms: number) {
      const entry = entries.peek(key);
      if (entry?.tools === tools) entry.expiresAt = Math.min(entry.expiresAt, Date.now() + ms);
    },

    delete: (key: string) => void entries.delete(key),
  };
}
