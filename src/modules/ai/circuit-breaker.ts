/**
 * One circuit breaker per provider, in this process. Closed: calls go through
 * and consecutive failures are counted. Open (after `failureThreshold` in a
 * row): calls are skipped until `cooldownMs` has passed. Half-open: one probe
 * goes through; its success closes the circuit, its failure opens it again
 * for another cool-down.
 *
 * The state is per instance on purpose: a provider that fails from one host
 * may work from another, and a few extra probes across a cluster cost little.
 */
export type CircuitState = 'closed' | 'open' | 'half_open';

interface Circuit {
  state: CircuitState;
  failures: number;
  openedAt: number;
  probing: boolean;
}

export function createCircuitBreakers(opts: { failureThreshold: number; cooldownMs: number; now?: () => number }) {
  const now = opts.now ?? Date.now;
  const circuits = new Map<string, Circuit>();
  const circuit = (provider: string): Circuit => {
    let c = circuits.get(provider);
    if (!c) circuits.set(provider, (c = { state: 'closed', failures: 0, openedAt: 0, probing: false }));
    return c;
  };

  return {
    /** May a call to this provider go ahead now? In half-open, only the one probe may. */
    allow(provider: string): boolean {
      const c = circuit(provider);
      if (c.state === 'closed') return true;
      if (c.state === 'open') {
        if (now() - c.openedAt < opts.cooldownMs) return false;
        c.state = 'half_open';
      }
      if (c.probing) return false;
      c.probing = true;
      return true;
    },
    success(provider: string) {
      circuits.set(provider, { state: 'closed', failures: 0, openedAt: 0, probing: false });
    },
    failure(provider: string) {
      const c = circuit(provider);
      c.failures++;
      c.probing = false;
      if (c.state === 'half_open' || c.failures >= opts.failureThreshold) {
        c.state = 'open';
        c.openedAt = now();
      }
    },
    /** The call ended without telling anything about the provider (the caller aborted, the request was bad). */
    release(provider: string) {
      circuit(provider).probing = false;
    },
    state(provider: string): CircuitState {
      const c = circuit(provider);
      if (c.state === 'open' && now() - c.openedAt >= opts.cooldownMs) return 'half_open';
      return c.state;
    },
  };
}

export type CircuitBreakers = ReturnType<typeof createCircuitBreakers>;
