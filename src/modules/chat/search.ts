import { sql } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { conversations, messages } from './schema.ts';

export interface SearchHit {
  type: 'conversation' | 'message';
  conversationId: string;
  messageId: string | null;
  title: string | null;
  snippet: string;
  rank: number;
  createdAt: string;
}

// The text is HTML-escaped before ts_headline marks it up, so <mark> is the only markup a snippet can hold.
const escaped = (text: unknown) => sql`replace(replace(replace(${text}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')`;
const MARK = 'StartSel=<mark>, StopSel=</mark>';
const TITLE_HEADLINE = `${MARK}, HighlightAll=true`;
const MESSAGE_HEADLINE = `${MARK}, MaxWords=30, MinWords=12, ShortWord=2, MaxFragments=2, FragmentDelimiter=" … "`;

/**
 * Full-text search over one user's conversation titles and message texts
 * (websearch syntax, English stemming), best match first. The same SQL runs on
 * PGlite and PostgreSQL; the generated tsvector columns and their GIN indexes do the matching.
 */
export function createSearch(db: Db) {
  return {
    /** Up to `limit` hits starting at `offset`, from the user's own rows only. */
    async search(userId: string, opts: { q: string; limit: number; offset: number }): Promise<SearchHit[]> {
      const hits = sql`
        with q as (select websearch_to_tsquery('english', ${opts.q}) as query),
        hits as (
          (
            select 'conversation' as type, c.id as conversation_id, null::uuid as message_id, c.id as hit_id, c.title,
                   coalesce(c.title, '') as body, ts_rank(c.search_vector, q.query) as rank, c.created_at
            from ${conversations} c, q
            where c.user_id = ${userId} and c.search_vector @@ q.query
            union all
            select 'message', m.conversation_id, m.id, m.id, c.title, m.text, ts_rank(m.search_vector, q.query), m.created_at
            from ${messages} m join ${conversations} c on c.id = m.conversation_id, q
            where m.user_id = ${userId} and c.user_id = ${userId} and m.role in ('user', 'assistant') and m.status <> 'flagged' and m.search_vector @@ q.query
          )
          order by rank desc, created_at desc, hit_id desc
          limit ${opts.limit} offset ${opts.offset}
        )
        select hits.*, ts_headline('english', ${escaped(sql`hits.body`)}, q.query,
                 case when hits.type = 'conversation' then ${TITLE_HEADLINE} else ${MESSAGE_HEADLINE} end) as snippet
        from hits, q`;
      return db
        .select({
          type: sql<'conversation' | 'message'>`r.type`,
          conversationId: sql<string>`r.conversation_id`,
          messageId: sql<string | null>`r.message_id`,
          title: sql<string | null>`r.title`,
          snippet: sql<string>`r.snippet`,
          rank: sql<number>`r.rank`.mapWith(Number),
          createdAt: sql<string>`to_char(r.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`,
        })
        .from(sql`(${hits}) as r`)
        .orderBy(sql`r.rank desc, r.created_at desc, r.hit_id desc`);
    },
  };
}

export type Search = ReturnType<typeof createSearch>;
