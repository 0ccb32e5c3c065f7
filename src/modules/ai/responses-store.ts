import { and, eq, gt, lt, sql, type SQL } from 'drizzle-orm';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import { aiResponses } from './schema.ts';

/** How long a stored response can be retrieved or continued, as OpenAI keeps them. */
export const RESPONSE_RETENTION_MS = 30 * 24 * 3600 * 1000;

export type StoredResponse = typeof aiResponses.$inferSelect;
export type NewStoredResponse = Omit<typeof aiResponses.$inferInsert, 'input' | 'inputWhole'>;
type Item = Record<string, unknown>;

/**
 * Walks chains back from their newest rows to the first whole row of each: `from` yields the newest rows as `r`
 * and `origin` names each chain; every row comes with its distance from the newest. A chain never crosses
 * users (a previous response is looked up as its caller's); the owner is checked at each step all the same,
 * so a row of another user would end the walk short (a broken chain, which `conversation` refuses) rather
 * than lend its turns. Each step is a primary-key lookup.
 */
const walkFrom = (origin: SQL, from: SQL) => sql`
  walk(origin, id, user_id, previous_response_id, input_whole, depth) as (
    select ${origin}, r.id, r.user_id, r.previous_response_id, r.input_whole, 0 ${from}
    union all
    select w.origin, r.id, r.user_id, r.previous_response_id, r.input_whole, w.depth + 1
      from walk w join ${aiResponses} r on r.id = w.previous_response_id and r.user_id = w.user_id
     where not w.input_whole
  )`;

/**
 * Hands the conversation of responses about to go to the responses that continue them and stay (`heir`: that
 * condition on `h`), which then stand alone (their input whole), so deleting or purging a response in the middle
 * of a chain leaves the rest of it loadable. One statement: each heir's earlier turns are its previous response's
 * chain, walked as `conversation` walks it and concatenated in order (per row its input, then its output).
 */
async function handOver(tx: Db, heir: SQL): Promise<void> {
  await tx.execute(sql`
    with recursive heirs as (
      select h.id, h.user_id, h.previous_response_id from ${aiResponses} h where not h.input_whole and ${heir}
    ),
    ${walkFrom(sql`h.id`, sql`from heirs h join ${aiResponses} r on r.id = h.previous_response_id and r.user_id = h.user_id`)},
    earlier as (
      select w.origin as heir, jsonb_agg(e.item order by w.depth desc, e.part, e.n) as items
        from walk w join ${aiResponses} r on r.id = w.id
        cross join lateral (
          select 0 as part, i.item, i.n from jsonb_array_elements(r.input) with ordinality as i(item, n)
          union all
          select 1, o.item, o.n from jsonb_array_elements(r.output) with ordinality as o(item, n)
        ) e
       group by w.origin
    )
    update ${aiResponses} h set input = coalesce(earlier.items, '[]'::jsonb) || h.input, input_whole = true
      from heirs left join earlier on earlier.heir = heirs.id
     where h.id = heirs.id`);
}

/**
 * Stored Responses API responses, each visible to its owner only. A response
 * stores its own input items and its output; its earlier turns are those of
 * the response it continues, read back along the chain. Deleting or purging
 * a response locks it first, and saving one that continues it takes a share
 * lock on it: either the new response is written before and is handed the
 * conversation, or it finds its previous response gone and stores its whole
 * input itself. Either way no chain loses a turn.
 */
export function createResponseStore(db: Db) {
  const live = () => gt(aiResponses.createdAt, new Date(Date.now() - RESPONSE_RETENTION_MS));

  /** The rows of a response's chain, oldest first, down to the response itself; undefined where `find` has nothing. */
  async function chainOf(id: string, userId: string): Promise<{ input: Item[]; output: Item[] }[] | undefined> {
    const cutoff = new Date(Date.now() - RESPONSE_RETENTION_MS);
    const result = await db.execute(sql`
      with recursive ${walkFrom(sql`r.id`, sql`from ${aiResponses} r where r.id = ${id} and r.user_id = ${userId}::uuid and r.created_at > ${cutoff}`)}
      select r.input, r.output, r.input_whole from walk w join ${aiResponses} r on r.id = w.id order by w.depth desc`);
    const rows = (result as unknown as { rows: { input: Item[]; output: Item[]; input_whole: boolean }[] }).rows;
    if (!rows.length) return undefined;
    // Deletions and purges hand a conversation on before its rows go, so the oldest row is whole; anything else is a bug, not a shorter conversation.
    if (!rows[0]!.input_whole) throw new Error(`The chain of response ${id} does not reach a response holding its whole input`);
    return rows;
  }

  return {
    /**
     * Stores a response given its own input items and the earlier turns it continued (those of
     * `previousResponseId`): its own only while that response is still there, else the whole of it.
     */
    async save(row: NewStoredResponse, input: { own: Item[]; earlier: Item[] }): Promise<void> {
      await inTransaction(db, async (tx) => {
        const previous = row.previousResponseId
          ? await tx.select({ id: aiResponses.id }).from(aiResponses).where(and(eq(aiResponses.id, row.previousResponseId), eq(aiResponses.userId, row.userId))).for('share')
          : [];
        const continues = previous.length > 0;
        await tx.insert(aiResponses).values({ ...row, input: continues ? input.own : [...input.earlier, ...input.own], inputWhole: !continues });
      });
    },

    /** The owner's response; undefined for another user's, a deleted or an expired one alike. Its `input` may be its own items only. */
    async find(id: string, userId: string): Promise<StoredResponse | undefined> {
      const [row] = await db.select().from(aiResponses).where(and(eq(aiResponses.id, id), eq(aiResponses.userId, userId), live()));
      return row;
    },

    /**
     * The conversation a response closes, for `previous_response_id`: its whole input (the earlier turns
     * expanded) and its output, in order; undefined where `find` has nothing. One recursive query up the
     * chain; the turns before the response are kept however old (they go with it, or are handed on).
     */
    async conversation(id: string, userId: string): Promise<Item[] | undefined> {
      return (await chainOf(id, userId))?.flatMap((r) => [...r.input, ...r.output]);
    },

    /** What the model got as a response's input: `conversation` without the response's own output. One query, as there. */
    async input(id: string, userId: string): Promise<Item[] | undefined> {
      const rows = await chainOf(id, userId);
      return rows?.flatMap((r, i) => (i === rows.length - 1 ? r.input : [...r.input, ...r.output]));
    },

    async remove(id: string, userId: string): Promise<boolean> {
      return inTransaction(db, async (tx) => {
        // One past retention is gone to its owner already (find), awaiting only the purge.
        const [row] = await tx.select({ id: aiResponses.id }).from(aiResponses).where(and(eq(aiResponses.id, id), eq(aiResponses.userId, userId), live())).for('update');
        if (!row) return false;
        await handOver(tx, sql`h.previous_response_id = ${id}`);
        await tx.delete(aiResponses).where(eq(aiResponses.id, id));
        return true;
      });
    },

    /** Deletes those past retention, handing their conversations on to younger responses continuing them; the scheduled purge. */
    async purge(now = new Date()): Promise<number> {
      const cutoff = new Date(now.getTime() - RESPONSE_RETENTION_MS);
      return inTransaction(db, async (tx) => {
        const doomed = sql`select d.id from ${aiResponses} d where d.created_at < ${cutoff}`;
        await tx.execute(sql`select count(*) from (${doomed} for update) as locked`);
        await handOver(tx, sql`h.created_at >= ${cutoff} and h.previous_response_id in (${doomed})`);
        const gone = await tx.delete(aiResponses).where(lt(aiResponses.createdAt, cutoff)).returning({ id: aiResponses.id });
        return gone.length;
      });
    },
  };
}

export type ResponseStore = ReturnType<typeof createResponseStore>;
