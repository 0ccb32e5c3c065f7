import type { EventBus } from '../../platform/bus/bus.ts';
import { outboxEventJob } from '../module.ts';

/**
 * A share's removal is told as `document.unshared`, on which other modules let go of what the former reader kept
 * of the document (the knowledge module: their collections' links to its item), published by this queue's job,
 * which the removal queues in its own transaction (see outboxEventJob).
 */
export const UNSHARED_QUEUE = 'documents.unshared';

export const unsharedJob = (bus: Pick<EventBus, 'publish'>) => outboxEventJob(UNSHARED_QUEUE, 'document.unshared', bus);
