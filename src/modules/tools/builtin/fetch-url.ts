import { ToolError, type Tool } from '../tool.ts';
import type { WebPages } from './web-pages.ts';

/** `fetch_url`: a public web page read as text (see web-pages.ts for what is refused and why). */
export function fetchUrlTool(d: { pages: WebPages }): Tool {
  return {
    name: 'fetch_url',
    description:
      'Fetches a public web page (HTTP GET) and returns its text: HTML reduced to readable text with links as [url], plain text and JSON as they are. ' +
      'Returns the final URL after redirects, the HTTP status, the content type, the title and the text (cut when long). Private and local addresses are refused.',
    parameters: {
      type: 'object',
      properties: { url: { type: 'string', description: 'An absolute http or https URL.', maxLength: 4096 } },
      required: ['url'],
      additionalProperties: false,
    },
    // Its own time cap says what happened more clearly than the toolbox's, so the toolbox's comes a little later.
    timeoutMs: d.pages.settings.timeoutMs + 1_000,
    async run(args, ctx) {
      if (typeof args.url !== 'string') throw new ToolError('url must be a string', 'url_invalid');
      return d.pages.read(args.url, ctx.signal);
    },
  };
}
