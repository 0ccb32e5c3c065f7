import { randomBytes } from 'node:crypto';
import type { TestApp } from './app.ts';

export interface TestUser {
  id: string;
  email: string;
  password: string;
  accessToken: string;
  refreshToken: string;
  sessionId: string;
}

let counter = 0;
export const uniqueEmail = (label = 'user') => `${label}-${Date.now()}-${++counter}-${randomBytes(3).toString('hex')}@example.com`;

/** Registers a user through the API; with `admin`, promotes it through the users service. */
export async function createUser(t: TestApp, opts: { email?: string; password?: string; admin?: boolean; name?: string } = {}): Promise<TestUser> {
  const email = opts.email ?? uniqueEmail();
  const password = opts.password ?? 'correct horse battery staple';
  const res = await t.api('POST', '/v1/auth/register', { body: { email, password, name: opts.name } });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${res.text}`);
  let body = res.body;
  if (opts.admin) {
    await t.services.users.setRole(body.user.id, 'admin');
    const login = await t.api('POST', '/v1/auth/login', { body: { email, password } });
    body = login.body;
  }
  return { id: body.user.id, email, password, accessToken: body.accessToken, refreshToken: body.refreshToken, sessionId: body.sessionId };
}
