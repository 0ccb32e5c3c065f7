import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ValidationError } from '../../errors.ts';
import { MAX_ID_LENGTH, outputText, type Item } from './responses-format.ts';

/**
 * A stored response's input items as OpenAI lists them (`GET /v1/responses/{id}/input_items`): each with an
 * `id`, in OpenAI's item shapes, a page at a time.
 */

export const inputItemsQuery = z.looseObject({
  after: z.string().min(1).max(MAX_ID_LENGTH).optional().describe('An item id: the items after it, in the order asked for'),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  order: z.enum(['asc', 'desc']).default('desc'),
});

const PREFIXES: Record<string, string> = { message: 'msg', function_call: 'fc', function_call_output: 'fco', reasoning: 'rs' };

/**
 * Ids for the items a caller sent, which are stored as sent, mostly without one: derived from the response and the
 * item's place in its whole input. Deleting or purging an earlier turn keeps that input as it was (the store hands
 * it on), so an item keeps its id across calls, and `after` finds it again. An item that came with an id (an
 * answer's output, carried on by `previous_response_id`; one a client sent) keeps it, unless an item before it
 * took it already, so ids are unique within the list.
 */
const derivedId = (responseId: string, place: number, type: string) =>
  `${PREFIXES[type] ?? 'item'}_${createHash('sha256').update(`${responseId}\n${place}`).digest('hex').slice(0, 48)}`;

/** A response's whole input, oldest first, as OpenAI's items: messages with content parts (a string becomes one text part) and a status. */
export function listedItems(responseId: string, items: Item[]): Item[] {
  const taken = new Set<string>();
  return items.map((item, place) => {
    const type = typeof item.type === 'string' ? item.type : 'message';
    const own = typeof item.id === 'string' && item.id && !taken.has(item.id) ? item.id : undefined;
    const id = own ?? derivedId(responseId, place, type);
    taken.add(id);
    const listed: Item = { ...item, id, type };
    if (type === 'message' && typeof item.content === 'string') listed.content = [item.role === 'assistant' ? outputText(item.content) : { type: 'input_text', text: item.content }];
    if (['message', 'function_call', 'function_call_output'].includes(type)) listed.status ??= 'completed';
    return listed;
  });
}

/** One page of `items` (oldest first) in `order`, after the item `after`; an id that is not one of them is a 400 on `after`. */
export function itemPage(items: Item[], query: z.infer<typeof inputItemsQuery>) {
  const ordered = query.order === 'asc' ? items : [...items].reverse();
  let start = 0;
  if (query.after !== undefined) {
    const at = ordered.findIndex((item) => item.id === query.after);
    if (at < 0) throw ValidationError(`No input item with id '${query.after}' in this response`, 'invalid_value', { param: 'after' });
    start = at + 1;
  }
  const data = ordered.slice(start, start + query.limit);
  return { object: 'list' as const, data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: start + query.limit < ordered.length };
}
