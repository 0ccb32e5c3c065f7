import assert from 'node:assert/strict';
import type { ApiResponse, TestApp } from './app.ts';

/**
 * Follows a sign-in as a browser would, up to the provider's redirect back:
 * Parley's authorize redirect, then the provider's. Returns the callback's
 * path and query on Parley (whose public URL is not where the test server
 * listens) and the cookie the browser was given at the start.
 */
export async function startAtProvider(t: TestApp, provider: string, opts: { redirectTo?: string } = {}) {
  const query = opts.redirectTo === undefined ? '' : `?redirectTo=${encodeURIComponent(opts.redirectTo)}`;
  const start = await t.api('GET', `/v1/auth/oauth/${provider}/authorize${query}`);
  assert.equal(start.status, 302, start.text);
  const atProvider = await fetch(start.headers.get('location')!, { redirect: 'manual' });
  assert.equal(atProvider.status, 302, await atProvider.text());
  const back = new URL(atProvider.headers.get('location')!);
  assert.equal(back.origin, t.deps.config.publicUrl, 'the provider sends the browser back to our public callback URL');
  const cookie = start.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  return { callback: back.pathname + back.search, cookie };
}

/** The callback path and query of a flow (see startAtProvider). */
export async function authorizeAtProvider(t: TestApp, provider: string, opts: { redirectTo?: string } = {}): Promise<string> {
  return (await startAtProvider(t, provider, opts)).callback;
}

/** The whole browser round trip, cookies included: the callback's response. */
export async function signInWith(t: TestApp, provider: string, opts: { redirectTo?: string } = {}): Promise<ApiResponse> {
  const { callback, cookie } = await startAtProvider(t, provider, opts);
  return t.api('GET', callback, { headers: { cookie } });
}
