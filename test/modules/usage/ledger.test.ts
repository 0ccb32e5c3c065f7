import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { memoryLedger, redisLedger, type Ledger, type LedgerEntry } from '../../../src/modules/usage/ledger.ts';

const ledgers: Array<[string, () => Ledger]> = [['memory', () => memoryLedger()]];
const clients: Redis[] = [];
if (process.env.REDIS_URL) {
  const prefix = `parley:test:${randomBytes(4).toString('hex')}:`;
  ledgers.push(['redis', () => {
    const r = new Redis(process.env.REDIS_URL!);
    clients.push(r);
    return redisLedger(r, prefix);
  }]);
}
after(() => Promise.all(clients.map((c) => c.quit())));

const entry = (key: string, limitMicros: number | null, limitTokens: number | null = null, seeded = { micros: 0, tokens: 0 }): LedgerEntry => ({
  key: `${key}-${randomBytes(4).toString('hex')}`,
  limitMicros,
  limitTokens,
  expiresAt: new Date(Date.now() + 3600_000),
  seed: async () => seeded,
});

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

    test('concurrent reservations never exceed the limit', async () => {
      const l = make();
      const e = entry('f', 1000);
      const results = await Promise.all(Array.from({ length: 20 }, () => l.reserve([e], { micros: 300, tokens: 0 })));
      assert.equal(results.filter((r) => r.ok).length, 3);
    });
  });
}
