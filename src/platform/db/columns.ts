import { timestamp, uuid } from 'drizzle-orm/pg-core';
import { uuidv7 } from 'uuidv7';

/** A UUIDv7 primary key, generated in the application so ids sort by creation time. */
export const id = () => uuid('id').primaryKey().$defaultFn(() => uuidv7());

export const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();

export const time = (name: string) => timestamp(name, { withTimezone: true });
