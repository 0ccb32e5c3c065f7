import type { EventBus } from '../../platform/bus/bus.ts';
import type { JobDefinition } from '../module.ts';

/**
 * A share's removal is told as `document.unshared`, on which other modules let go of what the former reader kept
 * of the document (the knowledge module: their collections' links to its item). The removal queues this job in
 * its own transaction (an outbox: both or neither), and the job publishes the event, retried until the bus takes
 * it: a crash between the two can neither lose the event nor announce a removal that did not happen.
 */
export const UNSHARED_QUEUE = 'documents.unshared';

/** Retried for about an hour and a half (5 s doubling), as `auth.reclaimed` is. */
export const UNSHARED_JOB = { attempts: 10, backoffMs: 5_000 };

export const unsharedJob = (bus: Pick<EventBus, 'publish'>): JobDefinition<{ documentId: string; userId: string }> => ({
  queue: UNSHARED_QUEUE,
  handler: async ({ documentId, userId }) => ({ eventId: await bus.publish('document.unshared', { userId, documentId }) }),
});
