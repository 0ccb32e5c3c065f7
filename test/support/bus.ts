import { randomBytes } from 'node:crypto';
import type { EventBus } from '../../src/platform/bus/bus.ts';
import type { AnyBusEvent, EventType } from '../../src/platform/bus/events.ts';

/** A consumer group of the test's own that keeps every event of the given types, as another module would receive them. */
export async function observeEvents<T extends EventType>(bus: EventBus, types: readonly T[]): Promise<{ events: Array<AnyBusEvent<T>>; close(): Promise<void> }> {
  const events: Array<AnyBusEvent<T>> = [];
  const sub = await bus.subscribe(`test-observer-${randomBytes(3).toString('hex')}`, types, (e) => {
    events.push(e);
  });
  return { events, close: () => sub.close() };
}
