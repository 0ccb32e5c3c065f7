import { clientKey } from '../../platform/net/client-address.ts';

/**
 * Sockets of this process that have not authenticated yet, per client address (an IPv6 client by its /64, as
 * limits counts and bans it): each may wait WS_AUTH_TIMEOUT_MS for a credential, and until one is sent nobody
 * is known to limit or ban, so one address could otherwise hold any number of them.
 */
export function pendingSockets(limit: number) {
  const counts = new Map<string, number>();
  return {
    /** A place for one more from `address`, and what gives it back (once, whatever calls it again); undefined when its address holds `limit` already (0: no limit). */
    take(address: string): (() => void) | undefined {
      const key = clientKey(address);
      const held = counts.get(key) ?? 0;
      if (limit > 0 && held >= limit) return undefined;
      counts.set(key, held + 1);
      let given = false;
      return () => {
        if (given) return;
        given = true;
        const left = (counts.get(key) ?? 1) - 1;
        if (left > 0) counts.set(key, left);
        else counts.delete(key);
      };
    },
  };
}

export type PendingSockets = ReturnType<typeof pendingSockets>;
