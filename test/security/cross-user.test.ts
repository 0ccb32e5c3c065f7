import { createECDH, randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../support/app.ts';
import { eventually } from '../support/eventually.ts';
import { createUser, type TestUser } from '../support/factories.ts';

/**
 * User B tries every endpoint on user A's things. Each module adds rows here
 * for its own routes: B must get 404 (or 403) every time, and A's data must be
 * exactly as it was afterwards.
 */
interface Chat {
  projectId: string;
  promptId: string;
  conversationId: string;
  userMessageId: string;
  assistantMessageId: string;
}

/** A's document, with a comment thread, an attachment and a share link. */
interface Docs {
  documentId: string;
  commentId: string;
  attachmentId: string;
  linkId: string;
}

interface Fixture {
  a: TestUser & Chat & { apiKey: string; apiKeyId: string; secondSessionId: string; budgetId: string; jobId: string; notificationId: string; pushSubscriptionId: string } & Docs;
  b: TestUser & Chat & { apiKey: string; notificationId: string };
  /** A ban an admin set (on an address neither user calls from). */
  banId: string;
}

interface Case {
  name: string;
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  path: (f: Fixture) => string;
  body?: (f: Fixture) => unknown;
  /** B's credential: a session (default) or an API key with no scope limits. */
  as?: 'session' | 'api_key';
  status: 403 | 404;
  code: string;
}

const ADMIN_ROUTES: Array<Pick<Case, 'name' | 'method' | 'path' | 'body'>> = [
  { name: 'list users', method: 'GET', path: () => '/v1/admin/users' },
  { name: "read A's account", method: 'GET', path: (f) => `/v1/admin/users/${f.a.id}` },
  { name: 'disable A', method: 'POST', path: (f) => `/v1/admin/users/${f.a.id}/disable` },
  { name: 'enable A', method: 'POST', path: (f) => `/v1/admin/users/${f.a.id}/enable` },
  { name: 'make A an admin', method: 'PATCH', path: (f) => `/v1/admin/users/${f.a.id}`, body: () => ({ role: 'admin' }) },
  { name: 'make themselves an admin', method: 'PATCH', path: (f) => `/v1/admin/users/${f.b.id}`, body: () => ({ role: 'admin' }) },
  { name: "read A's audit trail", method: 'GET', path: (f) => `/v1/admin/audit?userId=${f.a.id}` },
  { name: "read A's mail", method: 'GET', path: (f) => `/v1/admin/outbox?to=${encodeURIComponent(f.a.email)}` },
  { name: 'list bans', method: 'GET', path: () => '/v1/admin/bans' },
  { name: 'ban A', method: 'POST', path: () => '/v1/admin/bans', body: (f) => ({ kind: 'user', subject: f.a.id, seconds: 600, reason: 'pwned' }) },
  { name: "ban A's key", method: 'POST', path: () => '/v1/admin/bans', body: (f) => ({ kind: 'api_key', subject: f.a.apiKeyId, seconds: 600, reason: 'pwned' }) },
  { name: 'lift a ban', method: 'DELETE', path: (f) => `/v1/admin/bans/${f.banId}` },
  { name: "read A's usage", method: 'GET', path: (f) => `/v1/admin/usage?userId=${f.a.id}&groupBy=user` },
  { name: "export A's usage", method: 'GET', path: (f) => `/v1/admin/usage/export?userId=${f.a.id}` },
  { name: "read A's API requests", method: 'GET', path: (f) => `/v1/admin/usage/requests?userId=${f.a.id}&groupBy=user,route` },
  { name: "read everyone's API requests", method: 'GET', path: () => '/v1/admin/usage/requests?groupBy=user' },
  { name: "read A's storage", method: 'GET', path: (f) => `/v1/admin/usage/storage?userId=${f.a.id}` },
  { name: 'list what users store', method: 'GET', path: () => '/v1/admin/usage/storage' },
  { name: "list A's budgets", method: 'GET', path: (f) => `/v1/admin/budgets?userId=${f.a.id}` },
  { name: 'lift their own budget', method: 'PUT', path: () => '/v1/admin/budgets', body: (f) => ({ userId: f.b.id, period: 'day', limitUsd: 1_000_000 }) },
  { name: 'set a default budget', method: 'PUT', path: () => '/v1/admin/budgets', body: () => ({ userId: null, period: 'day', limitUsd: 1 }) },
  { name: "remove A's key budget", method: 'DELETE', path: (f) => `/v1/admin/budgets/${f.a.budgetId}` },
  { name: 'list abuse flags', method: 'GET', path: (f) => `/v1/admin/abuse-flags?userId=${f.a.id}` },
  { name: 'run the abuse check', method: 'POST', path: () => '/v1/admin/abuse-flags/check' },
  { name: 'clear an abuse flag', method: 'POST', path: (f) => `/v1/admin/abuse-flags/${f.a.budgetId}/clear` },
  { name: 'list jobs', method: 'GET', path: () => '/v1/admin/jobs' },
  { name: "read A's job as admin", method: 'GET', path: (f) => `/v1/admin/jobs/${f.a.jobId}` },
  { name: "retry A's job", method: 'POST', path: (f) => `/v1/admin/jobs/${f.a.jobId}/retry` },
  { name: "discard A's job", method: 'DELETE', path: (f) => `/v1/admin/jobs/${f.a.jobId}` },
  { name: 'list schedules', method: 'GET', path: () => '/v1/admin/schedules' },
  { name: 'read dead-lettered events', method: 'GET', path: () => '/v1/admin/events/dead-letters' },
];

/** A's projects, prompts, conversations and messages, reached directly or through B's own ones. */
const CHAT_ROUTES: Array<Omit<Case, 'as'>> = [
  // projects
  { name: "read A's project", method: 'GET', path: (f) => `/v1/projects/${f.a.projectId}`, status: 404, code: 'project_not_found' },
  { name: "rename A's project", method: 'PATCH', path: (f) => `/v1/projects/${f.a.projectId}`, body: () => ({ name: 'pwned' }), status: 404, code: 'project_not_found' },
  { name: "delete A's project", method: 'DELETE', path: (f) => `/v1/projects/${f.a.projectId}`, status: 404, code: 'project_not_found' },
  { name: "list A's prompts", method: 'GET', path: (f) => `/v1/projects/${f.a.projectId}/prompts`, status: 404, code: 'project_not_found' },
  { name: "add a prompt to A's project", method: 'POST', path: (f) => `/v1/projects/${f.a.projectId}/prompts`, body: () => ({ name: 'evil', content: 'x', activate: true }), status: 404, code: 'project_not_found' },
  { name: "read A's prompt", method: 'GET', path: (f) => `/v1/projects/${f.a.projectId}/prompts/${f.a.promptId}`, status: 404, code: 'project_not_found' },
  { name: "rewrite A's prompt", method: 'PATCH', path: (f) => `/v1/projects/${f.a.projectId}/prompts/${f.a.promptId}`, body: () => ({ content: 'leak' }), status: 404, code: 'project_not_found' },
  { name: "delete A's prompt", method: 'DELETE', path: (f) => `/v1/projects/${f.a.projectId}/prompts/${f.a.promptId}`, status: 404, code: 'project_not_found' },
  { name: "activate A's prompt", method: 'POST', path: (f) => `/v1/projects/${f.a.projectId}/prompts/${f.a.promptId}/activate`, status: 404, code: 'project_not_found' },
  { name: "read A's prompt through B's project", method: 'GET', path: (f) => `/v1/projects/${f.b.projectId}/prompts/${f.a.promptId}`, status: 404, code: 'prompt_not_found' },
  { name: "rewrite A's prompt through B's project", method: 'PATCH', path: (f) => `/v1/projects/${f.b.projectId}/prompts/${f.a.promptId}`, body: () => ({ content: 'leak' }), status: 404, code: 'prompt_not_found' },
  { name: "delete A's prompt through B's project", method: 'DELETE', path: (f) => `/v1/projects/${f.b.projectId}/prompts/${f.a.promptId}`, status: 404, code: 'prompt_not_found' },
  { name: "activate A's prompt in B's project", method: 'POST', path: (f) => `/v1/projects/${f.b.projectId}/prompts/${f.a.promptId}/activate`, status: 404, code: 'prompt_not_found' },
  { name: "make A's prompt B's active prompt", method: 'PATCH', path: (f) => `/v1/projects/${f.b.projectId}`, body: (f) => ({ activePromptId: f.a.promptId }), status: 404, code: 'prompt_not_found' },
  { name: "read A's project safety rules", method: 'GET', path: (f) => `/v1/projects/${f.a.projectId}/safety`, status: 404, code: 'project_not_found' },
  { name: "replace A's project safety rules", method: 'PUT', path: (f) => `/v1/projects/${f.a.projectId}/safety`, body: () => ({ blockedTerms: ['pwned'] }), status: 404, code: 'project_not_found' },
  // conversations
  { name: "read A's conversation", method: 'GET', path: (f) => `/v1/conversations/${f.a.conversationId}`, status: 404, code: 'conversation_not_found' },
  { name: "rename A's conversation", method: 'PATCH', path: (f) => `/v1/conversations/${f.a.conversationId}`, body: () => ({ title: 'pwned', archived: true }), status: 404, code: 'conversation_not_found' },
  { name: "delete A's conversation", method: 'DELETE', path: (f) => `/v1/conversations/${f.a.conversationId}`, status: 404, code: 'conversation_not_found' },
  { name: "start a conversation in A's project", method: 'POST', path: () => '/v1/conversations', body: (f) => ({ projectId: f.a.projectId }), status: 404, code: 'project_not_found' },
  { name: "move B's conversation into A's project", method: 'PATCH', path: (f) => `/v1/conversations/${f.b.conversationId}`, body: (f) => ({ projectId: f.a.projectId }), status: 404, code: 'project_not_found' },
  // messages
  { name: "read A's messages", method: 'GET', path: (f) => `/v1/conversations/${f.a.conversationId}/messages`, status: 404, code: 'conversation_not_found' },
  { name: "read A's messages by leaf", method: 'GET', path: (f) => `/v1/conversations/${f.a.conversationId}/messages?leafId=${f.a.assistantMessageId}`, status: 404, code: 'conversation_not_found' },
  { name: "read A's branch through B's conversation", method: 'GET', path: (f) => `/v1/conversations/${f.b.conversationId}/messages?leafId=${f.a.assistantMessageId}`, status: 404, code: 'message_not_found' },
  { name: "read A's message", method: 'GET', path: (f) => `/v1/conversations/${f.a.conversationId}/messages/${f.a.userMessageId}`, status: 404, code: 'conversation_not_found' },
  { name: "read A's message through B's conversation", method: 'GET', path: (f) => `/v1/conversations/${f.b.conversationId}/messages/${f.a.userMessageId}`, status: 404, code: 'message_not_found' },
  { name: "switch A's branch", method: 'POST', path: (f) => `/v1/conversations/${f.a.conversationId}/messages/${f.a.userMessageId}/select`, status: 404, code: 'conversation_not_found' },
  { name: "point B's conversation at A's message", method: 'POST', path: (f) => `/v1/conversations/${f.b.conversationId}/messages/${f.a.assistantMessageId}/select`, status: 404, code: 'message_not_found' },
  // generation
  { name: "post to A's conversation", method: 'POST', path: (f) => `/v1/conversations/${f.a.conversationId}/messages`, body: () => ({ content: 'hi' }), status: 404, code: 'conversation_not_found' },
  { name: "post in B's conversation under A's message", method: 'POST', path: (f) => `/v1/conversations/${f.b.conversationId}/messages`, body: (f) => ({ content: 'hi', parentId: f.a.assistantMessageId }), status: 404, code: 'message_not_found' },
  { name: "regenerate A's answer", method: 'POST', path: (f) => `/v1/conversations/${f.a.conversationId}/messages/${f.a.assistantMessageId}/regenerate`, status: 404, code: 'conversation_not_found' },
  { name: "regenerate A's answer through B's conversation", method: 'POST', path: (f) => `/v1/conversations/${f.b.conversationId}/messages/${f.a.assistantMessageId}/regenerate`, status: 404, code: 'message_not_found' },
  { name: "stream A's answer", method: 'GET', path: (f) => `/v1/conversations/${f.a.conversationId}/messages/${f.a.assistantMessageId}/stream`, status: 404, code: 'conversation_not_found' },
  { name: "stream A's answer through B's conversation", method: 'GET', path: (f) => `/v1/conversations/${f.b.conversationId}/messages/${f.a.assistantMessageId}/stream?offset=0`, status: 404, code: 'message_not_found' },
  { name: "cancel A's answer", method: 'POST', path: (f) => `/v1/conversations/${f.a.conversationId}/messages/${f.a.assistantMessageId}/cancel`, status: 404, code: 'conversation_not_found' },
  { name: "cancel A's answer through B's conversation", method: 'POST', path: (f) => `/v1/conversations/${f.b.conversationId}/messages/${f.a.assistantMessageId}/cancel`, status: 404, code: 'message_not_found' },
  // feedback
  { name: "rate A's message", method: 'PUT', path: (f) => `/v1/conversations/${f.a.conversationId}/messages/${f.a.assistantMessageId}/feedback`, body: () => ({ rating: 'down' }), status: 404, code: 'conversation_not_found' },
  { name: "rate A's message through B's conversation", method: 'PUT', path: (f) => `/v1/conversations/${f.b.conversationId}/messages/${f.a.assistantMessageId}/feedback`, body: () => ({ rating: 'down' }), status: 404, code: 'message_not_found' },
  { name: "remove A's rating", method: 'DELETE', path: (f) => `/v1/conversations/${f.a.conversationId}/messages/${f.a.assistantMessageId}/feedback`, status: 404, code: 'conversation_not_found' },
  { name: "remove A's rating through B's conversation", method: 'DELETE', path: (f) => `/v1/conversations/${f.b.conversationId}/messages/${f.a.assistantMessageId}/feedback`, status: 404, code: 'message_not_found' },
];

const DOC = (f: Fixture) => `/v1/documents/${f.a.documentId}`;
const notFound = { status: 404 as const, code: 'document_not_found' };

/** A's document and everything on it. */
const DOCUMENT_ROUTES: Array<Omit<Case, 'as'>> = [
  { name: "read A's document", method: 'GET', path: DOC, ...notFound },
  { name: "save A's document", method: 'PUT', path: DOC, body: () => ({ body: 'pwned', baseVersion: 1 }), ...notFound },
  { name: "tag or archive A's document", method: 'PATCH', path: DOC, body: () => ({ archived: true, tags: ['pwned'] }), ...notFound },
  { name: "favorite A's document", method: 'PUT', path: (f) => `${DOC(f)}/favorite`, body: () => ({ favorite: true }), ...notFound },
  { name: "delete A's document", method: 'DELETE', path: DOC, ...notFound },
  { name: "list A's versions", method: 'GET', path: (f) => `${DOC(f)}/versions`, ...notFound },
  { name: "read A's version", method: 'GET', path: (f) => `${DOC(f)}/versions/1`, ...notFound },
  { name: "diff A's versions", method: 'GET', path: (f) => `${DOC(f)}/diff?from=1&to=1`, ...notFound },
  { name: "restore A's version", method: 'POST', path: (f) => `${DOC(f)}/versions/1/restore`, body: () => ({}), ...notFound },
  { name: "start from A's document as a template", method: 'POST', path: () => '/v1/documents', body: (f) => ({ templateId: f.a.documentId }), ...notFound },
  { name: "list A's attachments", method: 'GET', path: (f) => `${DOC(f)}/attachments`, ...notFound },
  { name: "remove A's attachment", method: 'DELETE', path: (f) => `${DOC(f)}/attachments/${f.a.attachmentId}`, ...notFound },
  { name: "list A's shares", method: 'GET', path: (f) => `${DOC(f)}/shares`, ...notFound },
  { name: "share A's document with B", method: 'POST', path: (f) => `${DOC(f)}/shares`, body: (f) => ({ email: f.b.email, role: 'editor' }), ...notFound },
  { name: "list A's links", method: 'GET', path: (f) => `${DOC(f)}/links`, ...notFound },
  { name: "make a link to A's document", method: 'POST', path: (f) => `${DOC(f)}/links`, body: () => ({}), ...notFound },
  { name: "revoke A's link", method: 'DELETE', path: (f) => `${DOC(f)}/links/${f.a.linkId}`, ...notFound },
  { name: "read A's comments", method: 'GET', path: (f) => `${DOC(f)}/comments`, ...notFound },
  { name: "comment on A's document", method: 'POST', path: (f) => `${DOC(f)}/comments`, body: () => ({ body: 'hi', quote: 'quokkadoc' }), ...notFound },
  { name: "edit A's comment", method: 'PATCH', path: (f) => `${DOC(f)}/comments/${f.a.commentId}`, body: () => ({ body: 'pwned' }), ...notFound },
  { name: "delete A's comment", method: 'DELETE', path: (f) => `${DOC(f)}/comments/${f.a.commentId}`, ...notFound },
  { name: "resolve A's thread", method: 'POST', path: (f) => `${DOC(f)}/comments/${f.a.commentId}/resolve`, ...notFound },
  { name: "see who is in A's document", method: 'GET', path: (f) => `${DOC(f)}/presence`, ...notFound },
  { name: "announce presence in A's document", method: 'POST', path: (f) => `${DOC(f)}/presence`, body: () => ({ state: 'viewing' }), ...notFound },
];

const NOTE = (f: Fixture) => `/v1/notifications/${f.a.notificationId}`;
const noteNotFound = { status: 404 as const, code: 'notification_not_found' };

/** A's notification, and sending one to A. */
const NOTIFICATION_ROUTES: Array<Omit<Case, 'as'>> = [
  { name: "read A's notification", method: 'GET', path: NOTE, ...noteNotFound },
  { name: "mark A's notification read", method: 'POST', path: (f) => `${NOTE(f)}/read`, ...noteNotFound },
  { name: "delete A's notification", method: 'DELETE', path: NOTE, ...noteNotFound },
  { name: 'send A a notification', method: 'POST', path: () => '/v1/notifications', body: (f) => ({ userId: f.a.id, category: 'system.message', title: 'pwned' }), status: 403, code: 'admin_required' },
  { name: "delete A's push subscription", method: 'DELETE', path: (f) => `/v1/notifications/push/subscriptions/${f.a.pushSubscriptionId}`, status: 404, code: 'push_subscription_not_found' },
];

const CASES: Case[] = [
  // auth
  { name: "revoke A's current session", method: 'DELETE', path: (f) => `/v1/auth/sessions/${f.a.sessionId}`, status: 404, code: 'session_not_found' },
  { name: "revoke A's other session", method: 'DELETE', path: (f) => `/v1/auth/sessions/${f.a.secondSessionId}`, status: 404, code: 'session_not_found' },
  // api-keys
  { name: "read A's API key", method: 'GET', path: (f) => `/v1/api-keys/${f.a.apiKeyId}`, status: 404, code: 'api_key_not_found' },
  { name: "delete A's API key", method: 'DELETE', path: (f) => `/v1/api-keys/${f.a.apiKeyId}`, status: 404, code: 'api_key_not_found' },
  { name: "delete A's API key with a key", method: 'DELETE', path: (f) => `/v1/api-keys/${f.a.apiKeyId}`, as: 'api_key', status: 403, code: 'api_key_not_allowed' },
  // budgets
  { name: "cap A's API key", method: 'PUT', path: () => '/v1/budgets', body: (f) => ({ scope: 'api_key', subjectId: f.a.apiKeyId, period: 'day', limitUsd: 1 }), status: 404, code: 'api_key_not_found' },
  { name: "cap A's project", method: 'PUT', path: () => '/v1/budgets', body: (f) => ({ scope: 'project', subjectId: f.a.projectId, period: 'day', limitUsd: 1 }), status: 404, code: 'project_not_found' },
  { name: "remove A's key budget", method: 'DELETE', path: (f) => `/v1/budgets/${f.a.budgetId}`, status: 404, code: 'budget_not_found' },
  // jobs
  { name: "read A's job", method: 'GET', path: (f) => `/v1/jobs/${f.a.jobId}`, status: 404, code: 'job_not_found' },
  { name: "read A's job with a key", method: 'GET', path: (f) => `/v1/jobs/${f.a.jobId}`, as: 'api_key', status: 404, code: 'job_not_found' },
  { name: "cap A's API key with a key", method: 'PUT', path: () => '/v1/budgets', body: (f) => ({ scope: 'api_key', subjectId: f.a.apiKeyId, period: 'day', limitUsd: 1 }), as: 'api_key', status: 403, code: 'api_key_not_allowed' },
  // admin
  ...ADMIN_ROUTES.map((r): Case => ({ ...r, name: `admin: ${r.name}`, status: 403, code: 'admin_required' })),
  ...ADMIN_ROUTES.map((r): Case => ({ ...r, name: `admin with a key: ${r.name}`, as: 'api_key', status: 403, code: 'api_key_not_allowed' })),
  // projects, conversations, messages, feedback: the same answer with a session or a key
  ...CHAT_ROUTES,
  ...CHAT_ROUTES.map((r): Case => ({ ...r, name: `${r.name} with a key`, as: 'api_key' })),
  ...DOCUMENT_ROUTES,
  ...DOCUMENT_ROUTES.map((r): Case => ({ ...r, name: `${r.name} with a key`, as: 'api_key' })),
  ...NOTIFICATION_ROUTES,
  ...NOTIFICATION_ROUTES.map((r): Case => ({ ...r, name: `${r.name} with a key`, as: 'api_key' })),
];

/** Lists B can read: none of A's ids may appear in them. */
const LIST_CASES: Array<{ name: string; path: string; idsOfA: (f: Fixture) => string[] }> = [
  { name: 'sessions', path: '/v1/auth/sessions', idsOfA: (f) => [f.a.sessionId, f.a.secondSessionId] },
  { name: 'API keys', path: '/v1/api-keys', idsOfA: (f) => [f.a.apiKeyId] },
  { name: 'projects', path: '/v1/projects', idsOfA: (f) => [f.a.projectId] },
  { name: 'conversations', path: '/v1/conversations', idsOfA: (f) => [f.a.conversationId] },
  { name: 'usage', path: '/v1/usage?groupBy=day,model,project,api_key', idsOfA: (f) => [f.a.apiKeyId, f.a.projectId, f.a.id] },
  { name: 'budgets and limits', path: '/v1/usage/limits', idsOfA: (f) => [f.a.budgetId, f.a.apiKeyId, f.a.id] },
  { name: 'API requests', path: '/v1/usage/requests?groupBy=day,route', idsOfA: (f) => [f.a.id, f.a.conversationId, f.a.projectId] },
  { name: 'documents', path: '/v1/documents?limit=100', idsOfA: (f) => [f.a.documentId] },
  { name: 'recent documents', path: '/v1/documents/recent', idsOfA: (f) => [f.a.documentId] },
  { name: 'notifications', path: '/v1/notifications', idsOfA: (f) => [f.a.notificationId] },
  { name: 'push subscriptions', path: '/v1/notifications/push/subscriptions', idsOfA: (f) => [f.a.pushSubscriptionId] },
];

for (const backend of backends()) {
  describe(`cross-user access [${backend}]`, () => {
    let t: TestApp;
    let f: Fixture;

    /** Everything of A's that B's attempts could change, read as A. */
    async function snapshotOfA() {
      const get = async (path: string) => {
        const res = await t.api('GET', path, { token: f.a.accessToken });
        assert.equal(res.status, 200, `${path} as A: ${res.text}`);
        return res.body;
      };
      return {
        me: await get('/v1/users/me'),
        preferences: await get('/v1/users/me/preferences'),
        sessions: (await get('/v1/auth/sessions')).data.map((s: { id: string }) => s.id).sort(),
        apiKeys: (await get('/v1/api-keys')).data.map((k: { id: string; name: string; scopes: string[] }) => [k.id, k.name, k.scopes]),
        projects: (await get('/v1/projects')).data,
        prompts: (await get(`/v1/projects/${f.a.projectId}/prompts`)).data,
        safety: await get(`/v1/projects/${f.a.projectId}/safety`),
        conversations: (await get('/v1/conversations')).data,
        archived: (await get('/v1/conversations?archived=true')).data,
        messages: await get(`/v1/conversations/${f.a.conversationId}/messages`),
        usage: await get('/v1/usage?groupBy=api_key'),
        limits: (await get('/v1/usage/limits')).data,
        storage: await get('/v1/usage/storage'),
        job: await get(`/v1/jobs/${f.a.jobId}`),
        document: await get(`/v1/documents/${f.a.documentId}`).then(({ lastViewedAt: _, ...d }) => d),
        documentVersions: (await get(`/v1/documents/${f.a.documentId}/versions`)).data,
        documentComments: (await get(`/v1/documents/${f.a.documentId}/comments`)).data,
        documentAttachments: (await get(`/v1/documents/${f.a.documentId}/attachments`)).data,
        documentShares: (await get(`/v1/documents/${f.a.documentId}/shares`)).data,
        documentLinks: (await get(`/v1/documents/${f.a.documentId}/links`)).data,
        notifications: (await get('/v1/notifications')).data,
        unreadNotifications: await get('/v1/notifications/unread-count'),
        notificationPreferences: await get('/v1/notifications/preferences'),
        pushSubscriptions: (await get('/v1/notifications/push/subscriptions')).data,
      };
    }

    /** A project with a prompt, and a conversation in it holding a rated question and answer. */
    async function chatOf(u: TestUser, who: string): Promise<Chat> {
      const project = await t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: `${who}'s agent`, systemPrompt: `${who}'s secret instructions` } });
      assert.equal(project.status, 201, project.text);
      const conversation = await t.api('POST', '/v1/conversations', { token: u.accessToken, body: { title: `${who} quokkaplans`, projectId: project.body.id } });
      const m = t.services.messages;
      const question = await m.appendUserMessage(u.id, conversation.body.id, { content: `${who}'s private quokkaword` });
      const placeholder = await m.createAssistantPlaceholder(conversation.body.id, { parentId: question.id });
      await m.completeAssistant(placeholder.id, { text: `Noted, ${who}: quokkaword`, provider: 'openai', model: 'gpt-4o-mini', tokensIn: 3, tokensOut: 4, costMicros: 10, latencyMs: 5, ttftMs: 1, finishReason: 'stop' });
      const rated = await t.api('PUT', `/v1/conversations/${conversation.body.id}/messages/${placeholder.id}/feedback`, { token: u.accessToken, body: { rating: 'up' } });
      assert.equal(rated.status, 200, rated.text);
      return {
        projectId: project.body.id,
        promptId: project.body.activePromptId,
        conversationId: conversation.body.id,
        userMessageId: question.id,
        assistantMessageId: placeholder.id,
      };
    }

    /** A document with a thread on it, an attached file and a share link. */
    async function documentsOf(u: TestUser): Promise<Docs> {
      const doc = await t.api('POST', '/v1/documents', { token: u.accessToken, body: { title: 'quokkadoc', body: 'The quokkadoc secret.' } });
      assert.equal(doc.status, 201, doc.text);
      const comment = await t.api('POST', `/v1/documents/${doc.body.id}/comments`, { token: u.accessToken, body: { body: 'mine', quote: 'secret' } });
      const form = new FormData();
      form.append('file', new Blob(['quokka notes'], { type: 'text/plain' }), 'notes.txt');
      const file = await fetch(`${t.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${u.accessToken}` }, body: form });
      const attachment = await t.api('POST', `/v1/documents/${doc.body.id}/attachments`, { token: u.accessToken, body: { fileId: ((await file.json()) as { id: string }).id } });
      const link = await t.api('POST', `/v1/documents/${doc.body.id}/links`, { token: u.accessToken, body: { role: 'commenter' } });
      await t.api('GET', `/v1/documents/${doc.body.id}`, { token: u.accessToken });
      return { documentId: doc.body.id, commentId: comment.body.id, attachmentId: attachment.body.id, linkId: link.body.id };
    }

    before(async () => {
      t = await startApp({ backend });
      const a = await createUser(t, { name: 'Alice' });
      const b = await createUser(t, { name: 'Bob' });
      const aKey = await t.api('POST', '/v1/api-keys', { token: a.accessToken, body: { name: 'alice key' } });
      const bKey = await t.api('POST', '/v1/api-keys', { token: b.accessToken, body: { name: 'bob key' } });
      const second = await t.api('POST', '/v1/auth/login', { body: { email: a.email, password: a.password } });
      assert.equal(second.status, 200, second.text);
      await t.api('PATCH', '/v1/users/me/preferences', { token: a.accessToken, body: { theme: 'dark' } });
      await t.deps.mailer.send({ to: a.email, subject: 'for Alice', text: 'private' });
      const aBudget = await t.api('PUT', '/v1/budgets', { token: a.accessToken, body: { scope: 'api_key', subjectId: aKey.body.id, period: 'month', limitUsd: '5' } });
      assert.equal(aBudget.status, 200, aBudget.text);
      // Some of A's usage, through A's key, in A's project.
      const chatA = await chatOf(a, 'Alice');
      t.services.usage.recorder.record({ userId: a.id, apiKeyId: aKey.body.id, projectId: chatA.projectId, source: 'gateway', provider: 'openai', model: 'gpt-4o-mini', inputTokens: 7, outputTokens: 7, costMicros: 5, latencyMs: 1, status: 'ok' });
      const chatB = await chatOf(b, 'Bob');
      t.services.usage.recorder.record({ userId: b.id, source: 'gateway', provider: 'openai', model: 'gpt-4o-mini', inputTokens: 1, outputTokens: 1, costMicros: 1, latencyMs: 1, status: 'ok' });
      await t.services.usage.recorder.flush();
      const bBudget = await t.api('PUT', '/v1/budgets', { token: b.accessToken, body: { scope: 'project', subjectId: chatB.projectId, period: 'day', limitTokens: 1000 } });
      assert.equal(bBudget.status, 200, bBudget.text);
      const docsA = await documentsOf(a);
      await documentsOf(b);
      const noteOf = async (u: TestUser) => (await t.services.notifications.send({ userId: u.id, category: 'system.message', title: 'quokkanote' })).id;
      const notificationId = await noteOf(a);
      // After the notifications, so nothing is ever pushed to them (a documentation-range address, public to the check).
      const subscribe = async (u: TestUser, who: string) => {
        const keys = { p256dh: createECDH('prime256v1').generateKeys('base64url'), auth: randomBytes(16).toString('base64url') };
        const res = await t.api('POST', '/v1/notifications/push/subscriptions', { token: u.accessToken, body: { endpoint: `https://192.0.2.10/push/quokkapush-${who}`, keys, label: `${who}'s phone` } });
        assert.equal(res.status, 201, res.text);
        return res.body.id as string;
      };
      const bNotificationId = await noteOf(b);
      const pushSubscriptionId = await subscribe(a, 'alice');
      await subscribe(b, 'bob');
      // Their emails sent and metered before A's data is read, so the usage figures do not move under the test.
      for (const id of [notificationId, bNotificationId]) await eventually(async () => assert.equal((await t.services.notifications.view(id)).channels.email?.status, 'sent'), 10_000);
      await t.services.usage.recorder.flush();
      f = {
        // A job of A's on a queue no worker handles here: it waits, untouched, whatever B tries.
        a: { ...a, ...chatA, apiKey: aKey.body.key, apiKeyId: aKey.body.id, secondSessionId: second.body.sessionId, budgetId: aBudget.body.id, jobId: (await t.services.jobs.enqueue('test.cross-user', { secret: 'quokkajob' }, { userId: a.id })).id, notificationId, pushSubscriptionId, ...docsA },
        b: { ...b, ...chatB, apiKey: bKey.body.key, notificationId: bNotificationId },
        banId: (await t.services.limits.ban('ip', '203.0.113.7', 3600, 'cross-user fixture')).id,
      };
    });
    after(() => t.close());

    describe('B is refused on A\'s things', () => {
      let before_: Awaited<ReturnType<typeof snapshotOfA>>;
      before(async () => {
        before_ = await snapshotOfA();
      });

      for (const c of CASES) {
        test(`${c.method} ${c.name} → ${c.status} ${c.code}`, async () => {
          const token = c.as === 'api_key' ? f.b.apiKey : f.b.accessToken;
          const res = await t.api(c.method, c.path(f), { token, body: c.body?.(f) });
          assert.equal(res.status, c.status, res.text);
          assert.equal(res.body.code, c.code);
        });
      }

      for (const l of LIST_CASES) {
        test(`B's list of ${l.name} holds none of A's`, async () => {
          const res = await t.api('GET', l.path, { token: f.b.accessToken });
          assert.equal(res.status, 200);
          assert.ok(res.body.data.length > 0, 'B has some of their own');
          // Anywhere in the answer, not only as row ids (usage rows name keys and projects).
          for (const id of l.idsOfA(f)) assert.ok(!res.text.includes(id), id);
        });
      }

      test("B's storage figures are B's own, with a session or a key", async () => {
        for (const token of [f.b.accessToken, f.b.apiKey]) {
          const res = await t.api('GET', '/v1/usage/storage', { token });
          assert.equal(res.status, 200, res.text);
          assert.equal(res.body.userId, f.b.id);
          assert.ok(!res.text.includes(f.a.id));
          const items = Object.fromEntries(res.body.sources.map((s: { source: string; items: number }) => [s.source, s.items]));
          assert.deepEqual(items, { conversations: 1, document_versions: 1, documents: 1, files: 1, messages: 2, notifications: 1, projects: 1, prompts: 1 }, "B's chat, not A's too");
        }
      });

      test("A's content never shows up in B's search", async () => {
        for (const q of ['quokkaword', 'quokkaplans', 'Alice', 'secret instructions']) {
          const res = await t.api('GET', `/v1/search?q=${encodeURIComponent(q)}`, { token: f.b.accessToken });
          assert.equal(res.status, 200, res.text);
          assert.ok(!res.text.includes('Alice'), q);
          for (const hit of res.body.data) assert.equal(hit.conversationId, f.b.conversationId);
        }
        const own = await t.api('GET', '/v1/search?q=quokkaword', { token: f.b.accessToken });
        assert.equal(own.body.data.length, 2, "B finds B's own messages");
        const aSees = await t.api('GET', '/v1/search?q=quokkaword', { token: f.a.accessToken });
        assert.ok(aSees.body.data.length > 0 && aSees.body.data.every((h: { conversationId: string }) => h.conversationId === f.a.conversationId));
      });

      test("B's read-all and preferences touch only B's", async () => {
        assert.equal((await t.api('POST', '/v1/notifications/read-all', { token: f.b.accessToken })).status, 200);
        const put = await t.api('PUT', '/v1/notifications/preferences', { token: f.b.accessToken, body: { preferences: [{ category: 'system.message', channel: 'email', enabled: false }] } });
        assert.equal(put.status, 200, put.text);
      });

      test("A's data is unchanged and A's credentials still work", async () => {
        assert.deepEqual(await snapshotOfA(), before_);
        assert.equal(before_.me.role, 'user');
        assert.equal(before_.me.disabled, false);
        assert.equal((await t.api('GET', '/v1/users/me', { token: f.a.apiKey })).status, 200);
        assert.equal((await t.services.users.byId(f.b.id))!.role, 'user', 'B did not promote themselves');
        assert.deepEqual((await t.services.limits.listBans({ limit: 10, active: true })).map((b) => b.id), [f.banId], 'B banned no one and lifted nothing');
      });
    });
  });
}
