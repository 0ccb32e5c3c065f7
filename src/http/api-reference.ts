import Fastify, { type FastifyInstance } from 'fastify';

const PREFIX = '/docs';
/** What the reference's answers carry over: their type, a redirect's target, caching. */
const KEPT_HEADERS = ['content-type', 'location', 'cache-control'];

/**
 * The API reference (Scalar) at /docs, over /openapi.json. Scalar's module
 * holds its 4 MB browser bundle as a string and an OpenAPI parser (about
 * 11 MB of heap), which a server nobody reads the reference of need not
 * keep: it is loaded on the first visit, into an instance of its own that
 * these routes hand each request to.
 */
export function apiReference(app: FastifyInstance) {
  let reference: Promise<FastifyInstance> | undefined;
  const load = () =>
    (reference ??= (async () => {
      const { default: scalar } = await import('@scalar/fastify-api-reference');
      const inner = Fastify();
      await inner.register(scalar, { routePrefix: PREFIX, configuration: { url: '/openapi.json' } });
      await inner.ready();
      return inner;
    })().catch((err) => {
      reference = undefined; // the next visit tries again
      throw err;
    }));
  app.addHook('onClose', async () => {
    if (reference) await (await reference.catch(() => undefined))?.close();
  });
  for (const url of [PREFIX, `${PREFIX}/`, `${PREFIX}/js/scalar.js`]) {
    app.get(url, { schema: { hide: true } }, async (request, reply) => {
      const answer = await (await load()).inject({ method: 'GET', url: request.url, headers: { host: request.headers.host ?? 'localhost' } });
      for (const name of KEPT_HEADERS) {
        const value = answer.headers[name];
        if (value !== undefined) reply.header(name, value);
      }
      // Never inside another site's frame (the reference sends requests with the reader's cookies), nor sniffed.
      reply.header('x-frame-options', 'DENY').header('content-security-policy', "frame-ancestors 'none'").header('x-content-type-options', 'nosniff');
      return reply.status(answer.statusCode).send(answer.rawPayload);
    });
  }
}
