import { principal } from '../../http/guards.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import { adminRequestsQuery, requestsQuery, requestsReportSchema } from './contracts.ts';
import { reportRange } from './report-range.ts';
import type { RequestGroup } from './requests.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema };
const COUNTED =
  'Bytes in are request bodies (uploads), bytes out responses: their Content-Length, or for a chunked or streamed body (event streams, CSV exports) what the connection carried, head included. Current to the last metering flush (about a second).';

/** API requests per day, route and user, with the bytes they moved: the caller's own, or everyone's for admins. */
export function requestsRoutes(app: App, { services, guards }: RouteContext<'requestReports'>) {
  async function report(q: { from?: string; to?: string; groupBy: RequestGroup[]; userId?: string }) {
    const { from, to } = reportRange(q);
    const data = await services.requestReports.report({ ...q, from, to });
    const totals = { requests: 0, bytesIn: 0, bytesOut: 0 };
    for (const r of data) for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += r[k];
    return { from, to, groupBy: q.groupBy, totals, data };
  }

  app.get('/usage/requests', {
    schema: {
      tags: ['usage'],
      summary: 'Your API requests and bytes',
      description: `Over UTC days, grouped by day and/or route (method and route pattern). ${COUNTED}`,
      querystring: requestsQuery,
      response: { 200: requestsReportSchema, ...problems },
    },
    onRequest: guards.user({ scope: 'usage:read' }),
    handler: async (request) => report({ ...request.query, userId: principal(request).userId }),
  });

  app.get('/admin/usage/requests', {
    schema: {
      tags: ['admin'],
      summary: 'API requests and bytes across users',
      description: `Grouped by day, route and/or user; requests without a signed-in caller have userId null. ${COUNTED}`,
      querystring: adminRequestsQuery,
      response: { 200: requestsReportSchema, ...problems },
    },
    onRequest: guards.admin(),
    handler: async (request) => report(request.query),
  });
}
