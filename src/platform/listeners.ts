/**
 * Calls every listener with the message, over a copy (a listener may remove
 * itself); one that throws is reported and the others still run. Thrown from
 * an event emitter (ioredis) it would otherwise be an uncaught exception.
 */
export function callEach(listeners: Iterable<(message: string) => void> | undefined, message: string, onError: (err: unknown) => void): void {
  for (const listener of [...(listeners ?? [])]) {
    try {
      listener(message);
    } catch (err) {
      onError(err);
    }
  }
}
