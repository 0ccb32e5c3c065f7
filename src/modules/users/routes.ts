import { principal } from '../../http/guards.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import { updateMeBody, userSchema } from './contracts.ts';
import { preferencesPatchSchema, preferencesSchema } from './preferences.ts';
import { toPublicUser } from './service.ts';

const PREFERENCES_DESCRIPTION =
  'Today `defaultModel` picks the model of your chat answers and `timezone` sets when daily and monthly budgets reset; `theme` and `locale` are kept for clients. ' +
  'The `notifications` and `privacy` settings are stored but not used yet: a later release uses them (each field says how).';

export function usersRoutes(app: App, { services, guards }: RouteContext<'users'>) {
  const { users } = services;

  app.get('/users/me', {
    schema: { tags: ['users'], summary: 'The signed-in user', response: { 200: userSchema, 401: problemSchema } },
    onRequest: guards.user({ scope: 'profile:read' }),
    handler: async (request) => toPublicUser(await users.require(principal(request).userId)),
  });

  app.patch('/users/me', {
    schema: { tags: ['users'], summary: 'Update your profile', body: updateMeBody, response: { 200: userSchema, 400: problemSchema, 401: problemSchema } },
    onRequest: guards.user({ scope: 'profile:write' }),
    handler: async (request) => toPublicUser(await users.updateProfile(principal(request).userId, request.body)),
  });

  app.get('/users/me/preferences', {
    schema: { tags: ['users'], summary: 'Your preferences, with defaults filled in', description: PREFERENCES_DESCRIPTION, response: { 200: preferencesSchema, 401: problemSchema, 403: problemSchema } },
    onRequest: guards.user({ scope: 'profile:read' }),
    handler: async (request) => users.preferences(principal(request).userId),
  });

  app.patch('/users/me/preferences', {
    schema: {
      tags: ['users'],
      summary: 'Change some preferences',
      description: `Send only what changes; nested objects (\`notifications\`, \`privacy\`) are merged field by field. ${PREFERENCES_DESCRIPTION}`,
      body: preferencesPatchSchema,
      response: { 200: preferencesSchema, 400: problemSchema, 401: problemSchema, 403: problemSchema },
    },
    onRequest: guards.user({ scope: 'profile:write' }),
    handler: async (request) => users.updatePreferences(principal(request).userId, request.body),
  });
}
