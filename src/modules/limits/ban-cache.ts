import type { BanKind } from './schema.ts';

export interface ActiveBan {
  id: string;
  kind: BanKind;
  subject: string;
  expiresAt: Date;
}

/**
 * The active bans, kept in process so checking one costs no database round
 * trip. Bans set or lifted anywhere arrive over the broadcast; a periodic
 * reload from the database bounds what a lost notice can leave stale. A
 * reload never undoes a notice that arrived while it ran: bans added since it
 * began are kept, and lifted ids stay remembered until a later reload has
 * seen them lifted.
 */
export function createBanCache(opts: { now?: () => number } = {}) {
  const now = opts.now ?? Date.now;
  const bySubject = new Map<string, Map<string, ActiveBan & { addedAt: number }>>();
  const lifted = new Map<string, number>();
  const keyOf = (kind: BanKind, subject: string) => `${kind}\u0000${subject}`;

  function add(ban: ActiveBan, addedAt = now()) {
    if (lifted.has(ban.id) || ban.expiresAt.getTime() <= now()) return;
    const key = keyOf(ban.kind, ban.subject);
    let bans = bySubject.get(key);
    if (!bans) bySubject.set(key, (bans = new Map()));
    bans.set(ban.id, { ...ban, addedAt });
  }

  return {
    add: (ban: ActiveBan) => add(ban),

    lift(ban: { id: string; kind: BanKind; subject: string }) {
      lifted.set(ban.id, now());
      const key = keyOf(ban.kind, ban.subject);
      const bans = bySubject.get(key);
      bans?.delete(ban.id);
      if (bans?.size === 0) bySubject.delete(key);
    },

    /** The ban on this subject that ends last, if any is in force. */
    find(kind: BanKind, subject: string): ActiveBan | undefined {
      const bans = bySubject.get(keyOf(kind, subject));
      if (!bans) return undefined;
      const t = now();
      let found: ActiveBan | undefined;
      for (const ban of bans.values()) {
        if (ban.expiresAt.getTime() > t && (!found || ban.expiresAt > found.expiresAt)) found = ban;
      }
      return found;
    },

    /** A token to take before the database read whose result goes to `replace`. */
    startReload: () => now(),

    /** Replaces the contents with what the database held, keeping what notices brought in since `startedAt`. */
    replace(active: ActiveBan[], startedAt: number) {
      const recent = [...bySubject.values()].flatMap((bans) => [...bans.values()]).filter((b) => b.addedAt >= startedAt);
      bySubject.clear();
      for (const ban of active) add(ban, startedAt);
      for (const ban of recent) add(ban, ban.addedAt);
      for (const [id, at] of lifted) if (at < startedAt) lifted.delete(id);
    },

    get size() {
      let n = 0;
      for (const bans of bySubject.values()) n += bans.size;
      return n;
    },
  };
}

export type BanCache = ReturnType<typeof createBanCache>;
