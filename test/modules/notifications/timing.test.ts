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
