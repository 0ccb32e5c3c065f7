import { sql } from 'drizzle-orm';
import type { StorageSource } from '../usage/storage.ts';
import { conversations, messages } from './schema.ts';

/**
 * What chat stores, for the storage report. Bytes are the UTF-8 bytes of the
 * text a user sees (titles, message text), not the rows' size on disk, which
 * depends on the database's compression and would not be exact.
 */
export const chatStorage: StorageSource[] = [
  { name: 'conversations', from: sql`${conversations}`, userId: conversations.userId, bytes: sql`octet_length(coalesce(${conversations.title}, ''))` },
  { name: 'messages', from: sql`${messages}`, userId: messages.userId, bytes: sql`octet_length(${messages.text})` },
];
