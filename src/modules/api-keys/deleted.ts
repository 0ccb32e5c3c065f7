import type { EventBus } from '../../platform/bus/bus.ts';
import { outboxEventJob } from '../module.ts';

/**
 * A key's deletion is told as `api_key.deleted`, on which other modules let go of what they kept about the key
 * (the usage module: its budgets), published by this queue's job, which the deletion queues in its own
 * transaction (see outboxEventJob).
 */
export const DELETED_QUEUE = 'api-keys.deleted';

export const deletedJob = (bus: Pick<EventBus, 'publish'>) => outboxEventJob(DELETED_QUEUE, 'api_key.deleted', bus);
