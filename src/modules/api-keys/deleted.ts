import { outboxEvent } from '../module.ts';

/** A key's deletion, told to other modules (the usage module drops its budgets) once it is committed. */
export const keyDeleted = outboxEvent('api-keys.deleted', 'api_key.deleted');
