import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { principal } from '../../../http/guards.ts';
import { problemSchema } from '../../../http/problem.ts';
import type { App } from '../../../http/types.ts';
import type { RouteContext } from '../../module.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema };
const tags = ['notifications'];

const destinationSchema = z
  .object({
    kind: z.enum(['webhook', 'channel']),
    webhookUrl: z.string().nullable().describe("webhook: the URL's origin and last 4 characters (the URL is a secret, stored encrypted)"),
    channel: z.string().nullable().describe('channel: the Slack member or channel id the bot posts to'),
    createdAt: z.string(),
  })
  .meta({ id: 'SlackDestination' });
const destinationBody = z.union([
  z.object({ webhookUrl: z.string().min(1).max(2000).describe('A Slack incoming webhook URL (https://hooks.slack.com/services/…)') }).strict(),
  z.object({ channel: z.string().min(1).max(30).describe("A member (U…) or channel (C…) id for this deployment's Slack bot; only with SLACK_BOT_TOKEN") }).strict(),
]);

/** Where your Slack notifications go (scope `notifications`). */
export function slackRoutes(app: App, { services, guards }: RouteContext<'notificationChannels'>) {
  const { slack } = services.notificationChannels;
  const onRequest = guards.user({ scope: 'notifications' });
  const me = (request: FastifyRequest) => principal(request).userId;

  app.get('/notifications/slack', {
    schema: { tags, summary: 'Where your Slack notifications go', response: { 200: destinationSchema, ...problems } },
    onRequest,
    handler: async (request) => slack.destination(me(request)),
  });

  app.put('/notifications/slack', {
    schema: {
      tags,
      summary: 'Send your Slack notifications to an incoming webhook, or to a member or channel id',
      description: 'Replaces the earlier destination. A webhook URL that reaches a private address is refused (400 `webhook_url_private`) unless the deployment allows them; `channel` needs the deployment\'s bot token (else 400 `slack_bot_not_configured`).',
      body: destinationBody,
      response: { 200: destinationSchema, ...problems },
    },
    onRequest,
    handler: async (request) => slack.setDestination(me(request), request.body),
  });

  app.delete('/notifications/slack', {
    schema: { tags, summary: 'Stop Slack notifications: forget the destination', response: { 204: z.null(), ...problems } },
    onRequest,
    handler: async (request, reply) => {
      await slack.removeDestination(me(request));
      return reply.status(204).send(null);
    },
  });
}
