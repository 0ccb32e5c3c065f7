import assert from 'node:assert/strict';
import { after, before, beforeEach } from 'node:test';
import { startApp, type Backend, type TestApp } from '../../support/app.ts';
import { startFakeAnthropic, type FakeAnthropic } from '../../support/fake-anthropic.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';
import type { RecordedRequest } from '../../support/fake-upstream.ts';
import { eventually } from '../../support/eventually.ts';
import type { TestUser } from '../../support/factories.ts';
import { readSse } from '../../support/sse.ts';

export interface ChatFixture {
  t: TestApp;
  openai: FakeOpenAI;
  anthropic: FakeAnthropic;
  /** The env the app runs with (the fakes' URLs and keys). */
  env: Record<string, string>;
  /** The same cluster's second instance (same database and Redis prefix, same fakes). */
  second(): Promise<TestApp>;
  close(): Promise<void>;
}

/** An app whose default model is the fake OpenAI's gpt-4o-mini, with the fake Anthropic for fallbacks; no retries. */
export async function startChat(backend: Backend, env: Record<string, string> = {}): Promise<ChatFixture> {
  const openai = await startFakeOpenAI();
  const anthropic = await startFakeAnthropic();
  const fullEnv = { ...openai.env, ...anthropic.env, DEFAULT_MODEL: 'openai:gpt-4o-mini', AI_RETRIES: '0', ...env };
  const t = await startApp({ backend, env: fullEnv });
  const others: TestApp[] = [];
  return {
    t,
    openai,
    anthropic,
    env: fullEnv,
    async second() {
      const other = await startApp({ sharedWith: t, env: fullEnv });
      others.push(other);
      return other;
    },
    async close() {
      for (const o of others) await o.close();
      await t.close();
      await openai.close();
      await anthropic.close();
    },
  };
}

/** A chat fixture for the enclosing describe block: started before it, both fakes reset before each test, closed after. */
export function useChat(backend: Backend, env: Record<string, string> = {}): ChatFixture {
  const fixture = {} as ChatFixture;
  before(async () => {
    Object.assign(fixture, await startChat(backend, env));
  });
  after(() => fixture.close());
  beforeEach(() => {
    fixture.openai.reset();
    fixture.anthropic.reset();
  });
  return fixture;
}

/** Instances share a stream buffer only through Redis, and a database only on PostgreSQL. */
export const clusterSkip = (backend: Backend): string | false =>
  backend === 'postgres' && process.env.REDIS_URL ? false : 'needs PostgreSQL and Redis (DATABASE_URL and REDIS_URL)';

/** A request body asking to name a conversation (chat's title job), in either provider's format. */
export const isTitleRequest = (body: any) => JSON.stringify([body?.system, body?.messages]).includes('Write a title');

/** Upstream requests for answers, leaving out title generation. */
export const answerRequests = (fake: { requests: RecordedRequest[] }) => fake.requests.filter((r) => r.method === 'POST' && !isTitleRequest(r.body));

/** The messages an upstream request carried, as role/content pairs (OpenAI format). */
export const sent = (r: RecordedRequest) => r.body.messages.map((m: { role: string; content: unknown }) => ({ role: m.role, content: typeof m.content === 'string' ? m.content : JSON.stringify(m.content) }));

/** Calls on the chat API as one user. */
export function chatAs(t: TestApp, u: TestUser) {
  const auth = { authorization: `Bearer ${u.accessToken}` };
  return {
    async conversation(body: Record<string, unknown> = { title: 'Test' }): Promise<string> {
      const res = await t.api('POST', '/v1/conversations', { token: u.accessToken, body });
      assert.equal(res.status, 201, res.text);
      return res.body.id;
    },
    send: (conversationId: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
      t.api('POST', `/v1/conversations/${conversationId}/messages`, { token: u.accessToken, body, headers }),
    /** POSTs with Accept: text/event-stream and returns the open response. */
    sendSse: (conversationId: string, body: Record<string, unknown>, opts: { headers?: Record<string, string>; signal?: AbortSignal; app?: TestApp } = {}) =>
      fetch(`${(opts.app ?? t).url}/v1/conversations/${conversationId}/messages`, {
        method: 'POST',
        headers: { ...auth, accept: 'text/event-stream', 'content-type': 'application/json', ...opts.headers },
        body: JSON.stringify(body),
        signal: opts.signal,
      }),
    regenerate: (conversationId: string, messageId: string, body?: Record<string, unknown>, headers: Record<string, string> = {}) =>
      t.api('POST', `/v1/conversations/${conversationId}/messages/${messageId}/regenerate`, { token: u.accessToken, body, headers }),
    /** GET …/stream; `query` like `?offset=3`. */
    stream: (conversationId: string, messageId: string, opts: { query?: string; headers?: Record<string, string>; signal?: AbortSignal; app?: TestApp } = {}) =>
      fetch(`${(opts.app ?? t).url}/v1/conversations/${conversationId}/messages/${messageId}/stream${opts.query ?? ''}`, {
        headers: { ...auth, accept: 'text/event-stream', ...opts.headers },
        signal: opts.signal,
      }),
    cancel: (conversationId: string, messageId: string, app: TestApp = t) => app.api('POST', `/v1/conversations/${conversationId}/messages/${messageId}/cancel`, { token: u.accessToken }),
    message: async (conversationId: string, messageId: string, app: TestApp = t) => {
      const res = await app.api('GET', `/v1/conversations/${conversationId}/messages/${messageId}`, { token: u.accessToken });
      assert.equal(res.status, 200, res.text);
      return res.body;
    },
    branch: async (conversationId: string) => (await t.api('GET', `/v1/conversations/${conversationId}/messages`, { token: u.accessToken })).body,
  };
}

/** Polls until `check` returns a value (not undefined); fails after `ms`. */
export function waitFor<T>(check: () => Promise<T | undefined>, what = 'condition', ms = 10_000): Promise<T> {
  return eventually(async () => {
    const v = await check();
    if (v === undefined) throw new Error(`${what}: not met within ${ms} ms`);
    return v;
  }, ms);
}

/**
 * An answer the fake holds after its first words, still streaming once this resolves; `stop()` cancels it and waits
 * until it is stored as cancelled.
 */
export async function heldAnswer(f: ChatFixture, chat: ReturnType<typeof chatAs>, conversationId: string): Promise<{ assistantMessageId: string; stop(): Promise<void> }> {
  f.openai.script({ chunks: ['Half ', 'an answer'], holdAfter: 1 });
  const res = await chat.sendSse(conversationId, { content: 'Go on' });
  let ids: { assistantMessageId: string } | undefined;
  for await (const e of readSse(res)) {
    if (e.event === 'message.created') ids = e.data;
    if (e.event === 'delta') break;
  }
  const { assistantMessageId } = ids!;
  return {
    assistantMessageId,
    async stop() {
      assert.equal((await chat.cancel(conversationId, assistantMessageId)).status, 200);
      await waitFor(async () => ((await chat.message(conversationId, assistantMessageId)).status === 'cancelled' ? true : undefined), 'the answer is cancelled');
    },
  };
}
