import { AppError, Forbidden, NotFound } from '../../errors.ts';
import type { EventType } from '../../platform/bus/events.ts';
import type { JobQueue } from '../../platform/queue/queue.ts';
import type { Principal } from '../auth/authenticator.ts';
import type { Conversations } from '../chat/conversations.ts';

/**
 * What a socket can subscribe to, always within its own user:
 *   conversation:<id>   message.* events of that conversation
 *   conversations       message.* events of all the user's conversations
 *   job:<id>            job.progress of that job
 *   jobs                job.progress of all the user's jobs
 *   user                user.updated
 *   notifications       notification.* events (none are published yet)
 */
export type Topic =
  | { kind: 'conversation'; id: string; name: string }
  | { kind: 'job'; id: string; name: string }
  | { kind: 'conversations' | 'jobs' | 'user' | 'notifications'; name: string };

/** The bus events the relay forwards to sockets. */
export const RELAYED_TYPES = ['message.created', 'message.stream.started', 'message.stream.finished', 'job.progress', 'user.updated'] as const satisfies readonly EventType[];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const WHOLE = new Set(['conversations', 'jobs', 'user', 'notifications']);

/** A topic name as a topic (ids lower-cased), or undefined if it is not one. */
export function parseTopic(name: string): Topic | undefined {
  if (WHOLE.has(name)) return { kind: name as 'conversations' | 'jobs' | 'user' | 'notifications', name };
  const i = name.indexOf(':');
  const kind = name.slice(0, i);
  const id = name.slice(i + 1).toLowerCase();
  if ((kind === 'conversation' || kind === 'job') && UUID.test(id)) return { kind, id, name: `${kind}:${id}` };
  return undefined;
}

/**
 * The topics an event is delivered on, most specific first; a socket gets it
 * once, on the first of them it is subscribed to.
 */
export function topicsOf(type: string, payload: Record<string, unknown>): string[] {
  if (type.startsWith('message.')) return [`conversation:${String(payload.conversationId)}`, 'conversations'];
  if (type === 'job.progress') return [`job:${String(payload.jobId)}`, 'jobs'];
  if (type === 'user.updated') return ['user'];
  if (type.startsWith('notification.')) return ['notifications'];
  return [];
}

/** The API-key scope a topic needs (a session may subscribe to anything of its own). */
const SCOPES: Partial<Record<Topic['kind'], string>> = { conversation: 'chat', conversations: 'chat', job: 'jobs:read', jobs: 'jobs:read', user: 'profile:read' };

/** Who may subscribe to what: only to one's own topics. Throws NotFound for anyone else's, as the HTTP API does. */
export function createTopicAccess(d: { conversations: Pick<Conversations, 'get'>; queue: Pick<JobQueue, 'get'> }) {
  return async function authorize(p: Principal, topic: Topic): Promise<void> {
    const scope = SCOPES[topic.kind];
    if (p.via === 'api_key' && scope && p.scopes.length && !p.scopes.includes(scope)) {
      throw Forbidden(`This API key lacks the "${scope}" scope`, 'insufficient_scope');
    }
    if (topic.kind === 'conversation') {
      try {
        await d.conversations.get(p.userId, topic.id);
      } catch (err) {
        throw err instanceof AppError && err.status === 404 ? NotFound('Conversation') : err;
      }
    } else if (topic.kind === 'job') {
      const job = await d.queue.get(topic.id);
      if (!job || job.userId !== p.userId) throw NotFound('Job');
    }
  };
}

export type TopicAccess = ReturnType<typeof createTopicAccess>;
