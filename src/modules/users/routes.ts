import { principal } from '../../http/guards.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App, RouteContext } from '../../http/types.ts';
import { updateMeBody, userSchema } from './contracts.ts';
import { toPublicUser } from './service.ts';

export function usersRoutes(app: App, { services, guards }: RouteContext) {
  const { users } = services;

  app.get('/users/me', {
    schema: { tags: ['users'], summary: 'The signed-in user', response: { 200: userSchema, 401: problemSchema } },
    preHandler: guards.user({ scope: 'profile:read' }),
    handler: async (request) => toPublicUser(await users.require(principal(request).userId)),
  });

  app.patch('/users/me', {
    schema: { tags: ['users'], summary: 'Update your profile', body: updateMeBody, response: { 200: userSchema, 400: problemSchema, 401: problemSchema } },
    preHandler: guards.user({ scope: 'profile:write' }),
    handler: async (request) => toPublicUser(await users.updateProfile(principal(request).userId, request.body)),
  });
}
