import { outboxEvent } from '../module.ts';

/** A project's deletion, told to other modules (the usage module drops its budgets) once it is committed. */
export const projectDeleted = outboxEvent('projects.deleted', 'project.deleted');
