import assert from 'node:assert/strict';
import { test } from 'node:test';
import { periodOf } from '../../../src/modules/usage/periods.ts';

const at = (iso: string) => new Date(iso);

test('a day runs from midnight to midnight in the user\'s timezone', () => {
  // 03:30 UTC on 22 Nov is still 21 Nov in New York (UTC-5).
  const ny = periodOf('day', 'America/New_York', at('2026-11-22T03:30:00Z'));
  assert.equal(ny.key, '2026-11-21');
  assert.equal(ny.startsAt!.toISOString(), '2026-11-21T05:00:00.000Z');
  assert.equal(ny.resetsAt!.toISOString(), '2026-11-22T05:00:00.000Z');
  const utc = periodOf('day', 'UTC', at('2026-11-22T03:30:00Z'));
  assert.equal(utc.key, '2026-11-22');
  assert.equal(utc.resetsAt!.toISOString(), '2026-11-23T00:00:00.000Z');
});

test('half-hour offsets and DST changes are honoured', () => {
  const kolkata = periodOf('day', 'Asia/Kolkata', at('2026-11-21T18:29:59Z'));
  assert.equal(kolkata.key, '2026-11-21');
  assert.equal(kolkata.resetsAt!.toISOString(), '2026-11-21T18:30:00.000Z');
  assert.equal(periodOf('day', 'Asia/Kolkata', at('2026-11-21T18:30:00Z')).key, '2026-11-22');
  // Europe/Paris leaves summer time on 25 Oct 2026: that day is 25 hours long.
  const fallBack = periodOf('day', 'Europe/Paris', at('2026-10-25T12:00:00Z'));
  assert.equal(fallBack.resetsAt!.getTime() - fallBack.startsAt!.getTime(), 25 * 3600_000);
});

test('a month starts on the 1st in the user\'s timezone; total never resets', () => {
  const tokyo = periodOf('month', 'Asia/Tokyo', at('2026-11-30T15:00:00Z'));
  assert.equal(tokyo.key, '2026-12', 'already December in Tokyo');
  assert.equal(tokyo.startsAt!.toISOString(), '2026-11-30T15:00:00.000Z');
  assert.equal(tokyo.resetsAt!.toISOString(), '2026-12-31T15:00:00.000Z');
  assert.deepEqual(periodOf('total', 'Asia/Tokyo'), { key: 'total', startsAt: null, resetsAt: null });
  assert.equal(periodOf('day', 'Not/AZone', at('2026-11-22T03:30:00Z')).key, '2026-11-22', 'an unknown zone falls back to UTC');
});
