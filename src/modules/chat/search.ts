import { sql } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { conversations, messages } from './schema.ts';

/**
 * Where a hit stands in the order (rank, then newest, then id), exactly as the database compares it: the
 * rank as PostgreSQL prints its `real`, the time to the microsecond. The next page starts after it.
 */
export interface SearchPosition {
  rank: string;
  createdAt: string;
  id: string;
}

export interface SearchHit {
  type: 'conversation' | 'message';
  conversationId: string;
  messageId: string | null;
  title: string | null;
  snippet: string;
  rank: number;
  createdAt: string;
  position: SearchPosition;
}

/**
 * How many of a user's matching messages, and of their matching conversation titles, are ranked: the
 * newest ones (titles: of the conversations most recently active). Ranking reads each candidate's whole
 * tsvector; bounded, a word in a hundred thousand of a user's messages is ranked at the cost of a thousand.
 */
export const RANKED_MATCHES = 1_000;

// The text is HTML-escaped before ts_headline marks it up, so <mark> is the only markup a snippet can hold.
const escaped = (text: unknown) => sql`replace(replace(replace(${text}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')`;
const MARK = 'StartSel=<mark>, StopSel=</mark>';
const TITLE_HEADLINE = `${MARK}, HighlightAll=true`;
const MESSAGE_HEADLINE = `${MARK}, MaxWords=30, MinWords=12, ShortWord=2, MaxFragments=2, FragmentDelimiter=" … "`;
const iso = (column: string, fraction: 'MS' | 'US') => sql.raw(`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.${fraction}"Z"')`);

/**
 * Full-text search over one user's conversation titles and message texts
 * (websearch syntax, English stemming), best match first. The same SQL runs on
 * PGlite and PostgreSQL.
 *
 * Each list's candidates are the user's newest matches (RANKED_MATCHES), found through indexes that lead
 * with the user (GIN on (user_id, search_vector) with btree_gin; their messages by time), so a request reads
 * the user's rows, never other users'. Only the candidates are ranked (again for each page), and a page
 * starts after the last hit's position (keyset): it sorts what follows, where an offset sorted every hit
 * before it as well.
 */
export function createSearch(db: Db) {
  return {
    /** Up to `limit` hits after `after` (from the first without it), from the user's own rows only. */
    async search(userId: string, opts: { q: string; limit: number; after?: SearchPosition }): Promise<SearchHit[]> {
      // Inline (not a CTE's column): the planner sees the query's words, for the index and its estimates.
      const query = () => sql`websearch_to_tsquery('english', ${opts.q})`;
      const matching = sql`m.user_id = ${userId} and m.role in ('user', 'assistant') and m.status <> 'flagged' and m.search_vector @@ ${query()}`;
      // First, up to one more than are ranked of the user's matching messages, through the GIN index: planned
      // for all of them (a materialized CTE), read only as far as the limit. Asked straight for the newest, the
      // planner guessed from how common the word is among everyone's messages, and for a user who rarely
      // writes it walked all of their messages newest first looking for it.
      const found = await db.execute(sql`
        with matches as materialized (select m.id from ${messages} m where ${matching})
        select id from matches limit ${RANKED_MATCHES + 1}`);
      const ids = (found as unknown as { rows: Array<{ id: string }> }).rows.map((r) => r.id);
      // All of them, or the newest: by the GIN index and a sort, or by walking the user's messages by time
      // until enough match, as the planner sees fit. Time is an order no index over every user's messages
      // serves: the planner cannot walk them all newest first and drop the other users'.
      const newest =
        ids.length <= RANKED_MATCHES
          ? sql`select m.id, m.conversation_id, m.search_vector, m.created_at from ${messages} m where m.id = any(${`{${ids.join(',')}}`}::uuid[])`
          : sql`select m.id, m.conversation_id, m.search_vector, m.created_at from ${messages} m where ${matching} order by m.created_at desc, m.id desc limit ${RANKED_MATCHES}`;
      const ranked = sql`
        select 'conversation' as type, c.id as conversation_id, null::uuid as message_id, c.id as hit_id,
               ts_rank(c.search_vector, ${query()}) as rank, c.created_at
        from (
          select c.id, c.search_vector, c.created_at from ${conversations} c
          where c.user_id = ${userId} and c.search_vector @@ ${query()}
          order by c.updated_at desc, c.id desc
          limit ${RANKED_MATCHES}
        ) c
        union all
        select 'message', m.conversation_id, m.id, m.id, ts_rank(m.search_vector, ${query()}), m.created_at
        from (${newest}) m
        join ${conversations} c on c.id = m.conversation_id and c.user_id = ${userId}`;
      const after = opts.after
        ? sql`where (h.rank, h.created_at, h.hit_id) < (${opts.after.rank}::real, ${opts.after.createdAt}::timestamptz, ${opts.after.id}::uuid)`
        : sql``;
      // Materialized: each candidate is ranked once, not again for the cursor's comparison. The texts are read
      // for the page's hits only.
      const page = sql`
        with ranked as materialized (${ranked})
        select h.*, c.title,
               ts_headline('english', ${escaped(sql`case when h.type = 'conversation' then coalesce(c.title, '') else m.text end`)}, ${query()},
                 case when h.type = 'conversation' then ${TITLE_HEADLINE} else ${MESSAGE_HEADLINE} end) as snippet
        from (select * from ranked h ${after} order by h.rank desc, h.created_at desc, h.hit_id desc limit ${opts.limit}) h
        join ${conversations} c on c.id = h.conversation_id
        left join ${messages} m on m.id = h.message_id`;
      const rows = await db
        .select({
          type: sql<'conversation' | 'message'>`r.type`,
          conversationId: sql<string>`r.conversation_id`,
          messageId: sql<string | null>`r.message_id`,
          hitId: sql<string>`r.hit_id`,
          title: sql<string | null>`r.title`,
          snippet: sql<string>`r.snippet`,
          rank: sql<number>`r.rank`.mapWith(Number),
          rankText: sql<string>`r.rank::text`,
          createdAt: sql<string>`${iso('r.created_at', 'MS')}`,
          createdAtExact: sql<string>`${iso('r.created_at', 'US')}`,
        })
        .from(sql`(${page}) as r`)
        .orderBy(sql`r.rank desc, r.created_at desc, r.hit_id desc`);
      return rows.map(({ hitId, rankText, createdAtExact, ...hit }) => ({ ...hit, position: { rank: rankText, createdAt: createdAtExact, id: hitId } }));
    },
  };
}

export type Search = ReturnType<typeof createSearch>;
