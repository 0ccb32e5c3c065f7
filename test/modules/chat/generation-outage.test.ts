import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eventually } from '../../support/eventually.ts';
import { createUser } from '../../support/factories.ts';
import { allSse } from '../../support/sse.ts';
import { proxiedPostgres } from '../../support/outage.ts';
import { chatAs, startChat, type ChatFixture } from './generation-fixture.ts';

describe('chat: PostgreSQL away when an answer ends', { skip: !process.env.DATABASE_URL && 'needs PostgreSQL (DATABASE_URL)' }, () => {
  let f: ChatFixture;
  let postgres: Awaited<ReturnType<typeof proxiedPostgres>>;
  before(async () => {
    postgres = await proxiedPostgres();
    f = await startChat('postgres', { DATABASE_URL: postgres.url, DATABASE_CONNECT_TIMEOUT_MS: '500' });
  });
  after(async () => {
    await postgres.proxy.heal();
    await f.close();
    await postgres.close();
  });

  test('the answer is written once the database is back: stored whole, its stream ends with it, charged once', async () => {
    const u = await createUser(f.t);
    const chat = chatAs(f.t, u);
    const c = await chat.conversation();
    const words = Array.from({ length: 12 }, (_, i) => `w${i} `);
    f.openai.script({ chunks: words, delayMs: 150 });
    const res = await chat.sendSse(c, { content: 'Tell me' });
    assert.equal(res.status, 200);
    const events = allSse(res);
    // Gone while the answer streams, back only after it ended: its final write found no database (the answer was lost, charged).
    await new Promise((r) => setTimeout(r, 600));
    await postgres.proxy.cut();
    await new Promise((r) => setTimeout(r, 2_500));
    await postgres.proxy.heal();
    const all = await events;
    const completed = all.find((e) => e.event === 'message.completed');
    assert.ok(completed, `ended with ${JSON.stringify(all.at(-1)).slice(0, 300)}`);
    assert.equal(completed.data.message.status, 'complete');
    const id = completed.data.message.id;
    const stored = await chat.message(c, id);
    assert.deepEqual([stored.status, stored.content.map((p: any) => p.text).join('')], ['complete', words.join('')]);
    await eventually(async () => {
      const usage = await f.t.api('GET', '/v1/usage?groupBy=model', { token: u.accessToken });
      assert.equal(usage.body.totals.requests, 1, JSON.stringify(usage.body.totals));
    }, 10_000);
  });
});
