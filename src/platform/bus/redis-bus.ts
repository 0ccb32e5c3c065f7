import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { uuidv7 } from 'uuidv7';
import type { Logger } from '../observability/logger.ts';
import { defaultBusOptions, errorText, retryDelay, type BusOptions, type DeadLetter, type EventBus, type Handler, type Subscription } from './bus.ts';
import type { BusEvent, EventType } from './events.ts';

type Entry = [id: string, fields: string[] | null];
type ReadReply = Array<[stream: string, entries: Entry[]]> | null;

const BATCH = 64;
const BLOCK_MS = 5_000;
const DEAD_LETTERS_KEPT = 10_000;
/** A consumer with nothing pending and unseen this long is gone for good: it is removed from its group. */
const FORGET_CONSUMER_MS = 10 * 60_000;

const fieldsOf = (flat: string[]): Record<string, string> => {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
};

/**
 * Redis Streams. One stream per event namespace (`message`, `job`, … — the
 * type up to its first dot), so events of one namespace keep their order for
 * a consumer; a consumer group per subscriber name; each process reads with
 * its own consumer name, blocking on a connection of its own per group.
 *
 * An entry is acked only after its handler resolved. A failed one stays
 * pending: the same consumer claims it back after a backoff (XCLAIM), and a
 * consumer that died leaves its entries to whoever sweeps first once they
 * have been idle `claimIdleMs` (XAUTOCLAIM). Redis counts deliveries; past
 * `maxDeliveries` the entry goes to the dead-letter stream with the last
 * error (kept in a hash per group while the entry is retried) and is acked.
 */
export function redisBus(redis: Redis, prefix: string, logger: Logger, options: Partial<BusOptions> = {}): EventBus {
  const opts = { ...defaultBusOptions, ...options };
  const streamOf = (type: string) => `${prefix}bus:${type.split('.')[0]}`;
  const deadKey = `${prefix}bus:dead-letter`;
  const errorsKey = (group: string) => `${prefix}bus:errors:${group}`;
  const consumerBase = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const perGroup = new Map<string, number>();
  const subscriptions = new Set<Subscription>();

  async function createGroups(group: string, streams: string[]) {
    for (const stream of streams) {
      try {
        await redis.call('XGROUP', 'CREATE', stream, group, '$', 'MKSTREAM');
      } catch (err) {
        if (!(err instanceof Error) || !err.message.startsWith('BUSYGROUP')) throw err;
      }
    }
  }

  function consume(group: string, consumer: string, streams: string[], types: Set<string>, handler: Handler<EventType>): Subscription {
    const reader = redis.duplicate();
    const log = logger.child({ bus: { group, consumer } });
    let stopped = false;
    /** Entries this consumer holds: being handled, or waiting for a retry. A sweep leaves them alone. */
    const held = new Set<string>();
    const timers = new Set<NodeJS.Timeout>();
    const running = new Set<Promise<void>>();
    const track = (p: Promise<void>) => {
      running.add(p);
      void p.finally(() => running.delete(p));
      return p;
    };

    async function deliveries(stream: string, id: string): Promise<number> {
      const rows = (await redis.call('XPENDING', stream, group, id, id, '1')) as Array<[string, string, number, number]>;
      return rows[0]?.[3] ?? 1;
    }

    async function deadLetter(stream: string, id: string, f: Record<string, string>, delivered: number, error: string) {
      await redis
        .multi()
        .call('XADD', deadKey, 'MAXLEN', '~', String(DEAD_LETTERS_KEPT), '*', 'id', f.id ?? id, 'type', f.type ?? '', 'group', group, 'data', f.data ?? 'null', 'at', f.at ?? '', 'deliveries', String(delivered), 'error', error, 'failedAt', new Date().toISOString())
        .call('XACK', stream, group, id)
        .hdel(errorsKey(group), id)
        .exec();
      held.delete(id);
      log.error({ eventId: f.id, type: f.type, deliveries: delivered, error }, 'event dead-lettered: its handler kept failing');
    }

    /** Handles one entry; an entry that could not even be settled (Redis gone) stays pending for a later sweep. */
    async function settle(stream: string, id: string, flat: string[], delivery: number): Promise<void> {
      try {
        await track(handle(stream, id, flat, delivery));
      } catch (err) {
        held.delete(id);
        log.error({ err, entry: id }, 'event left pending: could not settle it');
      }
    }

    async function handle(stream: string, id: string, flat: string[], delivery: number): Promise<void> {
      const f = fieldsOf(flat);
      if (delivery > opts.maxDeliveries) {
        // Claimed from a consumer that died holding it, once too often.
        const last = await redis.hget(errorsKey(group), id);
        return deadLetter(stream, id, f, delivery - 1, last ?? 'its consumer stopped before acknowledging it');
      }
      let event: BusEvent;
      try {
        event = { id: f.id!, type: f.type as EventType, payload: JSON.parse(f.data!), occurredAt: f.at!, delivery };
      } catch (err) {
        return deadLetter(stream, id, f, delivery, `malformed entry: ${errorText(err)}`);
      }
      try {
        await handler(event as never);
      } catch (err) {
        if (delivery >= opts.maxDeliveries) return deadLetter(stream, id, f, delivery, errorText(err));
        log.warn({ err, eventId: event.id, type: event.type, delivery }, 'event handler failed; will retry');
        await redis.hset(errorsKey(group), id, errorText(err)).catch(() => {});
        const delay = retryDelay(opts, delivery);
        const timer = setTimeout(() => {
          timers.delete(timer);
          if (!stopped) void track(retry(stream, id, delay));
        }, delay);
        timers.add(timer);
        return;
      }
      await redis.multi().call('XACK', stream, group, id).hdel(errorsKey(group), id).exec();
      held.delete(id);
    }

    /** Takes a failed entry back (unless a sweep gave it to another consumer meanwhile) and handles it again. */
    async function retry(stream: string, id: string, minIdle: number) {
      try {
        const claimed = (await redis.call('XCLAIM', stream, group, consumer, String(Math.max(0, minIdle - 50)), id)) as Entry[];
        const entry = claimed[0];
        if (!entry?.[1]) {
          held.delete(id);
          return;
        }
        await handle(stream, id, entry[1], await deliveries(stream, id));
      } catch (err) {
        // Left pending: a sweep picks it up once idle long enough.
        held.delete(id);
        if (!stopped) log.warn({ err, entry: id }, 'event retry failed');
      }
    }

    let sweeps = 0;
    /** Claims entries another consumer left unacked for claimIdleMs (it died), and forgets long-gone consumers. */
    async function sweep() {
      for (const stream of streams) {
        let cursor = '0-0';
        do {
          const [next, entries] = (await redis.call('XAUTOCLAIM', stream, group, consumer, String(opts.claimIdleMs), cursor, 'COUNT', '100')) as [string, Entry[], string[]?];
          for (const [id, flat] of entries) {
            if (stopped || !flat || held.has(id)) continue;
            held.add(id);
            await settle(stream, id, flat, await deliveries(stream, id));
          }
          cursor = next;
        } while (cursor !== '0-0' && !stopped);
        if (++sweeps % 20 === 0) await forgetGoneConsumers(stream);
      }
    }

    async function forgetGoneConsumers(stream: string) {
      const rows = (await redis.call('XINFO', 'CONSUMERS', stream, group)) as string[][];
      for (const row of rows) {
        const c = fieldsOf(row.map(String));
        if (c.name !== consumer && Number(c.pending) === 0 && Number(c.idle) > FORGET_CONSUMER_MS) {
          await redis.call('XGROUP', 'DELCONSUMER', stream, group, c.name!);
        }
      }
    }

    const sweepEvery = Math.max(100, Math.floor(opts.claimIdleMs / 2));
    let sweeping = false;
    const sweeper = setInterval(() => {
      if (sweeping || stopped) return;
      sweeping = true;
      track(sweep())
        .catch((err) => !stopped && log.warn({ err }, 'bus sweep failed'))
        .finally(() => (sweeping = false));
    }, sweepEvery);

    const readArgs = ['GROUP', group, consumer, 'COUNT', String(BATCH), 'BLOCK', String(BLOCK_MS), 'STREAMS', ...streams, ...streams.map(() => '>')];
    const loop = (async () => {
      while (!stopped) {
        let reply: ReadReply;
        try {
          reply = (await reader.call('XREADGROUP', ...readArgs)) as ReadReply;
        } catch (err) {
          if (stopped) break;
          if (err instanceof Error && err.message.startsWith('NOGROUP')) await createGroups(group, streams).catch(() => {});
          else log.warn({ err }, 'bus read failed; retrying');
          await sleep(500);
          continue;
        }
        for (const [stream, entries] of reply ?? []) {
          const others: string[] = [];
          for (const [id, flat] of entries) {
            if (!flat) continue;
            // Another type of the same namespace, which this group did not ask for.
            if (!types.has(fieldsOf(flat).type ?? '')) {
              others.push(id);
              continue;
            }
            held.add(id);
            await settle(stream, id, flat, 1);
          }
          if (others.length) await redis.call('XACK', stream, group, ...others).catch(() => {});
        }
      }
    })();

    return {
      async close() {
        if (stopped) return;
        stopped = true;
        clearInterval(sweeper);
        for (const t of timers) clearTimeout(t);
        timers.clear();
        // Interrupts the blocking read; anything it had taken stays pending and is reclaimed by another consumer.
        reader.disconnect();
        await loop;
        await Promise.allSettled([...running]);
      },
    };
  }

  return {
    async publish(type, payload) {
      const id = uuidv7();
      await redis.call('XADD', streamOf(type), 'MAXLEN', '~', String(opts.maxLen), '*', 'id', id, 'type', type, 'at', new Date().toISOString(), 'data', JSON.stringify(payload));
      return id;
    },
    async subscribe(group, types, handler) {
      const streams = [...new Set(types.map(streamOf))];
      await createGroups(group, streams);
      const n = (perGroup.get(group) ?? 0) + 1;
      perGroup.set(group, n);
      const sub = consume(group, n === 1 ? consumerBase : `${consumerBase}#${n}`, streams, new Set<string>(types), handler as Handler<EventType>);
      subscriptions.add(sub);
      return {
        async close() {
          subscriptions.delete(sub);
          await sub.close();
        },
      };
    },
    async deadLetters(limit = 100) {
      const rows = (await redis.call('XREVRANGE', deadKey, '+', '-', 'COUNT', String(limit))) as Entry[];
      return rows.map(([, flat]): DeadLetter => {
        const f = fieldsOf(flat ?? []);
        return { id: f.id!, type: f.type!, group: f.group!, payload: JSON.parse(f.data ?? 'null'), occurredAt: f.at!, deliveries: Number(f.deliveries), error: f.error!, failedAt: f.failedAt! };
      });
    },
    async close() {
      await Promise.all([...subscriptions].map((s) => s.close()));
      subscriptions.clear();
    },
  };
}
