import { sql, type SQL } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { AiService } from '../ai/index.ts';
import type { Search as ConversationSearch } from '../chat/index.ts';
import type { Documents } from '../documents/index.ts';
import type { VectorIndex } from './vectors.ts';

/** Reciprocal rank fusion's constant: a hit's score from each list is 1 / (K + its rank). */
export const RRF_K = 60;
/** Candidates taken from each list before fusing. */
const CANDIDATES = 50;
/**
 * Passages ranked by full text for one search, at most (per side, see fullText): the matches of the newest
 * items first. Ranking reads each candidate's whole tsvector; bounded, fifty thousand matching passages are
 * ranked at the cost of a thousand (finding them costs an index entry and a row each).
 */
export const RANKED_PASSAGES = 1_000;

export type HitKind = 'document' | 'file' | 'conversation';

export interface SearchFilter {
  q: string;
  collectionIds?: string[];
  projectId?: string;
  kinds?: HitKind[];
  /** Items indexed (or messages written) within these dates. */
  from?: Date;
  to?: Date;
  /** Documents with this tag only (files and messages have no tags, so they drop out). */
  tag?: string;
  /** `all` (the default): full-text hits hold every word (web-search syntax); `any`: some of them (a question asked in chat). */
  match?: 'all' | 'any';
}

/** A question's words as a web-search query matching any of them. */
const anyOf = (q: string) => (q.match(/[\p{L}\p{N}]+/gu) ?? []).slice(0, 64).join(' or ');

export interface KnowledgeHit {
  kind: HitKind;
  /** The passage (documents and files) or message (conversations). */
  id: string;
  itemId: string | null;
  /** The document, file or conversation. */
  refId: string;
  messageId: string | null;
  title: string;
  /** HTML-escaped text with `<mark>` around matches. */
  snippet: string;
  headings: string[];
  start: number | null;
  end: number | null;
  score: number;
  /** 1-based rank in each list it came from. */
  ranks: { fullText: number | null; vector: number | null };
}

export interface SearchResult {
  hits: KnowledgeHit[];
  /** `hybrid` when the query was embedded too; `full-text` without an embedding model, or when embedding it failed (`degraded`). */
  mode: 'hybrid' | 'full-text';
  degraded: boolean;
}

const escaped = (text: SQL) => sql`replace(replace(replace(${text}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')`;
const HEADLINE = 'StartSel=<mark>, StopSel=</mark>, MaxWords=35, MinWords=15, ShortWord=2, MaxFragments=2, FragmentDelimiter=" … "';

/**
 * Hybrid search over what a user may read: passages of their files and of the
 * documents they can read (full-text rank and, with an embedding model, vector
 * similarity), and their conversations' messages (full text), fused by
 * reciprocal rank fusion.
 */
export function createKnowledgeSearch(d: {
  db: Db;
  vectors: VectorIndex;
  ai: Pick<AiService, 'embeddings'>;
  documents: Pick<Documents, 'readableIds'>;
  logger: Logger;
  /** Vector hits below this similarity are dropped. */
  minSimilarity: number;
}) {
  /**
   * Items the user may read, narrowed by the filter: a subquery of item ids. `others`: only the items
   * whose passages carry another user's id (a document shared with this user, indexed by its owner or
   * another reader).
   */
  function scope(userId: string, f: SearchFilter, opts: { others?: boolean } = {}): SQL {
    const kinds = (f.kinds ?? ['document', 'file']).filter((k) => k !== 'conversation' && (!f.tag || k === 'document'));
    const readable: SQL[] = [];
    if (kinds.includes('file') && !opts.others) readable.push(sql`(i.kind = 'file' and i.user_id = ${userId})`);
    if (kinds.includes('document')) {
      readable.push(sql`(i.kind = 'document' and i.ref_id in (${d.documents.readableIds(userId, f.tag)}))`);
    }
    if (!readable.length) return sql`select null::uuid where false`;
    const where: SQL[] = [sql`(${sql.join(readable, sql` or `)})`, sql`i.status = 'ready'`];
    if (opts.others) where.push(sql`i.user_id <> ${userId}`);
    if (f.collectionIds?.length || f.projectId) {
      const which: SQL[] = [];
      if (f.collectionIds?.length) which.push(sql`k.id = any(${`{${f.collectionIds.join(',')}}`}::uuid[])`);
      if (f.projectId) which.push(sql`k.project_id = ${f.projectId}`);
      where.push(sql`exists (select 1 from knowledge_collection_items ci join knowledge_collections k on k.id = ci.collection_id where ci.item_id = i.id and k.user_id = ${userId} and (${sql.join(which, sql` or `)}))`);
    }
    if (f.from) where.push(sql`i.indexed_at >= ${f.from.toISOString()}`);
    if (f.to) where.push(sql`i.indexed_at < ${f.to.toISOString()}`);
    return sql`select i.id from knowledge_items i where ${sql.join(where, sql` and `)}`;
  }

  /**
   * The best CANDIDATES passages by full-text rank among at most RANKED_PASSAGES matches on each side, those of
   * the newest items first: the user's own passages, found by the (user_id, search_vector) GIN index (btree_gin),
   * so that no other user's rows are read; and those of documents shared with them that another user indexed,
   * found by item. The items come as an array, not a join: joined, the planner took the user's items one by one
   * and tested every passage of each (reading each tsvector from TOAST, a cost it does not see), where the GIN
   * index gives the matches alone.
   */
  async function fullText(userId: string, f: SearchFilter, q: string): Promise<string[]> {
    if (!q.trim()) return [];
    const query = () => sql`websearch_to_tsquery('english', ${q})`;
    const rows = await d.db.execute(sql`
      with matches as materialized (
        (select c.id, c.search_vector from knowledge_chunks c
         where c.user_id = ${userId} and c.search_vector @@ ${query()} and c.item_id = any(array(${scope(userId, f)}))
         order by c.item_id desc, c.index
         limit ${RANKED_PASSAGES})
        union all
        (select c.id, c.search_vector from knowledge_chunks c
         where c.item_id = any(array(${scope(userId, f, { others: true })})) and c.user_id <> ${userId} and c.search_vector @@ ${query()}
         order by c.item_id desc, c.index
         limit ${RANKED_PASSAGES})
      )
      select id from matches
      order by ts_rank(search_vector, ${query()}) desc, id
      limit ${CANDIDATES}`);
    return (rows as unknown as { rows: Array<{ id: string }> }).rows.map((r) => r.id);
  }

  async function details(ids: string[], q: string) {
    if (!ids.length) return new Map<string, { itemId: string; kind: 'document' | 'file'; refId: string; title: string; snippet: string; headings: string[]; start: number; end: number }>();
    const rows = await d.db.execute(sql`
      select c.id, c.item_id, i.kind, i.ref_id, i.title, c.headings, c.start_offset, c.end_offset,
             ts_headline('english', ${escaped(sql`c.text`)}, websearch_to_tsquery('english', ${q}), ${HEADLINE}) as snippet
      from knowledge_chunks c join knowledge_items i on i.id = c.item_id
      where c.id = any(${`{${ids.join(',')}}`}::uuid[])`);
    const list = (rows as unknown as { rows: Array<Record<string, any>> }).rows;
    return new Map(list.map((r) => [r.id as string, { itemId: r.item_id, kind: r.kind, refId: r.ref_id, title: r.title, snippet: r.snippet, headings: r.headings ?? [], start: r.start_offset, end: r.end_offset }]));
  }

  return {
    /** How vectors are searched here: an HNSW index (pgvector), or an exact scan. */
    vectorMode: () => d.vectors.mode,
    start: () => d.vectors.start(),

    /**
     * `conversations`: chat's message search, when messages take part (the route passes it: chat
     * builds after knowledge, whose passages its answers draw on).
     */
    async search(
      userId: string,
      f: SearchFilter,
      page: { limit: number; offset: number },
      opts: { apiKeyId?: string | null; conversations?: Pick<ConversationSearch, 'search'> } = {},
    ): Promise<SearchResult> {
      const kinds = f.kinds ?? ['document', 'file', 'conversation'];
      const items = scope(userId, { ...f, kinds });
      const wantsPassages = kinds.some((k) => k !== 'conversation');
      let mode: SearchResult['mode'] = 'full-text';
      let degraded = false;

      const lists: Array<{ name: 'fullText' | 'vector' | 'conversation'; ids: string[] }> = [];
      const textQuery = f.match === 'any' ? anyOf(f.q) : f.q;
      if (wantsPassages) lists.push({ name: 'fullText', ids: await fullText(userId, { ...f, kinds }, textQuery) });
      if (wantsPassages && d.ai.embeddings.defaultModel) {
        try {
          const { vectors } = await d.ai.embeddings.embed([f.q], { meter: { userId, apiKeyId: opts.apiKeyId ?? null } });
          const near = await d.vectors.nearest(vectors[0]!, sql`c.item_id in (${items})`, CANDIDATES);
          lists.push({ name: 'vector', ids: near.filter((n) => n.similarity >= d.minSimilarity).map((n) => n.id) });
          mode = 'hybrid';
        } catch (err) {
          // Search still answers from full text; the caller is told it is degraded.
          degraded = true;
          d.logger.warn({ err }, 'could not embed a search query: full-text results only');
        }
      }
      // Conversations have no passages of their own: their messages rank by full text, within the date range, unless collections narrow the search.
      const messages = opts.conversations && kinds.includes('conversation') && !f.collectionIds?.length && !f.projectId && !f.tag ? await opts.conversations.search(userId, { q: f.q, limit: CANDIDATES }) : [];
      const inRange = messages.filter((m) => m.messageId && (!f.from || new Date(m.createdAt) >= f.from) && (!f.to || new Date(m.createdAt) < f.to));
      lists.push({ name: 'conversation', ids: inRange.map((m) => m.messageId!) });

      const fused = new Map<string, { score: number; ranks: KnowledgeHit['ranks'] }>();
      for (const list of lists) {
        for (const [i, id] of list.ids.entries()) {
          const hit = fused.get(id) ?? { score: 0, ranks: { fullText: null, vector: null } };
          hit.score += 1 / (RRF_K + i + 1);
          if (list.name === 'vector') hit.ranks.vector = i + 1;
          else hit.ranks.fullText = i + 1;
          fused.set(id, hit);
        }
      }
      const ordered = [...fused.entries()].sort((a, b) => b[1].score - a[1].score || (a[0] < b[0] ? -1 : 1)).slice(page.offset, page.offset + page.limit);
      const passages = await details(ordered.map(([id]) => id).filter((id) => !inRange.some((m) => m.messageId === id)), textQuery);
      const hits: KnowledgeHit[] = [];
      for (const [id, { score, ranks }] of ordered) {
        const p = passages.get(id);
        if (p) {
          hits.push({ kind: p.kind, id, itemId: p.itemId, refId: p.refId, messageId: null, title: p.title, snippet: p.snippet, headings: p.headings, start: p.start, end: p.end, score, ranks });
          continue;
        }
        const m = inRange.find((x) => x.messageId === id);
        if (m) hits.push({ kind: 'conversation', id, itemId: null, refId: m.conversationId, messageId: m.messageId, title: m.title ?? '', snippet: m.snippet, headings: [], start: null, end: null, score, ranks });
      }
      return { hits, mode, degraded };
    },
  };
}

export type KnowledgeSearch = ReturnType<typeof createKnowledgeSearch>;
