import { DateTime, IANAZone } from 'luxon';
import type { UsersService } from '../../users/index.ts';
import { ToolError, type Tool } from '../tool.ts';

/**
 * `current_time`: the date and time now, in a zone the model names, else the
 * user's own (their `timezone` preference), else UTC. Models do not know the
 * date; without this they guess it from their training.
 */
export function currentTimeTool(d: { users: Pick<UsersService, 'timezone'> }): Tool {
  return {
    name: 'current_time',
    description: "The current date and time: ISO 8601 with its UTC offset, the time zone, and the weekday. Without timeZone it answers in the user's own time zone.",
    parameters: {
      type: 'object',
      properties: { timeZone: { type: 'string', description: 'An IANA time zone such as Europe/Paris or America/New_York; the user\'s own when left out.' } },
      additionalProperties: false,
    },
    async run(args, ctx) {
      const asked = typeof args.timeZone === 'string' ? args.timeZone.trim() : '';
      if (asked && !IANAZone.isValidZone(asked)) throw new ToolError(`"${asked.slice(0, 100)}" is not an IANA time zone; use a name such as Europe/Paris, America/New_York or UTC`, 'invalid_time_zone');
      let zone = asked;
      let from: 'argument' | 'user' | 'default' = 'argument';
      if (!zone) {
        const preferred = await d.users.timezone(ctx.userId);
        // A preference saved before zones were checked, or a zone this runtime no longer knows: UTC rather than a failure.
        [zone, from] = preferred && IANAZone.isValidZone(preferred) ? [preferred, 'user'] : ['UTC', 'default'];
      }
      const now = DateTime.now().setZone(zone);
      return {
        iso: now.toISO({ suppressMilliseconds: true }),
        timeZone: now.zoneName,
        utcOffset: now.toFormat('ZZ'),
        weekday: now.setLocale('en').toFormat('cccc'),
        /** Whose zone: the one asked for, the user's preference, or UTC for want of either. */
        zoneFrom: from,
      };
    },
  };
}
