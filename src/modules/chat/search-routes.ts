import { principal } from '../../http/guards.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import { encodeSearchCursor, searchPage, searchQuery } from './contracts.ts';
import { RANKED_MATCHES } from './search.ts';

/** Full-text search over your own conversations and messages. API keys need the `chat` scope. */
export function searchRoutes(app: App, { services, guards }: RouteContext<'search'>) {
  const { search } = services;

  app.get('/search', {
    schema: {
      tags: ['search'],
      summary: 'Search your conversations and messages',
      description:
        'Matches conversation titles and message texts (English stemming; web-search syntax: `"exact phrase"`, `or`, `-word`), best match first. ' +
        `Ranks your ${RANKED_MATCHES.toLocaleString('en')} newest matching messages and the titles of your ${RANKED_MATCHES.toLocaleString('en')} most recently active matching conversations; older matches are left out (narrow the query to reach them). ` +
        '`snippet` is HTML-escaped text with each match wrapped in `<mark>…</mark>`.',
      querystring: searchQuery,
      response: { 200: searchPage, 400: problemSchema, 401: problemSchema, 403: problemSchema },
    },
    onRequest: guards.user({ scope: 'chat' }),
    handler: async (request) => {
      const { q, limit, cursor } = request.query;
      const hits = await search.search(principal(request).userId, { q, limit: limit + 1, after: cursor });
      const page = hits.slice(0, limit);
      return { data: page.map(({ position: _, ...hit }) => hit), nextCursor: hits.length > limit ? encodeSearchCursor(page.at(-1)!.position) : null };
    },
  });
}
