import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { principal } from '../../../http/guards.ts';
import { problemSchema } from '../../../http/problem.ts';
import type { App } from '../../../http/types.ts';
import type { RouteContext } from '../../module.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema, 429: problemSchema, 502: problemSchema };
const tags = ['notifications'];

const phoneSchema = z
  .object({
    phone: z.string().describe('Your number with all but its last 4 digits hidden'),
    verified: z.boolean().describe('Text messages go only to a verified number'),
    verifiedAt: z.string().nullable(),
    codeExpiresAt: z.string().nullable().describe('While a code sent to it can still be entered: until when'),
  })
  .meta({ id: 'SmsPhone' });
const phoneBody = z.object({ phone: z.string().min(1).max(32).describe('E.164: + and 8 to 15 digits, such as +14155550100') }).strict();
const verifyBody = z.object({ code: z.string().regex(/^\d{6}$/, 'the 6 digits of the text message') }).strict();

/**
 * The SMS channel, when the deployment has one: your phone number and its verification (scope
 * `notifications`), and the provider's signed delivery receipts (no sign-in; the signature is the proof).
 */
export async function smsRoutes(app: App, { services, guards }: RouteContext<'notificationChannels'>) {
  const { sms } = services.notificationChannels;
  if (!sms) return;
  const onRequest = guards.user({ scope: 'notifications' });
  const me = (request: FastifyRequest) => principal(request).userId;

  app.get('/notifications/sms/phone', {
    schema: { tags, summary: 'Your phone number for text messages', response: { 200: phoneSchema, ...problems } },
    onRequest,
    handler: async (request) => sms.phone(me(request)),
  });

  app.post('/notifications/sms/phone', {
    schema: {
      tags,
      summary: 'Set your phone number: a 6-digit code is texted to it',
      description: 'The number replaces any earlier one and gets no notifications until verified. The code lasts 10 minutes and allows 5 tries; at most 3 codes per 10 minutes (else 429).',
      body: phoneBody,
      response: { 200: phoneSchema, ...problems },
    },
    onRequest,
    handler: async (request) => sms.startVerification(me(request), request.body.phone),
  });

  app.post('/notifications/sms/phone/verify', {
    schema: { tags, summary: 'Enter the texted code: your number is verified', body: verifyBody, response: { 200: phoneSchema, ...problems } },
    onRequest,
    handler: async (request) => sms.verify(me(request), request.body.code),
  });

  app.delete('/notifications/sms/phone', {
    schema: { tags, summary: 'Remove your phone number', response: { 204: z.null(), ...problems } },
    onRequest,
    handler: async (request, reply) => {
      await sms.removePhone(me(request));
      return reply.status(204).send(null);
    },
  });

  // The provider's status callback: a form body, signed (X-Twilio-Signature) over the URL Parley gave it.
  await app.register(async (plugin) => {
    const scope = plugin as unknown as App;
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))));
    scope.post('/notifications/sms/status', {
      schema: {
        security: [],
        tags,
        summary: "The SMS provider's delivery receipt (Twilio's status callback)",
        body: z.record(z.string(), z.string()),
        response: { 204: z.null(), 403: problemSchema },
      },
      handler: async (request, reply) => {
        const signature = request.headers['x-twilio-signature'];
        await sms.receipt(request.body, typeof signature === 'string' ? signature : undefined);
        return reply.status(204).send(null);
      },
    });
  });
}
