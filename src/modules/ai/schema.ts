import { index, jsonb, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { createdAt } from '../../platform/db/columns.ts';
import { users } from '../users/index.ts';

/**
 * A response of `POST /v1/responses` kept for `previous_response_id` and
 * `GET /v1/responses/{id}`: the whole conversation it answered (its input,
 * the earlier turns expanded) and its output, so the next turn loads one row.
 * Purged 30 days on, as OpenAI keeps them.
 */
export const aiResponses = pgTable(
  'ai_responses',
  {
    /** `resp_…`, as OpenAI's ids look. */
    id: text('id').primaryKey(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    /** The key it was made with (null for an access token); no foreign key: a revoked key's responses stay its owner's. */
    apiKeyId: uuid('api_key_id'),
    /** The link that answered (`provider:model`). */
    model: text('model').notNull(),
    status: text('status').notNull(),
    previousResponseId: text('previous_response_id'),
    instructions: text('instructions'),
    /** Input items, the earlier turns' included, in OpenAI's item format. */
    input: jsonb('input').$type<Record<string, unknown>[]>().notNull(),
    output: jsonb('output').$type<Record<string, unknown>[]>().notNull(),
    /** The rest of the response object (usage, tools, temperature, metadata, error, …) as it was answered. */
    response: jsonb('response').$type<Record<string, unknown>>().notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('ai_responses_user_idx').on(t.userId), index('ai_responses_created_idx').on(t.createdAt)],
);
