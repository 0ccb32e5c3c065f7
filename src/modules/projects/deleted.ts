import type { EventBus } from '../../platform/bus/bus.ts';
import { outboxEventJob } from '../module.ts';

/**
 * A project's deletion is told as `project.deleted`, on which other modules let go of what they kept about the
 * project (the usage module: its budgets), published by this queue's job, which the deletion queues in its own
 * transaction (see outboxEventJob).
 */
export const DELETED_QUEUE = 'projects.deleted';

export const deletedJob = (bus: Pick<EventBus, 'publish'>) => outboxEventJob(DELETED_QUEUE, 'project.deleted', bus);
