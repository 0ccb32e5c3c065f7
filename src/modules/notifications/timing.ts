import { DateTime } from 'luxon';

const WEEKDAY_NUMBER = { monday: 1, tuesday: 2, wednesday: 3, thursday: 4, friday: 5, saturday: 6, sunday: 7 } as const;

const at = (day: DateTime, hhmm: string) => {
  const [hour, minute] = hhmm.split(':').map(Number);
  return day.set({ hour, minute, second: 0, millisecond: 0 });
};

/**
 * When the user's quiet hours end, if `now` falls inside them; null otherwise. Read in their time zone, so a
 * span such as 22:00–07:00 crosses midnight, and a day with a DST change still ends at 07:00 local time.
 */
export function quietUntil(now: Date, timezone: string, quiet: { start: string; end: string } | null): Date | null {
  if (!quiet || quiet.start === quiet.end) return null;
  const local = DateTime.fromJSDate(now, { zone: timezone });
  const start = at(local, quiet.start);
  const end = at(local, quiet.end);
  if (start < end) return local >= start && local < end ? end.toJSDate() : null;
  // Spans midnight: quiet from start to midnight, and from midnight to end.
  if (local >= start) return end.plus({ days: 1 }).toJSDate();
  if (local < end) return end.toJSDate();
  return null;
}

/** The most recent digest slot at or before `now` (today's or the last weekday's time, local), as an instant. */
export function lastDigestSlot(now: Date, timezone: string, prefs: { digest: 'off' | 'daily' | 'weekly'; digestTime: string; digestDay: keyof typeof WEEKDAY_NUMBER }): Date | null {
  if (prefs.digest === 'off') return null;
  const local = DateTime.fromJSDate(now, { zone: timezone });
  let slot = at(local, prefs.digestTime);
  if (prefs.digest === 'daily') {
    if (slot > local) slot = at(local.minus({ days: 1 }), prefs.digestTime);
    return slot.toJSDate();
  }
  const back = (local.weekday - WEEKDAY_NUMBER[prefs.digestDay] + 7) % 7;
  slot = at(local.minus({ days: back }), prefs.digestTime);
  if (slot > local) slot = at(slot.minus({ days: 7 }), prefs.digestTime);
  return slot.toJSDate();
}
