import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { uuidv7 } from 'uuidv7';
import type { BusOptions, EventBus, Handler } from '../../src/platform/bus/bus.ts';
import type { AnyBusEvent, DomainEvents, EventType } from '../../src/platform/bus/events.ts';
import { memoryBus } from '../../src/platform/bus/memory-bus.ts';
import { redisBus } from '../../src/platform/bus/redis-bus.ts';
import { createLogger } from '../../src/platform/observability/logger.ts';
import { openRedis, type Redis } from '../../src/platform/redis/redis.ts';
import { eventually } from '../support/eventually.ts';

const logger = createLogger('silent');
const fast: Partial<BusOptions> = { maxDeliveries: 5, retryDelayMs: 20, claimIdleMs: 200 };
/** Long enough for any retry, reclaim sweep or stray redelivery to have happened (several claimIdleMs). */
const quietly = () => delay(800);

/** Two handles on one cluster: the same bus in memory; on Redis, two buses over separate connections ("instances"). */
interface Cluster {
  a: EventBus;
  b: EventBus;
  /** Redis only: cuts instance b off from Redis, as when its process dies. */
  killB?: () => void;
}

const sides: Array<{ name: string; skip?: string | false; make(t: TestContext, opts?: Partial<BusOptions>): Cluster }> = [
  {
    name: 'memory',
    make(t, opts) {
      const bus = memoryBus(logger, { ...fast, ...opts });
      t.after(() => bus.close());
      return { a: bus, b: bus };
    },
  },
  {
    name: 'redis',
    skip: !process.env.REDIS_URL && 'REDIS_URL not set',
    make(t, opts) {
      const prefix = `parley:test:${randomBytes(6).toString('hex')}:`;
      const [r1, r2]: Redis[] = [openRedis(process.env.REDIS_URL!), openRedis(process.env.REDIS_URL!)];
      const a = redisBus(r1, prefix, logger, { ...fast, ...opts });
      const b = redisBus(r2, prefix, logger, { ...fast, ...opts });
      t.after(async () => {
        await Promise.all([a.close(), b.close()]);
        const keys = await r1.keys(`${prefix}*`);
        if (keys.length) await r1.del(...keys);
        await r1.quit();
        r2.disconnect();
      });
      return { a, b, killB: () => r2.disconnect() };
    },
  },
];

const created = (n = 0): DomainEvents['message.created'] => ({ userId: uuidv7(), conversationId: `c${n}`, userMessageId: uuidv7(), assistantMessageId: uuidv7(), model: null });
const started = (n = 0): DomainEvents['message.stream.started'] => ({ userId: uuidv7(), conversationId: `c${n}`, messageId: uuidv7(), provider: null, model: null });
const progress = (n = 0): DomainEvents['job.progress'] => ({ userId: uuidv7(), jobId: `j${n}`, queue: 'q', state: 'active', progress: n });

/** A handler that records what it gets, then runs `then` (which may throw or block). */
function recorder<T extends EventType>(then?: (e: AnyBusEvent<T>) => Promise<void> | void) {
  const seen: Array<AnyBusEvent<T>> = [];
  const handler: Handler<T> = async (e) => {
    seen.push(e);
    await then?.(e);
  };
  return { seen, handler, ids: () => seen.map((e) => e.id) };
}

/** A promise the test resolves by hand: a handler that blocks until released. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

for (const side of sides) {
  describe(`event bus [${side.name}]`, { skip: side.skip }, () => {
    test('publish → the handler gets the typed event: id, type, payload, occurredAt, delivery 1', async (t) => {
      const { a, b } = side.make(t);
      const got = recorder<'message.created' | 'job.progress'>((e) => {
        // Narrowing by type gives the payload's type (a compile-time check as much as a runtime one).
        if (e.type === 'message.created') assert.equal(typeof e.payload.conversationId, 'string');
        else assert.equal(e.payload.queue, 'q');
      });
      await b.subscribe('g', ['message.created', 'job.progress'], got.handler);
      const payload = created(1);
      const before = Date.now();
      const id = await a.publish('message.created', payload);
      const job = progress(2);
      const jobId = await a.publish('job.progress', job);
      await eventually(() => assert.equal(got.seen.length, 2));
      const [e, j] = got.seen;
      assert.equal(e!.id, id);
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(e!.type, 'message.created');
      assert.deepEqual(e!.payload, payload);
      assert.equal(e!.delivery, 1);
      assert.equal(new Date(e!.occurredAt).toISOString(), e!.occurredAt);
      assert.ok(Date.parse(e!.occurredAt) >= before - 1_000);
      assert.deepEqual([j!.id, j!.type, j!.delivery, j!.payload], [jobId, 'job.progress', 1, job]);
    });

    test('every group gets every event', async (t) => {
      const { a, b } = side.make(t);
      const [g1, g2] = [recorder(), recorder()];
      await a.subscribe('g1', ['message.created'], g1.handler);
      await b.subscribe('g2', ['message.created'], g2.handler);
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push(await a.publish('message.created', created(i)));
      await eventually(() => {
        assert.deepEqual(g1.ids(), ids);
        assert.deepEqual(g2.ids(), ids);
      });
    });

    test('consumers of one group share its events: each handled exactly once in all', async (t) => {
      const { a, b } = side.make(t);
      const [c1, c2] = [recorder(), recorder()];
      await a.subscribe('workers', ['message.created'], c1.handler);
      await b.subscribe('workers', ['message.created'], c2.handler);
      const ids: string[] = [];
      for (let i = 0; i < 40; i++) ids.push(await (i % 2 ? a : b).publish('message.created', created(i)));
      await eventually(() => assert.equal(c1.seen.length + c2.seen.length, ids.length));
      await quietly();
      const all = [...c1.ids(), ...c2.ids()];
      assert.equal(all.length, ids.length, 'no event handled twice');
      assert.deepEqual(new Set(all), new Set(ids));
      assert.ok([...c1.seen, ...c2.seen].every((e) => e.delivery === 1));
    });

    test('only the subscribed types are delivered, and another group still gets the others', async (t) => {
      const { a, b } = side.make(t);
      const onlyCreated = recorder<'message.created'>();
      const onlyStarted = recorder<'message.stream.started'>();
      await b.subscribe('created', ['message.created'], onlyCreated.handler);
      await b.subscribe('started', ['message.stream.started'], onlyStarted.handler);
      const startedId = await a.publish('message.stream.started', started(1));
      await a.publish('job.progress', progress(1));
      await a.publish('user.updated', { userId: uuidv7(), fields: ['name'] });
      const createdId = await a.publish('message.created', created(2));
      await eventually(() => {
        assert.deepEqual(onlyCreated.ids(), [createdId]);
        assert.deepEqual(onlyStarted.ids(), [startedId]);
      });
      await quietly();
      assert.deepEqual(onlyCreated.seen.map((e) => e.type), ['message.created']);
      assert.deepEqual(onlyStarted.seen.map((e) => e.type), ['message.stream.started']);
    });

    test('a consumer gets the events of one namespace in publish order', async (t) => {
      const { a, b } = side.make(t);
      const got = recorder<'message.created' | 'message.stream.started'>();
      await b.subscribe('ordered', ['message.created', 'message.stream.started'], got.handler);
      const ids: string[] = [];
      for (let i = 0; i < 50; i++) ids.push(await a.publish(i % 3 ? 'message.created' : 'message.stream.started', i % 3 ? created(i) : started(i)));
      await eventually(() => assert.equal(got.seen.length, ids.length));
      assert.deepEqual(got.ids(), ids);
    });

    test('a handler that throws gets the event again (delivery 2, 3); once it succeeds the event is acked', async (t) => {
      const { a, b } = side.make(t);
      const got = recorder<'message.created'>((e) => {
        if (e.delivery < 3) throw new Error(`not yet (${e.delivery})`);
      });
      await b.subscribe('flaky', ['message.created'], got.handler);
      const other = recorder<'message.created'>();
      await a.subscribe('steady', ['message.created'], other.handler);
      const id = await a.publish('message.created', created());
      await eventually(() => assert.deepEqual(got.seen.map((e) => e.delivery), [1, 2, 3]));
      assert.ok(got.seen.every((e) => e.id === id));
      await quietly();
      assert.equal(got.seen.length, 3, 'no delivery after the one that succeeded');
      assert.deepEqual(other.seen.map((e) => e.delivery), [1], "one group's failure is not another's");
      assert.deepEqual(await a.deadLetters(), []);
    });

    test('after maxDeliveries the event is dead-lettered with its last error, and not delivered again', async (t) => {
      const { a, b } = side.make(t, { maxDeliveries: 3 });
      const got = recorder<'message.created'>((e) => {
        throw new Error(`boom ${e.delivery}`);
      });
      await b.subscribe('doomed', ['message.created'], got.handler);
      const payload = created(7);
      const id = await a.publish('message.created', payload);
      const [letter] = await eventually(async () => {
        const letters = await a.deadLetters();
        assert.equal(letters.length, 1);
        return letters;
      });
      assert.deepEqual({ ...letter!, occurredAt: '', failedAt: '' }, { id, type: 'message.created', group: 'doomed', payload, occurredAt: '', deliveries: 3, error: 'boom 3', failedAt: '' });
      assert.ok(Date.parse(letter!.failedAt) >= Date.parse(letter!.occurredAt));
      assert.deepEqual(got.seen.map((e) => e.delivery), [1, 2, 3]);
      await quietly();
      assert.equal(got.seen.length, 3, 'not redelivered after dead-lettering');
      assert.equal((await b.deadLetters()).length, 1);
      // The next event of the group is handled as usual.
      const later = recorder<'message.created'>();
      await a.subscribe('fine', ['message.created'], later.handler);
      await a.publish('message.created', created(8));
      await eventually(() => assert.equal(later.seen.length, 1));
    });

    test('events published before a group subscribed are not delivered to it; those after subscribe resolved are', async (t) => {
      const { a, b } = side.make(t);
      await a.publish('message.created', created(1));
      const got = recorder<'message.created'>();
      await b.subscribe('late', ['message.created'], got.handler);
      const after = await a.publish('message.created', created(2));
      await eventually(() => assert.deepEqual(got.ids(), [after]));
      await quietly();
      assert.deepEqual(got.ids(), [after]);
    });

    test('a closed subscription takes no more events; they wait for another consumer of its group', async (t) => {
      const { a, b } = side.make(t);
      const first = recorder<'message.created'>();
      const sub = await a.subscribe('g', ['message.created'], first.handler);
      const one = await a.publish('message.created', created(1));
      await eventually(() => assert.deepEqual(first.ids(), [one]));
      await sub.close();
      await sub.close();
      const two = await a.publish('message.created', created(2));
      await quietly();
      assert.deepEqual(first.ids(), [one]);
      const second = recorder<'message.created'>();
      await b.subscribe('g', ['message.created'], second.handler);
      await eventually(() => assert.deepEqual(second.ids(), [two]));
      await quietly();
      assert.deepEqual(second.ids(), [two], 'the acked event is not handed out again');
    });

    test('close() waits for the running handler and acks its event once; what it had not started goes to another consumer', async (t) => {
      const release = gate();
      t.after(release.open); // before the cluster's own cleanup, which waits for running handlers
      const { a, b } = side.make(t);
      const first = recorder<'message.created'>(() => release.opened);
      const sub = await a.subscribe('g', ['message.created'], first.handler);
      const running = await a.publish('message.created', created(1));
      await eventually(() => assert.deepEqual(first.ids(), [running]));
      const queued = [await a.publish('message.created', created(2)), await a.publish('message.created', created(3))];
      await delay(50); // lets the consumer take the queued events too, if it reads ahead
      let closed = false;
      const closing = sub.close().then(() => (closed = true));
      await delay(50);
      assert.equal(closed, false, 'close() waits for the handler running now');
      release.open();
      await closing;
      assert.deepEqual(first.ids(), [running], 'nothing is started after close()');
      const second = recorder<'message.created'>();
      await b.subscribe('g', ['message.created'], second.handler);
      await eventually(() => assert.deepEqual(new Set(second.ids()), new Set(queued)));
      await quietly();
      assert.equal(second.seen.length, 2, 'the event handled during close() is not delivered again');
      assert.deepEqual(first.ids(), [running]);
    });

    test('events a closing consumer had already taken but not started go to another consumer, as first deliveries', async (t) => {
      const [gate1, gate2] = [gate(), gate()];
      t.after(gate1.open);
      t.after(gate2.open);
      const { a, b } = side.make(t);
      let calls = 0;
      const first = recorder<'message.created'>(() => (++calls === 1 ? gate1.opened : gate2.opened));
      const sub = await a.subscribe('g', ['message.created'], first.handler);
      const e1 = await a.publish('message.created', created(1));
      await eventually(() => assert.deepEqual(first.ids(), [e1]));
      // Published while the consumer is busy, so it takes both at its next read (Redis) or has both queued (memory);
      // about one conversation, so they are handled in order (a lane), e3 only once e2 is done.
      const [e2, e3] = [await a.publish('message.created', created(2)), await a.publish('message.created', created(2))];
      gate1.open();
      await eventually(() => assert.deepEqual(first.ids(), [e1, e2]));
      const closing = sub.close();
      gate2.open();
      await closing;
      assert.deepEqual(first.ids(), [e1, e2], 'nothing is started after close()');
      const second = recorder<'message.created'>();
      await b.subscribe('g', ['message.created'], second.handler);
      await eventually(() => assert.deepEqual(second.seen.map((e) => [e.id, e.delivery]), [[e3, 1]]));
      await quietly();
      assert.deepEqual(second.ids(), [e3]);
      assert.deepEqual(first.ids(), [e1, e2]);
    });

    test("one subject's events are handled in order; another subject's do not wait for them", { skip: side.name !== 'redis' && 'Redis lanes' }, async (t) => {
      const [busy, held] = [gate(), gate()];
      t.after(busy.open);
      t.after(held.open);
      const { a } = side.make(t);
      const seen = recorder<'message.created'>((e) => (e.payload.conversationId === 'c9' ? busy.opened : e.payload.conversationId === 'c1' ? held.opened : undefined));
      await a.subscribe('g', ['message.created'], seen.handler);
      // A busy first event, so the next read takes the other three together.
      const blocker = await a.publish('message.created', created(9));
      await eventually(() => assert.deepEqual(seen.ids(), [blocker]));
      const slow = await a.publish('message.created', created(1));
      const after = await a.publish('message.created', created(1));
      const other = await a.publish('message.created', created(2));
      busy.open();
      await eventually(() => assert.deepEqual(seen.ids(), [blocker, slow, other]), 5_000);
      held.open();
      await eventually(() => assert.deepEqual(seen.ids(), [blocker, slow, other, after]));
    });


    test('events that arrive together go to the batch handler at once, in publish order, and are acked', async (t) => {
      const busy = gate();
      t.after(busy.open);
      const { a, b } = side.make(t);
      const one = recorder<'message.created'>(() => busy.opened);
      const batches: string[][] = [];
      await b.subscribe('g', ['message.created'], one.handler, {
        batch: async (events) => {
          batches.push(events.map((e) => e.id));
          assert.ok(events.every((e) => e.type === 'message.created' && e.delivery === 1 && typeof e.payload.conversationId === 'string'));
        },
      });
      // A busy first event, so the next ten wait and are taken together.
      const first = await a.publish('message.created', created(0));
      await eventually(() => assert.deepEqual(one.ids(), [first]));
      const rest: string[] = [];
      for (let i = 1; i <= 10; i++) rest.push(await a.publish('message.created', created(i)));
      busy.open();
      await eventually(() => assert.deepEqual(batches.flat(), rest));
      assert.ok(batches.some((ids) => ids.length > 1), `taken together: ${batches.map((ids) => ids.length).join(', ')}`);
      await quietly();
      assert.deepEqual(one.ids(), [first], 'nothing handled again one by one');
      assert.deepEqual(batches.flat(), rest, 'nothing redelivered');
    });

    test('a batch handler that throws: each of its events goes to the one-event handler, with its retries', async (t) => {
      const busy = gate();
      t.after(busy.open);
      const { a, b } = side.make(t);
      let failedOnce = false;
      // The first event blocks; then event 3 fails once alone, and is retried.
      const one = recorder<'message.created'>(async (e) => {
        await busy.opened;
        if (e.payload.conversationId === 'c3' && !failedOnce) {
          failedOnce = true;
          throw new Error('not yet');
        }
      });
      let batchCalls = 0;
      await b.subscribe('g', ['message.created'], one.handler, {
        batch: async () => {
          batchCalls++;
          throw new Error('the batch failed');
        },
      });
      const first = await a.publish('message.created', created(0));
      await eventually(() => assert.deepEqual(one.ids(), [first]));
      const rest: string[] = [];
      for (let i = 1; i <= 5; i++) rest.push(await a.publish('message.created', created(i)));
      busy.open();
      await eventually(() => assert.equal(one.seen.filter((e) => e.delivery === 1).length, 6));
      await eventually(() => assert.ok(one.seen.some((e) => e.payload.conversationId === 'c3' && e.delivery === 2)));
      await quietly();
      assert.ok(batchCalls >= 1);
      const firstTries = one.seen.filter((e) => e.delivery === 1).map((e) => e.id);
      assert.deepEqual(firstTries, [first, ...rest], 'each once, in order, after the batch failed');
      assert.equal(one.seen.length, 7, 'only the failing one again');
    });
    test('a handler that fails while its subscription closes leaves the event to another consumer', async (t) => {
      const release = gate();
      t.after(release.open); // before the cluster's own cleanup, which waits for running handlers
      const { a, b } = side.make(t);
      const first = recorder<'message.created'>(async () => {
        await release.opened;
        throw new Error('interrupted');
      });
      const sub = await a.subscribe('g', ['message.created'], first.handler);
      const id = await a.publish('message.created', created(1));
      await eventually(() => assert.equal(first.seen.length, 1));
      const closing = sub.close();
      release.open();
      await closing;
      const second = recorder<'message.created'>();
      await b.subscribe('g', ['message.created'], second.handler);
      await eventually(() => assert.deepEqual(second.seen.map((e) => [e.id, e.delivery]), [[id, 2]]));
      await quietly();
      assert.equal(first.seen.length, 1);
      assert.equal(second.seen.length, 1);
    });

    test('bus.close() ends every subscription, even one blocked waiting for events', async (t) => {
      const { a } = side.make(t);
      const got = recorder();
      await a.subscribe('g1', ['message.created'], got.handler);
      await a.subscribe('g2', ['job.progress', 'user.updated'], got.handler);
      await delay(50);
      await a.close();
      await a.close();
    });

    if (side.name === 'redis') {
      test('an event held by a consumer that died is reclaimed by another consumer of its group after claimIdleMs', async (t) => {
        const release = gate();
        t.after(release.open);
        const { a, b, killB } = side.make(t);
        const dying = recorder<'message.created'>(() => release.opened);
        await b.subscribe('g', ['message.created'], dying.handler);
        const id = await a.publish('message.created', created(1));
        await eventually(() => assert.deepEqual(dying.ids(), [id]));
        killB!();
        const heir = recorder<'message.created'>();
        await a.subscribe('g', ['message.created'], heir.handler);
        await eventually(() => assert.deepEqual(heir.seen.map((e) => [e.id, e.delivery]), [[id, 2]]));
        const next = await a.publish('message.created', created(2));
        await eventually(() => assert.deepEqual(heir.ids(), [id, next]));
        release.open();
        await quietly();
        assert.deepEqual(heir.ids(), [id, next], 'handled and acked once reclaimed');
        assert.deepEqual(await a.deadLetters(), []);
      });

      test('a live consumer keeps the event it is handling, however long the handler takes', async (t) => {
        const release = gate();
        t.after(release.open);
        const { a, b } = side.make(t);
        const slow = recorder<'message.created'>(() => release.opened);
        await b.subscribe('g', ['message.created'], slow.handler);
        const id = await a.publish('message.created', created(1));
        await eventually(() => assert.deepEqual(slow.ids(), [id]));
        const other = recorder<'message.created'>();
        await a.subscribe('g', ['message.created'], other.handler);
        await quietly();
        assert.deepEqual(other.ids(), [], 'not reclaimed from a consumer that is alive');
        release.open();
        await quietly();
        assert.deepEqual(slow.ids(), [id]);
        assert.deepEqual(other.ids(), []);
      });
    }
  });
}
