/**
 * What verifying an API key found, kept in process so the gateway's hot path
 * makes no database round trip. Entries live `ttlMs`; forgetting a user (key
 * deleted, account disabled, role changed, account deleted) drops their entries
 * at once, and a lookup that began before the forget is never stored, so a read
 * racing the change cannot bring the old state back.
 */
export function createVerificationCache<V extends { userId: string }>(opts: { ttlMs: number; maxEntries: number; now?: () => number }) {
  const now = opts.now ?? Date.now;
  const entries = new Map<string, { value: V; storedAt: number }>();
  // userId → when it was last forgotten; only kept as long as an entry could be.
  const forgotten = new Map<string, number>();

  return {
    /** A token to take before the lookup whose result will be stored. */
    startLookup: () => now(),

    get(hash: string): V | undefined {
      const entry = entries.get(hash);
      if (!entry) return undefined;
      if (now() - entry.storedAt >= opts.ttlMs) {
        entries.delete(hash);
        return undefined;
      }
      return entry.value;
    },

    set(hash: string, value: V, lookupStartedAt: number) {
      const forgottenAt = forgotten.get(value.userId);
      if (forgottenAt !== undefined && forgottenAt >= lookupStartedAt) return;
      if (entries.size >= opts.maxEntries) entries.delete(entries.keys().next().value!);
      entries.set(hash, { value, storedAt: now() });
    },

    forgetUser(userId: string) {
      const t = now();
      forgotten.set(userId, t);
      for (const [hash, entry] of entries) if (entry.value.userId === userId) entries.delete(hash);
      for (const [id, at] of forgotten) if (t - at > opts.ttlMs) forgotten.delete(id);
    },

    get size() {
      return entries.size;
    },
  };
}
