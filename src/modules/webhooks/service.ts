import { uuidv7 } from 'uuidv7';
import { Conflict, NotFound } from '../../errors.ts';
import type { Announce } from '../../platform/bus/bus.ts';
import type { Cipher } from '../../platform/crypto/cipher.ts';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import type { Limiter, LimiterFactory } from '../../platform/ratelimit/limiter.ts';
import type { Jobs } from '../jobs/index.ts';
import type { Projects } from '../projects/index.ts';
import { parseWebhookUrl, resolvePublic } from './address.ts';
import { newSecret, post, signatures } from './delivery.ts';
import { createWebhooksRepository, type AttemptOutcome } from './repository.ts';
import type { EndpointRow, MessageRow, PreviousSecret, webhookMessages } from './schema.ts';
import type { WebhookSettings } from './settings.ts';

/** The events an endpoint may subscribe to. */
export const WEBHOOK_EVENTS = ['message.completed', 'conversation.created', 'file.ready', 'document.updated', 'budget.exceeded', 'job.failed', 'notification.created'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];
/** What a test send carries; no endpoint subscribes to it. */
export const TEST_EVENT = 'webhook.test';

export const DELIVER_QUEUE = 'webhooks.deliver';
/** Svix's schedule: the wait before each attempt (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h). */
export const RETRY_SCHEDULE_MS = [0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000];
/** How long a secret replaced by a rotation still signs. */
const ROTATION_GRACE_MS = 24 * 3600 * 1000;
/** Replaced secrets that sign at once, at most: a rotation beyond it drops the oldest before its grace ends. */
const MAX_PREVIOUS_SECRETS = 5;

/** The replaced secrets of an endpoint that still sign, newest first. */
export const previousSigning = (e: EndpointRow, now = Date.now()): PreviousSecret[] => e.previousSecrets.filter((p) => Date.parse(p.until) > now);

/** One attempt at one message. */
export interface AttemptJob {
  messageId: string;
  /** Step of the retry schedule, 1-based. */
  attempt: number;
  /** One chain of attempts: the first delivery, or a replay. */
  run: string;
  /** How often the endpoint's rate limit has held this attempt back (absent: never). */
  waits?: number;
}

/**
 * The first attempts of messages made together (up to FIRST_ATTEMPTS_PER_JOB): one job, one read of the
 * messages, the attempts at once. Each failure schedules that message's next attempt as a job of its own.
 */
export interface FirstAttemptsJob {
  messageIds: string[];
}

export type DeliverJob = AttemptJob | FirstAttemptsJob;

/** Messages per job of first attempts: the queue's work per message (its scripts, the outbox row, the read) shared by this many. */
const FIRST_ATTEMPTS_PER_JOB = 16;

/** One event for a user's endpoints (and, when it is about a project, that project's). */
export interface WebhookEmit {
  userId: string;
  eventType: WebhookEvent;
  payload: Record<string, unknown>;
  /** Makes a redelivered event harmless: one message per endpoint and source event. */
  sourceEventId: string;
  projectId?: string | null;
}

export interface WebhooksDeps {
  db: Db;
  cipher: Cipher;
  jobs: Pick<Jobs, 'enqueue' | 'enqueueMany'>;
  projects: Pick<Projects, 'exists'>;
  limiters: Pick<LimiterFactory, 'create' | 'consumeMany'>;
  announce: Announce;
  settings: WebhookSettings;
}

const secretContext = (endpointId: string) => `webhook:${endpointId}`;
/** Why an endpoint is disabled, for a message: ` (failing)`, ` (by its owner)`. */
const reasonOf = (e: EndpointRow) => (e.disabledReason ? ` (${e.disabledReason})` : '');

/**
 * An endpoint's held-back attempts are numbered over this long: the n-th since the count began is due n ÷ rate
 * seconds after it began, behind those held before it, or the next second if that is past. A count that lapses
 * starts again at 0: attempts held after it share their seconds with those still waiting, and any refused again
 * queue anew.
 */
const QUEUE_SECONDS = 3600;
/** A counter that never refuses: its count read back as what is left of it. */
const QUEUE_POINTS = 1_000_000_000;
/** A held-back attempt is due this long after its second starts: the worker that runs it may keep a clock a little behind. */
const CLOCK_SKEW_MS = 50;

/** An attempt and what it reads: its message, and the endpoint (null once deleted). */
interface Due {
  found: { message: MessageRow; endpoint: EndpointRow | null };
  job: AttemptJob;
}

/** Whether an attempt takes a token of its endpoint's rate limit first: one still to send, to an enabled endpoint that has a limit. */
const limited = ({ found: { message, endpoint: e } }: Due): boolean => e !== null && e.rateLimit !== null && !e.disabledAt && message.status !== 'delivered';

/** Attempts logged in one statement at most. */
const LOG_BATCH = 500;

/**
 * Group commit: `write` runs for the first item at once; items that come
 * while it runs wait and go together in the next call. Each caller's promise
 * settles with its own batch's write, so nothing waits on a timer and a busy
 * worker makes one statement for many items.
 */
function groupCommit<T>(write: (items: T[]) => Promise<void>, max: number): (item: T) => Promise<void> {
  const batches: Array<{ items: T[]; done: PromiseWithResolvers<void> }> = [];
  let writing = false;
  async function drain() {
    writing = true;
    for (let batch = batches.shift(); batch; batch = batches.shift()) {
      await write(batch.items).then(batch.done.resolve, batch.done.reject);
    }
    writing = false;
  }
  return (item) => {
    let last = batches.at(-1);
    if (!last || last.items.length >= max) batches.push((last = { items: [], done: Promise.withResolvers<void>() }));
    last.items.push(item);
    if (!writing) void drain();
    return last.done.promise;
  };
}

/**
 * Outgoing webhooks: endpoints a user registers, one message per event and
 * endpoint, delivered by queued attempts on Svix's schedule, signed the
 * Standard Webhooks way. Another user's endpoint or message is as missing as
 * one that does not exist.
 */
export function createWebhooks(d: WebhooksDeps) {
  const repo = createWebhooksRepository(d.db);

  async function endpoint(userId: string, id: string): Promise<EndpointRow> {
    return found(await repo.endpoint(userId, id));
  }

  /** An endpoint read or written back; none when it is not the caller's, or another request deleted it since. */
  function found(row: EndpointRow | undefined): EndpointRow {
    if (!row) throw NotFound('Webhook endpoint', 'webhook_endpoint_not_found');
    return row;
  }

  /** An endpoint that something is about to be sent to: a disabled one would leave the message pending, never sent. */
  async function enabledEndpoint(userId: string, id: string): Promise<EndpointRow> {
    const row = await endpoint(userId, id);
    if (row.disabledAt) throw Conflict(`The endpoint is disabled${reasonOf(row)}: enable it again first`, 'webhook_endpoint_disabled');
    return row;
  }

  async function checkUrl(raw: string): Promise<string> {
    const url = parseWebhookUrl(raw);
    await resolvePublic(url, d.settings.allowPrivate);
    return url.toString();
  }

  async function checkProject(userId: string, projectId: string | null | undefined) {
    if (projectId && !(await d.projects.exists(userId, projectId))) throw NotFound('Project', 'project_not_found');
  }

  /** The secrets that sign now: the current one, and each replaced one during its own grace period. */
  function secretsOf(e: EndpointRow): string[] {
    return [e.secretEnc, ...previousSigning(e).map((p) => p.secretEnc)].map((enc) => d.cipher.decrypt(enc, secretContext(e.id)).toString());
  }

  const jobOptions = { attempts: 5, backoffMs: 2_000 };
  /**
   * An attempt after the first of a chain, or one held back by the rate limit: keyed, so an attempt run twice (its
   * worker died) schedules the next one once. A held-back one's key counts its waits (`…:2:wait3`), never a key
   * of the schedule's (`…:2`).
   */
  const deliverJob = (job: AttemptJob, delayMs: number) =>
    d.jobs.enqueue<DeliverJob>(DELIVER_QUEUE, job, { ...jobOptions, delayMs, idempotencyKey: `${job.messageId}:${job.run}:${job.attempt}${job.waits ? `:wait${job.waits}` : ''}` });

  /**
   * Per rate (a limiter counts a fixed number of points; endpoints' limits vary): an endpoint's tokens, `rate` a
   * second, and its queue, the count of attempts held back.
   */
  const rateLimiters = new Map<number, { tokens: Limiter; queue: Limiter }>();
  function rateLimiterOf(perSecond: number) {
    let limiter = rateLimiters.get(perSecond);
    if (!limiter) {
      limiter = {
        tokens: d.limiters.create({ name: `webhook-endpoint:${perSecond}`, points: perSecond, durationSeconds: 1 }),
        queue: d.limiters.create({ name: `webhook-endpoint-queue:${perSecond}`, points: QUEUE_POINTS, durationSeconds: QUEUE_SECONDS }),
      };
      rateLimiters.set(perSecond, limiter);
    }
    return limiter;
  }

  /**
   * Attempts to endpoints with a rate limit take a token each (one round trip to the limiter store for all); one
   * refused is not made, nor logged, but scheduled again, the same attempt of the same chain, for the second its
   * place in the endpoint's queue gives it (a second round trip, for those refused): a backlog is woken `rate` a
   * second, not all of it at every second. Token windows are the clock's seconds (the second is in the key), so
   * an attempt due at one's start finds it fresh, in any process. Returns the attempts to make now. Called only
   * when one of them is `limited`: an attempt to an endpoint without a limit costs nothing more.
   */
  async function throttle(due: Due[]): Promise<{ now: Due[]; held: number }> {
    const asking = due.filter(limited);
    const second = Math.floor(Date.now() / 1000);
    const rateOf = (a: Due) => a.found.endpoint!.rateLimit!;
    const tokens = await d.limiters.consumeMany(asking.map((a) => ({ limiter: rateLimiterOf(rateOf(a)).tokens, key: `${a.found.endpoint!.id}:${second}` })));
    const refused = asking.filter((_, i) => !tokens[i]!.allowed);
    if (!refused.length) return { now: due, held: 0 };
    const places = await d.limiters.consumeMany(refused.map((a) => ({ limiter: rateLimiterOf(rateOf(a)).queue, key: a.found.endpoint!.id })));
    const now = Date.now();
    await Promise.all(
      refused.map((a, i) => {
        const place = QUEUE_POINTS - places[i]!.remaining - 1;
        const countBegan = Math.floor((now - (QUEUE_SECONDS * 1000 - places[i]!.resetMs)) / 1000);
        // `rate` a second from the one after the count began; the next second at the earliest.
        const at = Math.max(second + 1, countBegan + 1 + Math.floor(place / rateOf(a))) * 1000 + CLOCK_SKEW_MS;
        return deliverJob({ ...a.job, waits: (a.job.waits ?? 0) + 1 }, at - now);
      }),
    );
    const held = new Set(refused.map((a) => a.job.messageId));
    return { now: due.filter((a) => !held.has(a.job.messageId)), held: refused.length };
  }

  const recordAttempt = groupCommit<AttemptOutcome>((rows) => repo.recordAttempts(rows), LOG_BATCH);

  /**
   * Messages and their first attempts, in one transaction: neither exists without the other. A message already
   * made from the same source event for the same endpoint is skipped. The messages are new (their ids too), so the
   * jobs need no idempotency key, and the queue no look-up of one. Returns those made, in the order given.
   */
  async function makeMessages(messages: Array<Omit<typeof webhookMessages.$inferInsert, 'id'>>): Promise<MessageRow[]> {
    if (!messages.length) return [];
    const rows = messages.map((m) => ({ ...m, id: `msg_${uuidv7().replaceAll('-', '')}` }));
    return inTransaction(d.db, async (tx) => {
      const made = new Map((await createWebhooksRepository(tx).createMessages(rows)).map((m) => [m.id, m]));
      const ordered = rows.flatMap((r) => made.get(r.id) ?? []);
      const jobs: FirstAttemptsJob[] = [];
      for (let i = 0; i < ordered.length; i += FIRST_ATTEMPTS_PER_JOB) jobs.push({ messageIds: ordered.slice(i, i + FIRST_ATTEMPTS_PER_JOB).map((m) => m.id) });
      await d.jobs.enqueueMany<DeliverJob>(DELIVER_QUEUE, jobs, { ...jobOptions, tx });
      return ordered;
    });
  }

  /**
   * Events for their users, all in one go: one read of the endpoints they reach, then one transaction that makes
   * every message and queues every first attempt (two statements, whatever the count). Messages keep the
   * events' order.
   */
  async function emitMany(events: WebhookEmit[]): Promise<number> {
    if (!events.length) return 0;
    const endpoints = await repo.subscribedAny([...new Set(events.map((e) => e.userId))], [...new Set(events.map((e) => e.eventType))]);
    const messages = events.flatMap((ev) =>
      endpoints
        .filter((e) => e.userId === ev.userId && e.events.includes(ev.eventType) && (e.projectId === null || e.projectId === (ev.projectId ?? null)))
        .map((e) => ({ endpointId: e.id, userId: e.userId, eventType: ev.eventType, payload: ev.payload, sourceEventId: ev.sourceEventId })),
    );
    return (await makeMessages(messages)).length;
  }

  /**
   * One attempt at a message (and its endpoint, null once deleted). A message already delivered is not sent
   * again (a job rerun after a worker died); a failure schedules the next step, and an endpoint failing for
   * longer than the window is disabled and its owner told. An endpoint disabled since the message was made
   * gets nothing: the message fails, the attempt logged with why, and no retry follows (a replay once it is
   * enabled again sends it).
   */
  async function attempt(found: { message: MessageRow; endpoint: EndpointRow | null }, job: AttemptJob): Promise<{ status: string }> {
    const { message, endpoint: e } = found;
    if (message.status === 'delivered') return { status: 'already delivered' };
    if (!e || e.disabledAt) {
      const error = e ? `Endpoint disabled${reasonOf(e)}` : 'Endpoint deleted';
      await recordAttempt({ id: uuidv7(), messageId: message.id, attempt: job.attempt, statusCode: null, latencyMs: 0, responseExcerpt: null, error, status: 'failed' });
      return { status: 'endpoint disabled' };
    }
    const timestamp = Math.floor(Date.now() / 1000);
    const body = JSON.stringify({ type: message.eventType, timestamp: message.createdAt.toISOString(), data: message.payload });
    const result = await post({
      url: e.url,
      body,
      timeoutMs: d.settings.timeoutMs,
      allowPrivate: d.settings.allowPrivate,
      headers: { 'webhook-id': message.id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signatures(secretsOf(e), message.id, timestamp, body) },
    });
    // The log and the message's status, with those of the attempts that ended meanwhile.
    await recordAttempt({
      id: uuidv7(),
      messageId: message.id,
      attempt: job.attempt,
      statusCode: result.statusCode,
      latencyMs: result.latencyMs,
      responseExcerpt: result.excerpt,
      error: result.error,
      status: result.ok ? 'delivered' : 'failed',
    });
    if (result.ok) {
      if (e.failingSince) await repo.markHealthy(e.id);
      return { status: 'delivered' };
    }
    const now = new Date();
    const failingSince = await repo.markFailing(e.id, now);
    if (now.getTime() - failingSince.getTime() >= d.settings.disableAfterMs) {
      await repo.updateEndpoint(e.id, { disabledAt: now, disabledReason: 'failing' });
      d.announce('webhook.endpoint.disabled', { userId: e.userId, endpointId: e.id, url: e.url, failingSince: failingSince.toISOString() });
      return { status: 'failed; endpoint disabled' };
    }
    if (job.attempt < RETRY_SCHEDULE_MS.length) await deliverJob({ messageId: job.messageId, run: job.run, attempt: job.attempt + 1 }, Math.round(RETRY_SCHEDULE_MS[job.attempt]! * d.settings.retryScale));
    return { status: 'failed' };
  }

  return {
    async create(userId: string, input: { url: string; events: string[]; description?: string | null; projectId?: string | null; rateLimit?: number | null }): Promise<{ endpoint: EndpointRow; secret: string }> {
      const max = d.settings.maxEndpoints;
      const limitReached = () => Conflict(`At most ${max} webhook endpoints here: delete one first`, 'webhook_endpoint_limit');
      // Counted here too, so a full user is told so before the address is looked up.
      if ((await repo.countEndpoints(userId)) >= max) throw limitReached();
      const url = await checkUrl(input.url);
      await checkProject(userId, input.projectId);
      const id = uuidv7();
      const secret = newSecret();
      // Counted again as the row is recorded: registrations side by side each saw room before the others took it.
      const row = await inTransaction(d.db, async (tx) => {
        const txRepo = createWebhooksRepository(tx);
        await txRepo.lockUser(userId);
        if ((await txRepo.countEndpoints(userId)) >= max) throw limitReached();
        return txRepo.createEndpoint({ id, userId, url, events: [...new Set(input.events)], description: input.description ?? null, projectId: input.projectId ?? null, rateLimit: input.rateLimit ?? null, secretEnc: d.cipher.encrypt(secret, secretContext(id)) });
      });
      return { endpoint: row, secret };
    },
    get: endpoint,
    list: (userId: string, opts: { limit: number; cursor?: string }) => repo.endpoints(userId, opts),
    async update(userId: string, id: string, patch: { url?: string; events?: string[]; description?: string | null; rateLimit?: number | null; disabled?: boolean }): Promise<EndpointRow> {
      await endpoint(userId, id);
      const values: Parameters<typeof repo.updateEndpoint>[1] = {};
      if (patch.url !== undefined) values.url = await checkUrl(patch.url);
      if (patch.events !== undefined) values.events = [...new Set(patch.events)];
      if (patch.description !== undefined) values.description = patch.description;
      if (patch.rateLimit !== undefined) values.rateLimit = patch.rateLimit;
      if (patch.disabled === true) Object.assign(values, { disabledAt: new Date(), disabledReason: 'by its owner' });
      // Enabled again: the failing window starts over.
      if (patch.disabled === false) Object.assign(values, { disabledAt: null, disabledReason: null, failingSince: null });
      return found(await repo.updateEndpoint(id, values));
    },
    async delete(userId: string, id: string): Promise<void> {
      if (!(await repo.deleteEndpoint(userId, id))) throw NotFound('Webhook endpoint', 'webhook_endpoint_not_found');
    },
    /**
     * Deletes every endpoint the user registered before `before`, their projects' too, with what each still had to
     * deliver (an attempt due finds it gone); returns their ids.
     */
    deleteAllOf: (userId: string, before: Date): Promise<string[]> => repo.deleteEndpointsOf(userId, before),
    /**
     * A new secret; the one it replaces keeps signing (a signature more) for 24 hours, as do those replaced before it
     * within their own 24 hours (MAX_PREVIOUS_SECRETS at most, the oldest dropped first). Two rotations at once (a
     * double click) both answer with a secret that signs: the later one's, and the earlier one's as a previous one.
     */
    async rotateSecret(userId: string, id: string): Promise<{ endpoint: EndpointRow; secret: string }> {
      await endpoint(userId, id);
      const secret = newSecret();
      const now = Date.now();
      const row = await repo.rotateSecret(id, d.cipher.encrypt(secret, secretContext(id)), { until: new Date(now + ROTATION_GRACE_MS), now: new Date(now), keep: MAX_PREVIOUS_SECRETS });
      return { endpoint: found(row), secret };
    },
    async test(userId: string, id: string): Promise<MessageRow> {
      const e = await enabledEndpoint(userId, id);
      const [message] = await makeMessages([{ endpointId: e.id, userId: e.userId, eventType: TEST_EVENT, payload: { endpointId: e.id, message: 'A test event from Parley' }, sourceEventId: null }]);
      return message!;
    },
    async messages(userId: string, endpointId: string, opts: { limit: number; cursor?: string }): Promise<MessageRow[]> {
      await endpoint(userId, endpointId);
      return repo.messages(endpointId, opts);
    },
    async message(userId: string, id: string): Promise<MessageRow> {
      const row = await repo.ownMessage(userId, id);
      if (!row) throw NotFound('Webhook message', 'webhook_message_not_found');
      return row;
    },
    async attempts(userId: string, messageId: string) {
      const row = await repo.ownMessage(userId, messageId);
      if (!row) throw NotFound('Webhook message', 'webhook_message_not_found');
      return repo.attempts(messageId);
    },
    /** Sends a message again (a new chain of attempts, the same webhook-id), whatever became of it, once its endpoint is enabled. */
    async replay(userId: string, messageId: string): Promise<MessageRow> {
      const row = await repo.ownMessage(userId, messageId);
      if (!row) throw NotFound('Webhook message', 'webhook_message_not_found');
      await enabledEndpoint(userId, row.endpointId);
      await repo.setMessageStatus(row.id, 'pending');
      await deliverJob({ messageId: row.id, attempt: 1, run: uuidv7() }, 0);
      return { ...row, status: 'pending' };
    },

    /**
     * An event for a user: one message for each of their enabled endpoints that wants it. An event about a
     * project (`projectId`) also reaches that project's endpoints; a project endpoint gets nothing else.
     * `sourceEventId` makes a redelivered event harmless.
     */
    async emit(userId: string, eventType: WebhookEvent, payload: Record<string, unknown>, sourceEventId: string, projectId: string | null = null): Promise<number> {
      return emitMany([{ userId, eventType, payload, sourceEventId, projectId }]);
    },
    emitMany,

    /**
     * A delivery job: one attempt, or the first attempts of messages made together (all settled before the job
     * ends; if one threw, the job runs again, and a message delivered meanwhile is not sent again). Attempts
     * beyond their endpoint's rate limit wait, each as a job of its own (`held back`).
     */
    async deliver(job: DeliverJob): Promise<{ status: string }> {
      if ('messageIds' in job) {
        const found = await repo.messagesWithEndpoints(job.messageIds);
        const due = found.map((f) => ({ found: f, job: { messageId: f.message.id, attempt: 1, run: 'first' } }));
        const { now, held } = due.some(limited) ? await throttle(due) : { now: due, held: 0 };
        const settled = await Promise.allSettled(now.map((a) => attempt(a.found, a.job)));
        const failure = settled.find((r) => r.status === 'rejected');
        if (failure) throw failure.reason;
        const counts = new Map<string, number>();
        for (const r of settled) if (r.status === 'fulfilled') counts.set(r.value.status, (counts.get(r.value.status) ?? 0) + 1);
        if (held) counts.set('held back', held);
        if (found.length < job.messageIds.length) counts.set('gone', job.messageIds.length - found.length);
        return { status: [...counts].map(([status, n]) => `${n} ${status}`).join(', ') };
      }
      const found = await repo.messageWithEndpoint(job.messageId);
      if (!found) return { status: 'gone' };
      if (limited({ found, job }) && (await throttle([{ found, job }])).held) return { status: 'held back' };
      return attempt(found, job);
    },
  };
}

export type Webhooks = ReturnType<typeof createWebhooks>;
