import { DateTime } from 'luxon';

const WEEKDAY_NUMBER = { monday: 1, tuesday: 2, wednesday: 3, thursday: 4, friday: 5, saturday: 6, sunday: 7 } as const;

/**
 * The first instant `day`'s date shows `hhmm` on the clock of its zone. On a
 * night the clocks go back that time shows twice, and luxon's `set` keeps the
 * offset of the moment it starts from (the second showing, once the change is
 * past). A time the clocks skip is read with the offset before the jump, as
 * RFC 5545 does: 02:30 on the night 02:00 becomes 03:00 is shown as 03:30.
 */
const at = (day: DateTime, hhmm: string) => {
  const [hour, minute] = hhmm.split(':').map(Number);
  const t = day.set({ hour, minute, second: 0, millisecond: 0 });
  // Clocks go back by 30 minutes (Lord Howe), an hour, or two (Troll).
  for (const back of [120, 60, 30]) {
    const earlier = t.minus({ minutes: back });
    if (earlier.hour === hour && earlier.minute === minute && earlier.day === t.day) return earlier;
  }
  return t;
};

/**
 * When the user's quiet hours end, if `now` falls inside them; null otherwise. Read in their time zone, so a
 * span such as 22:00–07:00 crosses midnight, and a day with a DST change still ends at 07:00 local time.
 */
export function quietUntil(now: Date, timezone: string, quiet: { start: string; end: string } | null): Date | null {
  if (!quiet || quiet.start === quiet.end) return null;
  const local = DateTime.fromJSDate(now, { zone: timezone });
  // Whether the span crosses midnight is read from the clock times (HH:MM sorts as text), not from the instants:
  // on a night the clocks skip its start, 02:00–03:00 has both at 03:00, and is simply not there that day.
  if (quiet.start < quiet.end) {
    const end = at(local, quiet.end);
    return local >= at(local, quiet.start) && local < end ? end.toJSDate() : null;
  }
  // Spans midnight: quiet from start to midnight, and from midnight to end.
  if (local >= at(local, quiet.start)) return at(local.plus({ days: 1 }), quiet.end).toJSDate();
  const end = at(local, quiet.end);
  return local < end ? end.toJSDate() : null;
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
