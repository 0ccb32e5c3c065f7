import { sql } from 'drizzle-orm';
import type { FootprintSource } from '../usage/index.ts';
import { conversations, messages } from './schema.ts';

/**
 * What chat stores, for the footprint report. Bytes are the UTF-8 bytes of the
 * text a user sees (titles, message text), not the rows' size on disk, which
 * depends on the database's compression and would not be exact.
 */
export const chatFootprint: FootprintSource[] = [
  { name: 'conversations', from: sql`${conversations}`, userId: conversations.userId, bytes: sql`octet_length(coalesce(${conversations.title}, ''))` },
  { name: 'messages', from: sql`${messages}`, userId: messages.userId, bytes: sql`octet_length(${messages.text})` },
];
