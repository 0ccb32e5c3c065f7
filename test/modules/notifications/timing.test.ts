import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { lastDigestSlot, quietUntil } from '../../../src/modules/notifications/timing.ts';

const at = (iso: string) => new Date(iso);

describe('notifications: quiet hours and digest times, in the user time zone', () => {
  test('quiet hours within a day, across midnight, and none', () => {
    const day = { start: '13:00', end: '14:30' };
    assert.equal(quietUntil(at('2026-03-02T13:10:00Z'), 'UTC', day)?.toISOString(), '2026-03-02T14:30:00.000Z');
    assert.equal(quietUntil(at('2026-03-02T14:30:00Z'), 'UTC', day), null, 'the end minute is no longer quiet');
    assert.equal(quietUntil(at('2026-03-02T12:59:59Z'), 'UTC', day), null);
    const night = { start: '22:00', end: '07:00' };
    // 23:00 in Paris (UTC+1 in March before the change) ends at 07:00 Paris the next day.
    assert.equal(quietUntil(at('2026-03-02T22:00:00Z'), 'Europe/Paris', night)?.toISOString(), '2026-03-03T06:00:00.000Z');
    // 03:00 Paris: ends at 07:00 Paris the same day.
    assert.equal(quietUntil(at('2026-03-03T02:00:00Z'), 'Europe/Paris', night)?.toISOString(), '2026-03-03T06:00:00.000Z');
    assert.equal(quietUntil(at('2026-03-03T12:00:00Z'), 'Europe/Paris', night), null);
    assert.equal(quietUntil(at('2026-03-03T12:00:00Z'), 'UTC', null), null);
    assert.equal(quietUntil(at('2026-03-03T12:00:00Z'), 'UTC', { start: '09:00', end: '09:00' }), null, 'an empty span is no quiet hours');
  });

  test('a night spanning the spring DST change still ends at 07:00 local', () => {
    // Europe/Paris moves to UTC+2 at 02:00 on 29 March 2026.
    assert.equal(quietUntil(at('2026-03-28T22:30:00Z'), 'Europe/Paris', { start: '22:00', end: '07:00' })?.toISOString(), '2026-03-29T05:00:00.000Z');
  });

  test('DST nights: a time shown twice is its first showing; a time skipped is not there', () => {
    const ny = 'America/New_York';
    // 1 November 2026: 02:00 EDT becomes 01:00 EST (06:00Z), so 01:00–01:59 shows twice.
    const night = { start: '01:30', end: '06:00' };
    for (const now of ['2026-11-01T05:45:00Z', '2026-11-01T06:00:00Z', '2026-11-01T06:29:00Z', '2026-11-01T06:45:00Z', '2026-11-01T10:59:00Z']) {
      assert.equal(quietUntil(at(now), ny, night)?.toISOString(), '2026-11-01T11:00:00.000Z', `${now}: quiet since 01:30 EDT, until 06:00 EST`);
    }
    assert.equal(quietUntil(at('2026-11-01T05:29:00Z'), ny, night), null, 'before the first 01:30');
    // 8 March 2026: 02:00 EST becomes 03:00 EDT. A quiet span inside the skipped hour is not there that day…
    for (const span of [{ start: '02:00', end: '03:00' }, { start: '02:30', end: '03:00' }]) {
      assert.equal(quietUntil(at('2026-03-08T16:00:00Z'), ny, span), null, `${span.start}–${span.end} at noon`);
    }
    // …and one that ends in it is read with the offset before the jump (RFC 5545): 02:30 EST, which the clocks show as 03:30.
    assert.equal(quietUntil(at('2026-03-08T06:30:00Z'), ny, { start: '01:00', end: '02:30' })?.toISOString(), '2026-03-08T07:30:00.000Z');
    // Lord Howe goes back 30 minutes (02:00 +11 becomes 01:30 +10:30) on 5 April 2026.
    assert.equal(quietUntil(at('2026-04-04T15:10:00Z'), 'Australia/Lord_Howe', { start: '01:40', end: '05:00' })?.toISOString(), '2026-04-04T18:30:00.000Z');
    // The daily digest at 01:30 on the night New York goes back: one slot (the first 01:30), not a second an hour later.
    const daily = { digest: 'daily', digestTime: '01:30', digestDay: 'monday' } as const;
    for (const now of ['2026-11-01T05:35:00Z', '2026-11-01T06:35:00Z', '2026-11-01T12:00:00Z']) {
      assert.equal(lastDigestSlot(at(now), ny, daily)?.toISOString(), '2026-11-01T05:30:00.000Z', now);
    }
    assert.equal(lastDigestSlot(at('2025-10-26T01:20:00Z'), 'Europe/London', { ...daily, digestTime: '01:15' })?.toISOString(), '2025-10-26T00:15:00.000Z', 'London: the first 01:15 (BST)');
  });

  test('the last daily and weekly digest slot at or before now', () => {
    const daily = { digest: 'daily', digestTime: '09:00', digestDay: 'monday' } as const;
    assert.equal(lastDigestSlot(at('2026-03-04T10:00:00Z'), 'UTC', daily)?.toISOString(), '2026-03-04T09:00:00.000Z');
    assert.equal(lastDigestSlot(at('2026-03-04T08:59:00Z'), 'UTC', daily)?.toISOString(), '2026-03-03T09:00:00.000Z');
    assert.equal(lastDigestSlot(at('2026-03-04T10:00:00Z'), 'America/New_York', daily)?.toISOString(), '2026-03-03T14:00:00.000Z', '09:00 in New York is 14:00 UTC');
    const weekly = { digest: 'weekly', digestTime: '18:30', digestDay: 'friday' } as const;
    // Wednesday 4 March 2026: the last Friday 18:30 was 27 February.
    assert.equal(lastDigestSlot(at('2026-03-04T10:00:00Z'), 'UTC', weekly)?.toISOString(), '2026-02-27T18:30:00.000Z');
    // Friday 6 March before and after 18:30.
    assert.equal(lastDigestSlot(at('2026-03-06T18:00:00Z'), 'UTC', weekly)?.toISOString(), '2026-02-27T18:30:00.000Z');
    assert.equal(lastDigestSlot(at('2026-03-06T18:31:00Z'), 'UTC', weekly)?.toISOString(), '2026-03-06T18:30:00.000Z');
    assert.equal(lastDigestSlot(at('2026-03-06T18:31:00Z'), 'UTC', { ...weekly, digest: 'off' }), null);
  });
});
