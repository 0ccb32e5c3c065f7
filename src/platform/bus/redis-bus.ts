import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { uuidv7 } from 'uuidv7';
import type { Logger } from '../observability/logger.ts';
import { duplicateRedis, needRedis } from '../redis/redis.ts';
import { defaultBusOptions, errorText, retryDelay, type BatchHandler, type BusOptions, type DeadLetter, type EventBus, type Handler, type Subscription } from './bus.ts';
import type { BusEvent, EventType } from './events.ts';
import { fieldsOf, streamsOf, type Entry, type ReadReply } from './stream-replies.ts';

const BATCH = 64;

const SUBJECT_FIELDS = ['conversationId', 'documentId', 'fileId', 'userId'] as const;
/** What an entry's event is about, for its lane: the first subject field its payload has; '' (one shared lane) otherwise. */
function laneOf(flat: string[]): string {
  const data = fieldsOf(flat).data;
  if (!data) return '';
  try {
    const payload = JSON.parse(data) as Record<string, unknown>;
    for (const field of SUBJECT_FIELDS) if (typeof payload[field] === 'string') return `${field}:${payload[field]}`;
  } catch {
    // A malformed entry goes to the shared lane, where handle() dead-letters it.
  }
  return '';
}
const BLOCK_MS = 5_000;
const DEAD_LETTERS_KEPT = 10_000;
/** A consumer with nothing pending and unseen this long is gone for good: it is removed from its group. */
const FORGET_CONSUMER_MS = 10 * 60_000;

/** An entry this consumer has taken and not settled: waiting its turn, being handled, or failed and waiting for its retry. */
interface Held {
  stream: string;
  state: 'queued' | 'running' | 'waiting';
  /** Redis' delivery count for it, when known. */
  delivery?: number;
}

/**
 * Redis Streams. One stream per event namespace (`message`, `job`, … — the
 * type up to its first dot), so events of one namespace keep their order for
 * a consumer; a consumer group per subscriber name; each process reads with
 * its own consumer name, blocking on a connection of its own per group. All
 * consumers of a group are meant to subscribe to the same types: one acks,
 * without handling, the entries of its namespaces it did not ask for.
 *
 * An entry is acked only after its handler resolved. While its handler runs,
 * the consumer renews its claim on it, so only a consumer that stopped
 * renewing (its process died or lost Redis) loses its entries: whoever sweeps
 * first takes them once idle `claimIdleMs` (XAUTOCLAIM). A failed entry stays
 * pending; the same consumer claims it back after a backoff (XCLAIM). Redis
 * counts deliveries; past `maxDeliveries` the entry goes to the dead-letter
 * stream with the last error (kept in a hash per group while the entry is
 * retried) and is acked. A closing consumer finishes the handler it runs and
 * releases what it has not handled, for another consumer to claim at once.
 * A subscriber with a batch handler gets the entries of one read together
 * (acked with one XACK); should it throw, they go through the handler one by
 * one as above.
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

  function consume(group: string, consumer: string, streams: string[], types: Set<string>, handler: Handler<EventType>, batch?: BatchHandler<EventType>): Subscription {
    const reader = duplicateRedis(redis, { blockMs: BLOCK_MS });
    const log = logger.child({ bus: { group, consumer } });
    let stopped = false;
    const stopping = new AbortController();
    reader.on('error', (err) => !stopped && log.debug({ err }, 'bus reader connection error'));
    /** What this consumer holds; a sweep of its own leaves these alone. */
    const held = new Map<string, Held>();
    const timers = new Set<NodeJS.Timeout>();
    const running = new Set<Promise<void>>();
    const track = (p: Promise<void>) => {
      running.add(p);
      const done = () => void running.delete(p);
      p.then(done, done); // not p.finally(): its copy of a rejection would go unhandled
      return p;
    };

    async function deliveries(stream: string, id: string): Promise<number> {
      const rows = (await redis.call('XPENDING', stream, group, id, id, '1')) as Array<[string, string, number, number]>;
      return Number(rows[0]?.[3] ?? 1);
    }

    async function ack(stream: string, id: string, delivery = 2) {
      // A first delivery has no error recorded to clear.
      if (delivery === 1) await redis.call('XACK', stream, group, id);
      else await redis.multi().call('XACK', stream, group, id).hdel(errorsKey(group), id).exec();
      held.delete(id);
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
    async function settle(stream: string, id: string, flat: string[], deliveryCount: number | Promise<number>): Promise<void> {
      try {
        const delivery = await deliveryCount;
        held.set(id, { stream, state: 'running', delivery });
        await track(handle(stream, id, flat, delivery));
      } catch (err) {
        held.delete(id);
        log.error({ err, entry: id }, 'event left pending: could not settle it');
      }
    }

    async function handle(stream: string, id: string, flat: string[], delivery: number): Promise<void> {
      const f = fieldsOf(flat);
      // Another type of the same namespace, which this group did not ask for (a sweep can meet one).
      if (!types.has(f.type ?? '')) return ack(stream, id);
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
        held.set(id, { stream, state: 'waiting', delivery });
        await redis.hset(errorsKey(group), id, errorText(err)).catch(() => {});
        // Once closing, the retry is left to another consumer (close() releases the entry).
        if (stopped) return;
        const delay = retryDelay(opts, delivery);
        const timer = setTimeout(() => {
          timers.delete(timer);
          void track(retry(stream, id, delay));
        }, delay);
        timers.add(timer);
        return;
      }
      // The next event need not wait for this ack's round trip (commands on one connection stay in order).
      // Should the ack be lost, the entry stays pending and is delivered again: at least once still holds.
      void track(ack(stream, id, delivery)).catch((err) => {
        held.delete(id); // no longer renewed: a sweep takes it back
        log.warn({ err, entry: id }, 'event ack failed; it will be redelivered');
      });
    }

    /**
     * Entries read together, to the batch handler in one call, acked in one command. False (nothing acked)
     * when one of them is malformed or the handler failed: then each goes through handle() as usual.
     */
    async function settleBatch(stream: string, entries: [string, string[]][]): Promise<boolean> {
      const events: BusEvent[] = [];
      for (const [, flat] of entries) {
        const f = fieldsOf(flat);
        try {
          events.push({ id: f.id!, type: f.type as EventType, payload: JSON.parse(f.data!), occurredAt: f.at!, delivery: 1 });
        } catch {
          return false;
        }
      }
      for (const [id] of entries) held.set(id, { stream, state: 'running', delivery: 1 });
      try {
        await track(batch!(events as never));
      } catch (err) {
        log.warn({ err, events: events.length }, 'event batch handler failed; handling each event alone');
        for (const [id] of entries) held.set(id, { stream, state: 'queued', delivery: 1 });
        return false;
      }
      const ids = entries.map(([id]) => id);
      void track(
        (async () => {
          await redis.call('XACK', stream, group, ...ids);
          for (const id of ids) held.delete(id);
        })(),
      ).catch((err) => {
        for (const id of ids) held.delete(id); // no longer renewed: a sweep takes them back
        log.warn({ err, entries: ids.length }, 'event ack failed; they will be redelivered');
      });
      return true;
    }

    /** Takes a failed entry back (unless a sweep gave it to another consumer meanwhile) and handles it again. */
    async function retry(stream: string, id: string, minIdle: number) {
      if (stopped) return; // close() releases it
      try {
        const claimed = (await redis.call('XCLAIM', stream, group, consumer, String(Math.max(0, minIdle - 50)), id)) as Entry[];
        const flat = claimed[0]?.[1];
        if (!flat) {
          held.delete(id);
          return;
        }
        await settle(stream, id, flat, deliveries(stream, id));
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
          const mine = entries.filter(([id, flat]) => flat && !held.has(id));
          for (const [id] of mine) held.set(id, { stream, state: 'queued' });
          for (const [id, flat] of mine) {
            if (stopped) break; // close() releases the rest
            await settle(stream, id, flat!, deliveries(stream, id));
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

    /** Resets the idle time of what this consumer holds (JUSTID: without counting a delivery), so no sweep takes it from a live consumer. */
    function renew() {
      const byStream = new Map<string, string[]>();
      for (const [id, h] of held) if (h.state !== 'waiting') byStream.set(h.stream, [...(byStream.get(h.stream) ?? []), id]);
      for (const [stream, ids] of byStream) {
        redis.call('XCLAIM', stream, group, consumer, '0', ...ids, 'JUSTID').catch((err) => log.warn({ err }, 'bus could not renew its claim on the events it handles'));
      }
    }

    /** Makes what this consumer took but will not handle claimable by another consumer right away, with a delivery count that does not count what never ran. */
    async function release() {
      if (!held.size) return;
      const m = redis.multi();
      for (const [id, h] of held) {
        const count = h.delivery === undefined ? [] : ['RETRYCOUNT', String(h.state === 'queued' ? h.delivery - 1 : h.delivery)];
        m.call('XCLAIM', h.stream, group, consumer, '0', id, 'IDLE', String(opts.claimIdleMs + 1), ...count, 'JUSTID');
      }
      held.clear();
      await m.exec().catch((err) => log.warn({ err }, 'bus could not release its unhandled events; they are reclaimed after claimIdleMs'));
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
    const renewer = setInterval(renew, Math.max(20, Math.floor(opts.claimIdleMs / 3)));

    const readArgs = ['GROUP', group, consumer, 'COUNT', String(BATCH), 'BLOCK', String(BLOCK_MS), 'STREAMS', ...streams, ...streams.map(() => '>')];
    const loop = (async () => {
      // While Redis is unreachable a read fails at once, twice a second: said once, not each time.
      let failing = false;
      while (!stopped) {
        let reply: ReadReply;
        try {
          reply = (await reader.call('XREADGROUP', ...readArgs)) as ReadReply;
          failing = false;
        } catch (err) {
          if (stopped) break;
          if (err instanceof Error && err.message.startsWith('NOGROUP')) await createGroups(group, streams).catch(() => {});
          else {
            if (!failing) log.warn({ err }, 'bus read failed; retrying');
            failing = true;
          }
          await sleep(500, undefined, { signal: stopping.signal }).catch(() => {});
          continue;
        }
        for (const [stream, entries] of streamsOf(reply)) {
          const wanted = entries.filter((e): e is [string, string[]] => !!e[1] && types.has(fieldsOf(e[1]).type ?? ''));
          const others = entries.filter((e) => !wanted.includes(e as [string, string[]])).map(([id]) => id);
          if (others.length) await redis.call('XACK', stream, group, ...others).catch(() => {});
          for (const [id] of wanted) held.set(id, { stream, state: 'queued', delivery: 1 });
          if (batch && wanted.length > 1 && (await settleBatch(stream, wanted))) continue;
          // One lane per subject (the conversation, document, file or user an event is about): a subject's events
          // are handled in order, different subjects' at once, so one slow handler no longer holds up everyone.
          const lanes = new Map<string, [string, string[]][]>();
          for (const entry of wanted) {
            const key = laneOf(entry[1]);
            const lane = lanes.get(key);
            if (lane) lane.push(entry);
            else lanes.set(key, [entry]);
          }
          await Promise.all(
            [...lanes.values()].map(async (lane) => {
              for (const [id, flat] of lane) {
                if (stopped) break; // close() releases the rest
                await settle(stream, id, flat, 1);
              }
            }),
          );
        }
      }
    })().catch((err) => log.error({ err }, 'bus consumer stopped reading'));

    return {
      async close() {
        if (stopped) return;
        stopped = true;
        stopping.abort();
        clearInterval(sweeper);
        for (const t of timers) clearTimeout(t);
        timers.clear();
        // Interrupts the blocking read; an entry it was being handed stays pending and is reclaimed by another consumer.
        reader.disconnect();
        await loop;
        while (running.size) await Promise.allSettled([...running]);
        clearInterval(renewer);
        await release();
      },
    };
  }

  return {
    async publish(type, payload) {
      const id = uuidv7();
      await needRedis(redis.call('XADD', streamOf(type), 'MAXLEN', '~', String(opts.maxLen), '*', 'id', id, 'type', type, 'at', new Date().toISOString(), 'data', JSON.stringify(payload)));
      return id;
    },
    async subscribe(group, types, handler, options = {}) {
      const streams = [...new Set(types.map(streamOf))];
      await createGroups(group, streams);
      const n = (perGroup.get(group) ?? 0) + 1;
      perGroup.set(group, n);
      const sub = consume(group, n === 1 ? consumerBase : `${consumerBase}#${n}`, streams, new Set<string>(types), handler as Handler<EventType>, options.batch as BatchHandler<EventType> | undefined);
      subscriptions.add(sub);
      return {
        async close() {
          subscriptions.delete(sub);
          await sub.close();
        },
      };
    },
    async deadLetters(limit = 100) {
      const rows = (await needRedis(redis.call('XREVRANGE', deadKey, '+', '-', 'COUNT', String(limit)))) as Entry[];
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
