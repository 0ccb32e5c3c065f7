import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ERRORS, type Lock, type Locker, type RequestRelease } from '@tus/server';
import type { Redis } from 'ioredis';
import type { Broadcast } from '../../platform/broadcast/broadcast.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import { needRedis } from '../../platform/redis/redis.ts';

/** A holder that died keeps its lock this long at most; a live one renews it well before. */
const LEASE_MS = 30_000;
const RENEW_MS = 10_000;
const RETRY_MS = 50;
/** As tus's MemoryLocker: a request that cannot get the lock in this time gets ERR_LOCK_TIMEOUT. */
const ACQUIRE_TIMEOUT_MS = 30_000;

const RELEASE_IF_OURS = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
const RENEW_IF_OURS = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";

/**
 * tus's lock on an upload across instances: a Redis key with a lease
 * (renewed while held). A request that finds it taken asks the holder,
 * wherever it runs, to let go (over `broadcast`): tus's holder then ends its
 * PATCH cleanly, keeping the bytes it got. That is how a client that lost its
 * connection can resume at once, on any instance, while the server still
 * holds the half-open request.
 */
export function redisUploadLocker(deps: { redis: Redis; prefix: string; broadcast: Broadcast; logger: Logger }): Locker {
  const topic = 'files.upload-lock-release';
  /** Locks held by this process: upload id → how to ask its holder to release. */
  const held = new Map<string, RequestRelease>();
  let listening: Promise<unknown> | undefined;
  const listen = () =>
    (listening ??= deps.broadcast
      .subscribe(topic, (id) => {
        const release = held.get(id);
        if (release) void Promise.resolve(release()).catch((err: unknown) => deps.logger.warn({ err, uploadId: id }, 'could not release an upload lock'));
      })
      .catch((err: unknown) => {
        listening = undefined;
        throw err;
      }));

  return {
    newLock(id: string): Lock {
      const key = `${deps.prefix}files:upload-lock:${id}`;
      const token = randomBytes(16).toString('hex');
      let renewal: NodeJS.Timeout | undefined;
      return {
        async lock(signal, requestRelease) {
          await needRedis(listen());
          const deadline = Date.now() + ACQUIRE_TIMEOUT_MS;
          let asked = false;
          // Without Redis no instance can know who writes the upload: 503, try again (the bytes sent so far are kept).
          while ((await needRedis(deps.redis.set(key, token, 'PX', LEASE_MS, 'NX'))) !== 'OK') {
            if (signal.aborted) throw ERRORS.ABORTED;
            if (Date.now() > deadline) throw ERRORS.ERR_LOCK_TIMEOUT;
            if (!asked) {
              asked = true;
              await deps.broadcast.publish(topic, id).catch((err: unknown) => deps.logger.warn({ err, uploadId: id }, 'could not ask for an upload lock to be released'));
            }
            await sleep(RETRY_MS);
          }
          held.set(id, requestRelease);
          renewal = setInterval(() => {
            deps.redis.eval(RENEW_IF_OURS, 1, key, token, String(LEASE_MS)).catch((err: unknown) => deps.logger.warn({ err, uploadId: id }, 'could not renew an upload lock'));
          }, RENEW_MS);
          renewal.unref();
        },
        async unlock() {
          clearInterval(renewal);
          held.delete(id);
          // A lock that cannot be released now lapses with its lease.
          await deps.redis.eval(RELEASE_IF_OURS, 1, key, token).catch((err: unknown) => deps.logger.warn({ err, uploadId: id }, 'could not release an upload lock; it lapses'));
        },
      };
    },
  };
}
