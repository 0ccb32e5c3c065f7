import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Config } from './config.ts';
import { openDatabase, type Database, type Db } from './platform/db/database.ts';
import { memoryBroadcast, redisBroadcast, type Broadcast } from './platform/broadcast/broadcast.ts';
import { announcer, type Announcer, type EventBus } from './platform/bus/bus.ts';
import { memoryBus } from './platform/bus/memory-bus.ts';
import { redisBus } from './platform/bus/redis-bus.ts';
import { Cipher, Signer } from './platform/crypto/cipher.ts';
import { resolveMasterKey } from './platform/crypto/master-key.ts';
import { outboxMailer, smtpMailer, type Mailer } from './platform/mail/mailer.ts';
import { useDnsSettings } from './platform/net/public-address.ts';
import { createLogger, type Logger } from './platform/observability/logger.ts';
import { createMetrics, type Metrics } from './platform/observability/metrics.ts';
import { memoryLimiters, redisLimiters, type LimiterFactory } from './platform/ratelimit/limiter.ts';
import { openRedis, reachRedis } from './platform/redis/redis.ts';
import { memoryStreamBuffer } from './platform/streams/memory-stream-buffer.ts';
import { redisStreamBuffer } from './platform/streams/redis-stream-buffer.ts';
import type { StreamBuffer } from './platform/streams/stream-buffer.ts';
import { dbQueue } from './platform/queue/db-queue.ts';
import type { JobQueue } from './platform/queue/queue.ts';
import { createScheduler, type Scheduler } from './platform/scheduler/scheduler.ts';
import { diskStorage } from './platform/storage/disk-storage.ts';
import type { Storage } from './platform/storage/storage.ts';

/** The adapters chosen by config, built once and handed to every module. */
export interface Deps {
  config: Config;
  database: Database;
  db: Db;
  redis?: Redis;
  limiters: LimiterFactory;
  /** Per-generation event logs any instance can replay and follow (stream resume). */
  streams: StreamBuffer;
  /** At-most-once messages by topic to every process listening: cache invalidation, real-time fan-out to sockets. */
  broadcast: Broadcast;
  /** Reliable domain events to consumer groups (at least once, retries, dead letters). */
  bus: EventBus;
  /** Publishes a domain event in the background (for code that must not wait on the bus); held while the bus is unreachable. */
  announce: Announcer;
  mailer: Mailer;
  /** Background jobs: BullMQ with Redis, else a queue in the database. Handlers run only after `queue.start()` (worker role). */
  queue: JobQueue;
  /** Cron tasks defined in code; they fire only after `scheduler.start()` (worker role). */
  scheduler: Scheduler;
  /** Blobs (files and their variants): disk under the data directory, or S3-compatible (`S3_BUCKET`). */
  storage: Storage;
  cipher: Cipher;
  /** HMAC signatures for one purpose (signed URLs), under a key derived from the master key. */
  signer: (purpose: string) => Signer;
  metrics: Metrics;
  logger: Logger;
  close(): Promise<void>;
}

export async function createDeps(config: Config, opts: { logger?: Logger; migrate?: boolean; pgliteSnapshot?: Blob } = {}): Promise<Deps> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const database = openDatabase({
    url: config.databaseUrl,
    dataDir: config.dataDir,
    poolSize: config.databasePoolSize,
    queryTimeoutMs: config.databaseQueryTimeoutMs,
    connectTimeoutMs: config.databaseConnectTimeoutMs,
    onIdleError: (err) => logger.warn({ err }, 'idle database connection lost'),
    pgliteSnapshot: opts.pgliteSnapshot,
    pgliteSharedBuffersMb: config.pgliteSharedBuffersMb,
  });
  if (opts.migrate !== false) await database.migrate();
  const redis = config.redisUrl ? openRedis(config.redisUrl, logger) : undefined;
  try {
    if (redis) await reachRedis(redis, config.redisUrl!);
  } catch (err) {
    redis!.disconnect();
    await database.close();
    throw err;
  }
  const streamOpts = { retentionSeconds: config.chat.streamRetentionSeconds, maxLiveSeconds: config.chat.maxStreamSeconds + config.chat.streamRetentionSeconds };
  const streams = redis ? redisStreamBuffer(redis, config.redisPrefix, streamOpts) : memoryStreamBuffer(streamOpts);
  const broadcast = redis ? redisBroadcast(redis, config.redisPrefix, logger) : memoryBroadcast(logger);
  const bus = redis ? redisBus(redis, config.redisPrefix, logger, config.bus) : memoryBus(logger, config.bus);
  const announce = announcer(bus, logger);
  // BullMQ and the S3 client load only where they are used (an embedded server holds neither: some 17 MB of heap).
  const queue = config.redisUrl
    ? (await import('./platform/queue/bullmq-queue.ts')).bullmqQueue({ redisUrl: config.redisUrl, redisPrefix: config.redisPrefix, db: database.db, logger, listenUrl: config.databaseUrl, lockMs: config.jobs.lockMs })
    : dbQueue({ db: database.db, logger, listenUrl: config.databaseUrl, lockMs: config.jobs.lockMs });
  const mailer = config.smtpUrl ? smtpMailer(database.db, config.smtpUrl, config.mailFrom, queue) : outboxMailer(database.db);
  const scheduler = createScheduler({ queue, db: database.db, logger });
  const storage = await openStorage(config.storage);
  const masterKey = resolveMasterKey(config.masterKey, config.dataDir);
  const restoreDns = useDnsSettings(config.dns);
  if (config.databaseUrl && !config.masterKey) {
    logger.warn({ dataDir: config.dataDir }, 'PARLEY_MASTER_KEY is not set: this instance uses a key of its own from its data directory; every instance on one database needs the same PARLEY_MASTER_KEY');
  }
  return {
    config,
    database,
    db: database.db,
    redis,
    limiters: redis ? redisLimiters(redis, config.redisPrefix, logger) : memoryLimiters(),
    streams,
    broadcast,
    bus,
    announce,
    mailer,
    queue,
    scheduler,
    storage: storage.storage,
    cipher: new Cipher(masterKey),
    signer: (purpose) => new Signer(masterKey, purpose),
    metrics: createMetrics(),
    logger,
    async close() {
      await scheduler.close();
      await announce.close();
      await queue.close();
      await mailer.close();
      await bus.close();
      await streams.close();
      await broadcast.close();
      await storage.close();
      if (redis) await redis.quit().catch(() => redis.disconnect());
      await database.close();
      restoreDns();
    },
  };
}

/** The configured store; with an in-memory data directory (tests), files go to a temporary folder removed on close. */
async function openStorage(settings: Config['storage']): Promise<{ storage: Storage; close(): Promise<void> }> {
  if (settings.kind === 's3') {
    const storage = (await import('./platform/storage/s3-storage.ts')).s3Storage(settings);
    return { storage, close: () => storage.close() };
  }
  const dir = settings.dir ?? mkdtempSync(path.join(tmpdir(), 'parley-files-'));
  const storage = diskStorage(dir);
  return {
    storage,
    async close() {
      await storage.close();
      if (!settings.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
