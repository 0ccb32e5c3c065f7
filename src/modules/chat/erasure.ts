import { desc, eq } from 'drizzle-orm';
import { deleteSome } from '../../platform/db/batches.ts';
import type { Db } from '../../platform/db/database.ts';
import { inOrder, type ErasureSource } from '../users/index.ts';
import { conversations, messages } from './schema.ts';

/** A deleted account's messages, newest first (a reply before what it answers), then its conversations. */
export const chatErasure = (db: Db): ErasureSource => ({
  name: 'chat',
  erase: (userId, limit) =>
    inOrder(
      (n) => deleteSome(db, messages, eq(messages.userId, userId), n, [desc(messages.createdAt), desc(messages.id)]),
      (n) => deleteSome(db, conversations, eq(conversations.userId, userId), n),
    )(limit),
});
