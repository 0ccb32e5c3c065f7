import { principal } from '../../http/guards.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import { runBody, runSchema } from './contracts.ts';

const problems = { 400: problemSchema, 401: problemSchema, 402: problemSchema, 403: problemSchema, 413: problemSchema, 429: problemSchema, 503: problemSchema };
const tags = ['sandbox'];

/** Runs a script and answers with its result. API keys need the `sandbox` scope. */
export function sandboxRoutes(app: App, { services, guards }: RouteContext<'sandbox'>) {
  const { sandbox } = services;

  app.post('/sandbox/runs', {
    schema: {
      tags,
      summary: 'Run JavaScript in an isolated sandbox',
      description:
        'The script runs in a fresh isolate of its own (no `process`, `require`, timers, filesystem or network), with `console` captured and `input` given. ' +
        'A failure of the script (an exception, a limit reached) is a 200 with `status: "error"` and `error.code`; the run itself is refused with 413 when the script is too large, 400 when a limit asked for is over the deployment cap, 429 `too_many_runs` when the caller already has `SANDBOX_MAX_RUNS_PER_USER` runs running or waiting, 503 `sandbox_busy` when the queue is full.',
      body: runBody,
      response: { 200: runSchema, ...problems },
    },
    onRequest: guards.user({ scope: 'sandbox' }),
    handler: async (request) => {
      const p = principal(request);
      return sandbox.run({ userId: p.userId, apiKeyId: p.apiKeyId }, request.body);
    },
  });
}
