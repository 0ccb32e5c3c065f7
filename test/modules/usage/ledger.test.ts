import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { memoryLedger, type Ledger, type LedgerEntry } from '../../../src/modules/usage/ledger.ts';
import { redisLedger, type LeaseOptions } from '../../../src/modules/usage/redis-ledger.ts';

const prefix = `parley:test:${randomBytes(4).toString('hex')}:`;
const clients: Redis[] = [];
/** A process of its own: its own connection and lease. Syncs only when told to, unless `syncIntervalMs` says otherwise. */
function processLedger(opts: LeaseOptions = {}) {
  const r = new Redis(process.env.REDIS_URL!);
  clients.push(r);
  // Every script call is a round trip to Redis.
  const trips = { n: 0 };
  const send = r.sendCommand.bind(r);
  r.sendCommand = (cmd) => {
    if (cmd.name === 'evalsha') trips.n++;
    return send(cmd);
  };
  return Object.assign(redisLedger(r, prefix, { syncIntervalMs: 0, ...opts }), { trips });
}
const ledgers: Array<[string, () => Ledger]> = [['memory', () => memoryLedger()]];
if (process.env.REDIS_URL) ledgers.push(['redis', () => processLedger()]);
after(() => Promise.all(clients.map((c) => c.quit())));

const entry = (key: string, limitMicros: number | null, limitTokens: number | null = null, seeded = { micros: 0, tokens: 0 }): LedgerEntry => ({
  key: `${key}-${randomBytes(4).toString('hex')}`,
  limitMicros,
  limitTokens,
  expiresAt: new Date(Date.now() + 3600_000),
  seed: async () => seeded,
});

/** A call: reserves `estimate` micro-dollars and, if admitted, settles `actual`. */
async function call(l: Ledger, e: LedgerEntry, estimate: number, actual: number): Promise<boolean> {
  const r = await l.reserve([e], { micros: estimate, tokens: 0 });
  if (r.ok) await l.settle([e.key], { micros: estimate, tokens: 0 }, { micros: actual, tokens: 0 });
  return r.ok;
}

for (const [name, make] of ledgers) {
  describe(`budget ledger [${name}]`, () => {
    test('reserves while the estimate fits, refuses after; settling swaps the estimate for the actual', async () => {
      const l = make();
      const e = entry('a', 1000);
      assert.deepEqual(await l.reserve([e], { micros: 400, tokens: 10 }), { ok: true });
      assert.deepEqual(await l.reserve([e], { micros: 400, tokens: 10 }), { ok: true });
      assert.deepEqual(await l.reserve([e], { micros: 400, tokens: 10 }), { ok: false, index: 0 }, '1200 would not fit');
      await l.settle([e.key], { micros: 400, tokens: 10 }, { micros: 100, tokens: 7 });
      const [c] = await l.read([e]);
      assert.deepEqual(c, { used: { micros: 100, tokens: 7 }, reserved: { micros: 400, tokens: 10 } });
      assert.deepEqual(await l.reserve([e], { micros: 400, tokens: 10 }), { ok: true }, '100 + 400 + 400 fits');
    });

    test('add counts a call that reserved nothing on a counter that exists, and leaves one not made yet to its seed', async () => {
      const l = make();
      const made = entry('made', 1000, null, { micros: 50, tokens: 5 });
      const notMade = entry('not-made', 1000, null, { micros: 70, tokens: 7 });
      await l.read([made]);
      await l.add([made.key, notMade.key], { micros: 30, tokens: 3 });
      const [m, n] = await l.read([made, notMade]);
      assert.deepEqual(m, { used: { micros: 80, tokens: 8 }, reserved: { micros: 0, tokens: 0 } });
      assert.deepEqual(n, { used: { micros: 70, tokens: 7 }, reserved: { micros: 0, tokens: 0 } }, 'its seed alone: it counts the call from its usage event');
    });

    test('a zero estimate (an unpriced model, a tiny prompt) settles too', async () => {
      const l = make();
      const e = entry('z', 1000, 1000);
      assert.deepEqual(await l.reserve([e], { micros: 0, tokens: 0 }), { ok: true });
      await l.settle([e.key], { micros: 0, tokens: 0 }, { micros: 435, tokens: 1500 });
      assert.deepEqual(await l.read([e]), [{ used: { micros: 435, tokens: 1500 }, reserved: { micros: 0, tokens: 0 } }]);
    });

    test('a counter at its limit refuses even a zero estimate (an unpriced model)', async () => {
      const l = make();
      const e = entry('b', 500, null, { micros: 500, tokens: 0 });
      assert.deepEqual(await l.reserve([e], { micros: 0, tokens: 0 }), { ok: false, index: 0 });
    });

    test('every entry must have room; nothing is reserved when one lacks it; token limits count too', async () => {
      const l = make();
      const roomy = entry('c', 10_000);
      const tight = entry('d', null, 100);
      assert.deepEqual(await l.reserve([roomy, tight], { micros: 10, tokens: 150 }), { ok: false, index: 1 });
      const [c] = await l.read([roomy]);
      assert.deepEqual(c!.reserved, { micros: 0, tokens: 0 }, 'all or nothing');
    });

    test('a new counter starts from what the database says was spent in the period', async () => {
      const l = make();
      const e = entry('e', 1000, null, { micros: 900, tokens: 50 });
      assert.deepEqual(await l.reserve([e], { micros: 200, tokens: 0 }), { ok: false, index: 0 });
      assert.deepEqual((await l.read([e]))[0]!.used, { micros: 900, tokens: 50 });
    });

    test('a lowered limit takes effect at the next reservation', async () => {
      const l = make();
      const e = entry('g', 100_000);
      for (let i = 0; i < 3; i++) assert.equal(await call(l, e, 1000, 1000), true);
      const lowered = { ...e, limitMicros: 3500 };
      assert.deepEqual(await l.reserve([lowered], { micros: 1000, tokens: 0 }), { ok: false, index: 0 }, '3000 + 1000 > 3500, whatever room was held under 100 000');
      assert.deepEqual(await l.reserve([lowered], { micros: 500, tokens: 0 }), { ok: true });
    });

    test('concurrent reservations never exceed the limit', async () => {
      const l = make();
      const e = entry('f', 1000);
      const results = await Promise.all(Array.from({ length: 20 }, () => l.reserve([e], { micros: 300, tokens: 0 })));
      assert.equal(results.filter((r) => r.ok).length, 3);
    });
  });
}

describe('budget leases [redis]', { skip: !process.env.REDIS_URL && 'needs REDIS_URL' }, () => {
  const spent = async (e: LedgerEntry) => (await processLedger().read([e]))[0]!.used.micros;

  test('a process reserves and settles from its lease with no round trip; the next flush writes the spend back', async () => {
    const a = processLedger();
    const e = entry('lease', 1_000_000);
    for (let i = 0; i < 50; i++) assert.equal(await call(a, e, 100, 80), true);
    assert.ok(a.trips.n < 10, `the lease grows with use: ${a.trips.n} trips for 50 calls`);
    await a.flush();
    const before = a.trips.n;
    for (let i = 0; i < 50; i++) assert.equal(await call(a, e, 100, 80), true);
    assert.equal(a.trips.n, before, 'the lease sized by the last interval covers the next');
    assert.equal((await a.read([e]))[0]!.used.micros, 100 * 80, 'a process counts its own unflushed spend');
    assert.equal(await spent(e), 50 * 80, 'others see it from the flush on');
    await a.flush();
    assert.equal(await spent(e), 100 * 80);
  });

  test('calls short of room at the same time share one trip', async () => {
    const a = processLedger();
    const e = entry('share', 1_000_000);
    await a.read([e]); // seeds the counter
    const before = a.trips.n;
    const results = await Promise.all(Array.from({ length: 40 }, () => a.reserve([e], { micros: 100, tokens: 0 })));
    assert.ok(results.every((r) => r.ok));
    assert.ok(a.trips.n - before <= 5, `${a.trips.n - before} trips for 40 concurrent calls`);
  });

  test('concurrent calls in three processes never exceed the limit beyond what they spend over their estimates; a graceful close loses nothing', async () => {
    const limit = 30_000;
    const e = entry('three', limit);
    const procs = [processLedger(), processLedger(), processLedger({ leaseShare: 0.3 })];
    let admitted = 0;
    let actual = 0;
    let excess = 0;
    await Promise.all(
      procs.flatMap((l, p) =>
        Array.from({ length: 8 }, async (_, w) => {
          for (let i = 0; i < 40; i++) {
            const cost = (i + w) % 10 ? 100 : 120;
            if (await call(l, e, 100, cost)) {
              admitted++;
              actual += cost;
              excess += Math.max(0, cost - 100);
            }
            if ((i + w + p) % 10 === 0) void l.flush();
            await new Promise((r) => setImmediate(r));
          }
        }),
      ),
    );
    assert.ok(admitted < 3 * 8 * 40, 'the limit was reached');
    await Promise.all(procs.map((l) => l.close()));
    assert.equal(await spent(e), actual, 'every settle written back');
    assert.ok(actual <= limit + excess, `${actual} spent, limit ${limit}, ${excess} spent beyond estimates`);
    assert.ok(actual >= limit - 1000, `refused only near the limit: ${actual} of ${limit}`);
  });

  test('near the limit, a process is refused only for want of room or for another\'s idle lease, which is bounded and given back', async () => {
    const limit = 100_000;
    const e = entry('near', limit);
    const a = processLedger({ leaseShare: 0.05 });
    const b = processLedger({ leaseShare: 0.05 });
    for (let i = 0; i < 200; i++) {
      assert.equal(await call(a, e, 100, 100), true);
      if (i % 50 === 49) await a.flush();
    }
    let used = 200 * 100;
    while (await call(b, e, 100, 100)) used += 100;
    assert.ok(limit - used < 0.05 * limit + 100, `b was refused with ${limit - used} left, more than a's lease may hold`);
    assert.ok(limit - used >= 100, 'a holds some room');
    await a.flush();
    await a.flush(); // two quiet intervals: a gives its lease back
    while (await call(b, e, 100, 100)) used += 100;
    assert.equal(used, limit, 'b is refused only once the budget is full');
  });

  test('near the limit a lease shrinks to a quarter of the room nobody holds', async () => {
    const limit = 10_000;
    const e = entry('quarter', limit);
    const a = processLedger({ leaseShare: 0.5 });
    for (let i = 0; i < 60; i++) {
      assert.equal(await call(a, e, 100, 100), true);
      if (i % 20 === 19) await a.flush(); // it drew 2000 an interval: the flush tops its lease up towards 4000
    }
    const b = processLedger();
    let admitted = 0;
    while (await call(b, e, 100, 100)) admitted++;
    // Of the 4000 left, a holds what remained of its last lease and a quarter of the rest, not all it asked for.
    assert.ok(admitted >= 25, `b had room for ${admitted} calls`);
  });

  test('a process that dies holding a lease gives its room back once the lease expires', async () => {
    const e = entry('crash', 10_000);
    const a = processLedger({ leaseTtlMs: 200 });
    assert.equal((await a.reserve([e], { micros: 4000, tokens: 0 })).ok, true); // and a dies with its call under way
    const b = processLedger();
    assert.equal(await call(b, e, 6000, 6000), true);
    assert.deepEqual(await b.reserve([e], { micros: 1, tokens: 0 }), { ok: false, index: 0 }, 'a\'s lease holds the rest');
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(await call(b, e, 4000, 4000), true, 'reclaimed after its expiry');
    assert.deepEqual((await b.read([e]))[0], { used: { micros: 10_000, tokens: 0 }, reserved: { micros: 0, tokens: 0 } });
  });

  test('a graceful close writes back every settle and gives the lease back', async () => {
    const limit = 10_000;
    const e = entry('close', limit);
    const a = processLedger({ leaseShare: 0.5 });
    for (let i = 0; i < 30; i++) assert.equal(await call(a, e, 100, 70), true);
    await a.close();
    const b = processLedger();
    assert.equal(await spent(e), 30 * 70);
    assert.equal(await call(b, e, limit - 30 * 70, 0), true, 'all the room left is b\'s to take');
  });

  test('spend beyond a lease reaches Redis at once: another process refuses the next call without waiting for a flush', async () => {
    const e = entry('over', 1000);
    const a = processLedger();
    const b = processLedger();
    // Three calls estimated at 300 fill the budget; each spends 435.
    const admitted = await Promise.all(Array.from({ length: 3 }, () => a.reserve([e], { micros: 300, tokens: 0 })));
    assert.ok(admitted.every((r) => r.ok));
    await a.settle([e.key], { micros: 300, tokens: 0 }, { micros: 435, tokens: 0 });
    await a.settle([e.key], { micros: 300, tokens: 0 }, { micros: 435, tokens: 0 });
    await a.settle([e.key], { micros: 300, tokens: 0 }, { micros: 435, tokens: 0 });
    // No flush: only the write-back the overspend started. Commands on one connection run in order, so a read
    // sent after the settles sees what they sent.
    assert.equal((await b.reserve([e], { micros: 1, tokens: 0 })).ok, false, '1305 of 1000 spent');
    assert.equal(await spent(e), 1305);
  });

  test('a lowered limit binds every process at its next call, whatever lease it holds', async () => {
    const e = entry('lower', 1_000_000);
    const a = processLedger({ leaseShare: 0.5 });
    const b = processLedger({ leaseShare: 0.5 });
    for (let i = 0; i < 10; i++) {
      assert.equal(await call(a, e, 100, 100), true);
      assert.equal(await call(b, e, 100, 100), true);
    }
    const lowered = { ...e, limitMicros: 2500 };
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).reserve([lowered], { micros: 100, tokens: 0 })));
    assert.equal(results.filter((r) => r.ok).length, 5, '2000 spent: room for 5 more calls of 100 under 2500');
  });
});

describe('budget ledger while Redis is unreachable [redis]', { skip: !process.env.REDIS_URL && 'needs REDIS_URL' }, () => {
  test('calls within the lease go on; one short of room, and a read, are refused with 503; the spend reaches Redis once it is back', async () => {
    const a = processLedger();
    const connection = clients.at(-1)!;
    const e = entry('outage', 1_000_000);
    assert.equal(await call(a, e, 100, 100), true, 'takes a lease for several such calls');

    connection.disconnect();
    await once(connection, 'end');
    assert.equal(await call(a, e, 100, 100), true, 'served from the lease');
    const unavailable = { status: 503, code: 'dependency_unavailable' };
    await assert.rejects(a.reserve([e], { micros: 500_000, tokens: 0 }), unavailable);
    await assert.rejects(a.read([e]), unavailable);

    await connection.connect();
    await a.flush();
    assert.equal((await processLedger().read([e]))[0]!.used.micros, 200);
  });
});
