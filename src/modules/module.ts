import type { z } from 'zod';
import type { Config } from '../config.ts';
import type { Deps } from '../deps.ts';
import type { Db } from '../platform/db/database.ts';
import type { Guards } from '../http/guards.ts';
import type { Idempotency } from '../http/idempotency.ts';
import type { App } from '../http/types.ts';
import type { DomainEvents, EventType } from '../platform/bus/events.ts';
import type { BatchHandler, EventBus, Handler } from '../platform/bus/bus.ts';
import type { JobHandler, JobQueue, ProcessOptions } from '../platform/queue/queue.ts';
import type { ScheduleDefinition } from '../platform/scheduler/scheduler.ts';
import type { Principal } from './auth/index.ts';
import type { FootprintSource } from './usage/index.ts';
import type { ToolSource } from './tools/index.ts';
import type { ExportSource } from './export/index.ts';
import type { ErasureSource } from './users/index.ts';

/**
 * Every service a module provides, by name. Each module adds its own in its
 * index.ts (declaration merging), so the map is written nowhere else:
 *
 *   declare module '../module.ts' {
 *     interface ServiceMap { projects: Projects }
 *   }
 */
export interface ServiceMap {}

/** Each module's config section, under its module name (declaration merging, as ServiceMap). */
export interface ModuleSettings {}

export type ServiceName = keyof ServiceMap & string;

/**
 * A kind of notification a module sends (`document.shared`, `comment.mention`): declared in its
 * index.ts, listed at `GET /v1/notifications/categories`, switched on and off per user and channel.
 */
export interface NotificationCategory {
  /** Dotted, lower-case: `document.shared`. */
  name: string;
  description: string;
  /** The channels it goes to unless the user says otherwise (default: in-app and email on, push as email; SMS and Slack off, since they cost money or attention). */
  channels?: { inApp?: boolean; email?: boolean; push?: boolean; sms?: boolean; slack?: boolean };
  /** Email wording as Mustache templates with `{{title}}`, `{{body}}`, `{{link}}`, `{{unsubscribeUrl}}` and `{{data.<field>}}` (docs/api.md#notifications); the plain default look otherwise. */
  email?: EmailTemplate & {
    /** Per BCP 47 language tag (`fr`, `pt-BR`): used for a user whose `locale` is that tag, or whose language it is. */
    translations?: Record<string, EmailTemplate>;
  };
}

/** What a service factory gets: the platform's adapters, the config, and only the services it named. */
export interface ServiceContext<Needs extends ServiceName> {
  deps: Deps;
  config: Config;
  services: Pick<ServiceMap, Needs>;
  /** What every module declared users store (the footprint report's sources). */
  footprints: FootprintSource[];
  /** Every module's WebSocket topics; read when a socket subscribes, once all services exist. */
  topics(): Topics[];
  /** Every module's notification categories (see Module.notifications). */
  notificationCategories: NotificationCategory[];
  /** Every module's tools (see Module.tools); read when a turn lists its tools, once all services exist. */
  toolSources(): ToolSource[];
  /** Every module's part of a user's data export (see Module.exports); read when an export runs, once all services exist. */
  exportSources(): ExportSource[];
  /** Every module's part of erasing a deleted account (see Module.erasure); read when an erasure runs, once all services exist. */
  erasureSources(): ErasureSource[];
}

/** What route registration gets: the services the module named or provides, the guards and the config; no adapters. */
export interface RouteContext<Uses extends ServiceName> {
  services: Pick<ServiceMap, Uses>;
  guards: Guards;
  /** Idempotency-Key records (the HTTP layer's): a retried POST gets the first one's result. */
  idempotency: Idempotency;
  config: Config;
}

/** A module's config section: env fields (Zod) merged into the one env schema, and how to read them into settings. */
export interface ConfigSection<Settings> {
  env: z.ZodRawShape;
  /** Reads the validated env (the whole of it) into settings; throws ConfigError naming what is wrong. */
  read(env: any): Settings;
}

/** A cron task, before SCHEDULES overrides are applied. */
export type Schedule = ScheduleDefinition<null>;

/** A queue's handler: defined in every process, run where the worker runs. */
export interface JobDefinition<T = any, R = unknown> {
  queue: string;
  handler: JobHandler<T, R>;
  options?: ProcessOptions;
}

/**
 * An event that follows a change once it is committed, and always then: `announce` queues the event's job in the
 * change's own transaction (an outbox: both or neither), and the job publishes the event, retried for about an
 * hour and a half (5 s doubling) until the bus takes it. A crash between the two can neither lose the event nor
 * announce a change that did not happen. Nothing queues it again, so an admin cannot discard the job (mustRun).
 */
export function outboxEvent<T extends EventType>(queue: string, type: T) {
  return {
    queue,
    job: (bus: Pick<EventBus, 'publish'>): JobDefinition<DomainEvents[T]> => ({
      queue,
      handler: async (payload) => ({ eventId: await bus.publish(type, payload) }),
      options: { mustRun: true },
    }),
    announce: (jobs: Pick<JobQueue, 'enqueue'>, payload: DomainEvents[T], tx: Db) => jobs.enqueue(queue, payload, { attempts: 10, backoffMs: 5_000, tx }),
  };
}

/** A reliable bus subscription, started with the HTTP app and closed with it (see EventBus). */
export interface BusSubscription<T extends EventType = EventType> {
  group: string;
  types: readonly T[];
  handler: Handler<T>;
  /** Several events at once when several arrived together (see BatchHandler); `handler` takes them one by one otherwise. */
  batch?: BatchHandler<T>;
}

/**
 * A WebSocket topic: `name` alone (`jobs`), or `name:<uuid>` when `withId`.
 * Events reach it by `route`: the topics an event of this module goes to.
 */
export interface TopicDefinition {
  name: string;
  withId?: boolean;
  /** The API-key scope it needs (a session may follow anything of its own). */
  scope?: string;
  /** Throws NotFound unless this user may follow that id. */
  authorize?(principal: Principal, id: string): Promise<void>;
  /**
   * A topic followed by everyone who may read what it names (a shared document), not by one user: its
   * events are published once, to whoever follows it, instead of once per reader. Each instance asks this,
   * for each event, which of its followers' users may still read it (one query for all of them), and
   * hands the event only to their sockets: a reader removed since subscribing hears nothing more.
   */
  audience?(id: string, userIds: string[]): Promise<string[]>;
}

export interface Topics {
  topics: TopicDefinition[];
  /** The bus event types this module's topics carry. */
  events: readonly EventType[];
  /** The topics an event goes to, most specific first; empty when none of this module's. */
  route(type: string, payload: Record<string, unknown>): string[];
}

/**
 * One capability of Parley, as app.ts, the service wiring, the worker, the
 * config loader and the schema list see it. Everything optional: an empty
 * module is `{ name: 'x' }`.
 */
export interface Module<Needs extends ServiceName = any, Provides extends ServiceName = any, Settings = unknown, Uses extends ServiceName = any> {
  name: string;
  /** The Drizzle tables this module owns; no other module queries them. */
  tables?: Record<string, unknown>;
  /** Read once at start into `config[name]`. */
  config?: ConfigSection<Settings>;
  /** The services of other modules it uses (earlier in MODULES). */
  needs?: readonly Needs[];
  /**
   * Services of any module (before or after it) that its routes, jobs, schedules and subscriptions
   * call once everything is built: not for building its own services, so no order between the two.
   */
  uses?: readonly Uses[];
  /** The services it adds to the map, under these names. */
  provides?: readonly Provides[];
  /** Builds this module's services once, over the deps and the services it named. */
  services?(ctx: ServiceContext<Needs>): Pick<ServiceMap, Provides>;
  /** Awaited before the app serves (keys loaded). */
  start?(services: Pick<ServiceMap, Needs | Provides | Uses>): Promise<void>;
  /** Awaited when the process stops, after the HTTP server has drained (pending writes flushed). */
  stop?(services: Pick<ServiceMap, Needs | Provides | Uses>): Promise<void>;
  /** Routes under /v1. */
  routes?(app: App, ctx: RouteContext<Needs | Provides | Uses>): void | Promise<void>;
  /** Routes at the root (health, JWKS, the home page). */
  rootRoutes?(app: App, ctx: RouteContext<Needs | Provides | Uses>): void | Promise<void>;
  /** Queued work it handles: defined everywhere, run where the worker runs. */
  jobs?(ctx: ServiceContext<Needs | Provides | Uses>): JobDefinition[];
  /** Cron tasks: defined everywhere, fired where the worker runs. */
  schedules?(ctx: ServiceContext<Needs | Provides | Uses>): Schedule[];
  /** Bus subscriptions, started with the HTTP app. */
  subscriptions?(ctx: ServiceContext<Needs | Provides | Uses>): BusSubscription[];
  /** WebSocket topics of this module, and how its events reach them. */
  topics?(services: Pick<ServiceMap, Needs | Provides | Uses>): Topics;
  /** What users store in this module, for the per-user footprint report. */
  footprint?: FootprintSource[];
  /** The notification categories this module's events turn into (sent by the notifications module). */
  notifications?: NotificationCategory[];
  /** Tools the model may call in chat when a project enables them (see tools/tool.ts). */
  tools?(services: Pick<ServiceMap, Needs | Provides | Uses>): ToolSource;
  /** What a user's data export holds from this module (`GET /v1/users/me/export`): its own rows, read from its own tables. */
  exports?(ctx: ServiceContext<Needs | Provides | Uses>): ExportSource;
  /**
   * How a deleted account's rows in this module are erased, a batch at a time, before the account's own row
   * goes (users/erasure.ts): for the tables a user can fill without bound. What is left goes through foreign keys.
   */
  erasure?(ctx: ServiceContext<Needs | Provides | Uses>): ErasureSource;
}

export interface EmailTemplate {
  subject?: string;
  text?: string;
  html?: string;
}

/** Checks a module's shape and keeps its types: `export const chat = defineModule({ … })`. */
export function defineModule<const Needs extends ServiceName = never, const Provides extends ServiceName = never, Settings = unknown, const Uses extends ServiceName = never>(
  module: Module<Needs, Provides, Settings, Uses>,
): Module<Needs, Provides, Settings, Uses> {
  return module;
}

/** Only the named services, so a module cannot reach one it did not declare. */
export function pickServices<K extends ServiceName>(all: Partial<ServiceMap>, names: readonly K[]): Pick<ServiceMap, K> {
  const picked = {} as Pick<ServiceMap, K>;
  for (const name of names) {
    if (!(name in all)) throw new Error(`service "${name}" is not provided by any module before this one in MODULES`);
    picked[name] = (all as ServiceMap)[name];
  }
  return picked;
}
