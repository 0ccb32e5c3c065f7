import { index, jsonb, pgTable, text } from 'drizzle-orm/pg-core';
import { createdAt, id, time } from '../db/columns.ts';

/** Every email Parley sends; in embedded mode this is where mail goes. */
export const mailOutbox = pgTable(
  'mail_outbox',
  {
    id: id(),
    to: text('to').notNull(),
    subject: text('subject').notNull(),
    text: text('text').notNull(),
    html: text('html'),
    headers: jsonb('headers').$type<Record<string, string>>(),
    transport: text('transport', { enum: ['outbox', 'smtp'] }).notNull(),
    sentAt: time('sent_at'),
    error: text('error'),
    createdAt: createdAt(),
  },
  (t) => [index('mail_outbox_to_idx').on(t.to, t.id)],
);
