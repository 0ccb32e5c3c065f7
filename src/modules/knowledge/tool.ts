import { ToolError, type Tool } from '../tools/index.ts';
import type { Grounding } from './grounding.ts';

const MAX_LIMIT = 20;
const DEFAULT_LIMIT = 5;

/**
 * `search_knowledge`: the model looks up the user's files and documents
 * itself, with the hybrid search that grounds answers: within the turn's
 * project's and conversation's collections when they name any, else in all
 * the user may read (see Grounding.find).
 */
export function searchKnowledgeTool(d: { grounding: Pick<Grounding, 'find'> }): Tool {
  return {
    name: 'search_knowledge',
    description:
      "Searches the user's knowledge base (their files and the documents they can read; within this project's collections when it has any) with full-text and semantic search. " +
      'Returns the best-matching passages, best first, each with its document or file name, its collections, a relevance score and its text.',
    parameters: {
      type: 'object',
      properties: {
        query: { type: 'string', minLength: 1, maxLength: 2000, description: 'What to look for: a question or keywords.' },
        limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, description: `How many passages (default ${DEFAULT_LIMIT}).` },
      },
      required: ['query'],
      additionalProperties: false,
    },
    async run(args, ctx) {
      const query = String(args.query ?? '').trim();
      if (!query) throw new ToolError('query is empty: say what to look for', 'invalid_arguments');
      const found = await d.grounding.find(ctx.userId, { query, limit: typeof args.limit === 'number' ? args.limit : DEFAULT_LIMIT, projectId: ctx.projectId, conversationId: ctx.conversationId, apiKeyId: ctx.apiKeyId });
      return {
        searched: found.scope === 'collections' ? "this project's and conversation's collections" : 'all the user may read',
        results: found.passages.map((p) => ({
          [p.kind]: p.title,
          collections: p.collections,
          ...(p.headings.length && { section: p.headings.join(' › ') }),
          score: Number(p.score.toFixed(4)),
          text: p.text,
        })),
      };
    },
  };
}
