import { outboxEvent } from '../module.ts';

/**
 * A share's removal, told to other modules once it is committed: they let go of what the former reader kept of the
 * document (the knowledge module: their collections' links to its item).
 */
export const unshared = outboxEvent('documents.unshared', 'document.unshared');
