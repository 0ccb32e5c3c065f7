import assert from 'node:assert/strict';
import { createUser, type TestUser } from './factories.ts';
import type { TestApp } from './app.ts';

type Answer = Awaited<ReturnType<TestApp['api']>>;

/** What a per-user cap is checked through: making one (named), counting what the user holds, deleting one. */
export interface CapCase {
  /** The 409's code. */
  code: string;
  create(u: TestUser, name: string): Promise<Answer>;
  held(u: TestUser): Promise<number>;
  remove(u: TestUser, created: Answer): Promise<void>;
}

/**
 * With the cap set to 2: a third is a 409 problem with `code` and stores nothing; another user is not held by it;
 * deleting one frees its place, and only that one.
 */
export async function checkCap(t: TestApp, c: CapCase): Promise<void> {
  const u = await createUser(t);
  const other = await createUser(t);
  const first = await c.create(u, 'first');
  assert.equal(first.status, 201, first.text);
  assert.equal((await c.create(u, 'second')).status, 201);
  const refused = await c.create(u, 'third');
  assert.equal(refused.status, 409, refused.text);
  assert.equal(refused.body.code, c.code);
  assert.match(refused.headers.get('content-type') ?? '', /application\/problem\+json/);
  assert.equal(await c.held(u), 2, 'the refused creation stored nothing');
  assert.equal((await c.create(other, 'theirs')).status, 201, 'the cap is per user');
  await c.remove(u, first);
  assert.equal((await c.create(u, 'again')).status, 201);
  assert.equal((await c.create(u, 'over')).status, 409);
}

/** With the cap set to 2: 8 creations at once leave exactly 2 (on PostgreSQL, only a lock makes them take turns). */
export async function checkCapRace(t: TestApp, c: Pick<CapCase, 'create' | 'held'>): Promise<void> {
  const u = await createUser(t);
  const raced = await Promise.all(Array.from({ length: 8 }, (_, i) => c.create(u, `racer ${i}`)));
  assert.deepEqual(raced.map((r) => r.status).sort(), [201, 201, ...Array(6).fill(409)], raced.map((r) => r.text).join('\n'));
  assert.equal(await c.held(u), 2);
}
