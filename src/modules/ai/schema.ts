import { sql } from 'drizzle-orm';
import { boolean, index, jsonb, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { createdAt } from '../../platform/db/columns.ts';
import { users } from '../users/index.ts';

/**
 * A response of `POST /v1/responses` kept for `previous_response_id` and
 * `GET /v1/responses/{id}`: its own input items and its output, linked to
 * the response it continues. A turn's whole conversation is its chain read
 * back to the first row whose input is whole (one recursive query), so a
 * chain of N turns stores N turns, not N²/2. Purged 30 days on, as OpenAI
 * keeps them; a response deleted or purged first hands its conversation to
 * the responses that continue it (see responses-store.ts).
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
    /** Input items in OpenAI's item format: this turn's own, or the whole input (the earlier turns' included) where `inputWhole`. */
    input: jsonb('input').$type<Record<string, unknown>[]>().notNull(),
    /**
     * Whether `input` holds the earlier turns too: a first turn, a row written before chains were stored turn by
     * turn (migration 0033), or one its previous response's deletion or purge handed its conversation to. Where
     * false, the earlier turns are previous_response_id's.
     */
    inputWhole: boolean('input_whole').notNull(),
    output: jsonb('output').$type<Record<string, unknown>[]>().notNull(),
    /** The rest of the response object (usage, tools, temperature, metadata, error, …) as it was answered. */
    response: jsonb('response').$type<Record<string, unknown>>().notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    index('ai_responses_user_idx').on(t.userId),
    index('ai_responses_created_idx').on(t.createdAt),
    // The responses that continue one, found when it is deleted or purged.
    index('ai_responses_previous_idx').on(t.previousResponseId).where(sql`${t.previousResponseId} is not null`),
  ],
);
