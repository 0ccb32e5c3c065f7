import type { Redis } from 'ioredis';
import { isDown, needRedis, redisUnavailable } from '../redis/redis.ts';
import { luaScript } from '../redis/scripts.ts';
import { createSubscriptions } from '../redis/subscriptions.ts';
import { StreamEnded, type StreamBuffer, type StreamBufferOptions, type StreamEntry } from './stream-buffer.ts';

/**
 * Entries get explicit ids `0-<offset+1>` so an offset maps straight to an XRANGE
 * start; the script makes the length check and XADD one atomic step.
 */
const APPEND = `
local len = redis.call('XLEN', KEYS[1])
if len > 0 then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if last[1][2][1] == 'end' then return redis.error_reply('STREAM_ENDED') end
end
redis.call('XADD', KEYS[1], '0-' .. (len + 1), 'e', ARGV[1])
if len == 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
redis.call('PUBLISH', ARGV[3], len)
return len`;

const END = `
local len = redis.call('XLEN', KEYS[1])
if len > 0 then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if last[1][2][1] == 'end' then return 0 end
end
redis.call('XADD', KEYS[1], '0-' .. (len + 1), 'end', '1')
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], 'end')
return 1`;

/** Readers re-check this often even without a notification (a pub/sub message lost in a reconnect). */
const POLL_MS = 2000;
const BATCH = 500;

type Fields = string[];
type RawEntry = [id: string, fields: Fields];

/**
 * Redis Streams for the log (XADD/XRANGE, EXPIRE after the end) and pub/sub to
 * wake readers: one subscriber connection per process serves every reader, where
 * XREAD BLOCK would hold a connection per reader.
 */
export function redisStreamBuffer(redis: Redis, prefix: string, opts: StreamBufferOptions): StreamBuffer {
  const key = (id: string) => `${prefix}stream:${id}`;
  const channel = (id: string) => `${prefix}stream:${id}:tail`;
  const signalChannel = (id: string) => `${prefix}stream:${id}:signal`;
  const subscriptions = createSubscriptions(redis);
  const scripts = { append: luaScript(redis, APPEND), end: luaScript(redis, END) };

  async function state(id: string): Promise<'missing' | 'live' | 'ended'> {
    const last = (await needRedis(redis.xrevrange(key(id), '+', '-', 'COUNT', 1))) as RawEntry[];
    if (!last.length) return 'missing';
    return last[0]![1][0] === 'end' ? 'ended' : 'live';
  }

  async function* read<E>(id: string, fromOffset = 0, o: { signal?: AbortSignal } = {}): AsyncGenerator<StreamEntry<E>> {
    let next = Math.max(0, fromOffset);
    let pending = true;
    let wake: (() => void) | undefined;
    // Subscribe before the first XRANGE so no append falls between reading and listening.
    const stop = await needRedis(
      subscriptions.add(channel(id), () => {
        pending = true;
        wake?.();
      }),
    );
    try {
      while (!o.signal?.aborted) {
        pending = false;
        const entries = (await needRedis(redis.xrange(key(id), `0-${next + 1}`, '+', 'COUNT', BATCH))) as RawEntry[];
        for (const [entryId, fields] of entries) {
          if (fields[0] === 'end') return;
          const offset = Number(entryId.slice(2)) - 1;
          yield { offset, event: JSON.parse(fields[1]!) as E };
          next = offset + 1;
          if (o.signal?.aborted) return;
        }
        if (entries.length === BATCH) continue;
        // Nothing at or after `next`: a stream that is gone or over (read past its end) has no more to give.
        if (!entries.length && (await state(id)) !== 'live') return;
        if (!pending) {
          await new Promise<void>((resolve) => {
            const done = () => {
              clearTimeout(timer);
              o.signal?.removeEventListener('abort', done);
              wake = undefined;
              resolve();
            };
            const timer = setTimeout(done, POLL_MS);
            o.signal?.addEventListener('abort', done, { once: true });
            wake = done;
          });
        }
      }
    } finally {
      await stop();
    }
  }

  return {
    async append(id, event) {
      try {
        return Number(await needRedis(scripts.append([key(id)], [JSON.stringify(event), opts.maxLiveSeconds, channel(id)])));
      } catch (err) {
        if (err instanceof Error && err.message.includes('STREAM_ENDED')) throw new StreamEnded(id);
        throw err;
      }
    },

    async end(id) {
      await needRedis(scripts.end([key(id)], [opts.retentionSeconds, channel(id)]));
    },

    read,

    state,

    async signal(id, message) {
      await needRedis(redis.publish(signalChannel(id), message));
    },

    onSignal: (id, listener) => needRedis(subscriptions.add(signalChannel(id), listener)),

    assertReachable() {
      if (isDown(redis)) throw redisUnavailable();
    },

    close: () => subscriptions.close(),
  };
}
