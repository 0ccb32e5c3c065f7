/** The parts of an OpenAPI document this file reads and rewrites. */
interface Document {
  paths?: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, { schema?: unknown }> }> } | unknown>>;
}

const PROBLEM_REF = '#/components/schemas/Problem';

/**
 * Error responses as they are sent: a route's 4xx/5xx declared with the Problem schema goes out as
 * `application/problem+json` (sendProblem), whatever media type the route produces when it succeeds (JSON,
 * an HTML page), so the document says so instead of `application/json` or `text/html`.
 */
export function problemContentTypes<T>(doc: T): T {
  for (const operations of Object.values((doc as Document).paths ?? {})) {
    for (const operation of Object.values(operations)) {
      const responses = (operation as { responses?: Record<string, { content?: Record<string, { schema?: unknown }> }> }).responses ?? {};
      for (const [status, response] of Object.entries(responses)) {
        if (!(Number(status) >= 400) || !response.content) continue;
        const problem = Object.values(response.content).find((c) => (c.schema as { $ref?: string } | undefined)?.$ref === PROBLEM_REF);
        if (problem) response.content = { 'application/problem+json': problem };
      }
    }
  }
  return doc;
}
