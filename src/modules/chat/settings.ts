import { z } from 'zod';
import { envInt, envSeconds } from '../../platform/config/env.ts';
import { MESSAGE_MAX_CHARS } from './contracts.ts';

export interface ChatSettings {
  maxMessageChars: number;
  /** A generation still running after this long is aborted and fails with `stream_timeout`. */
  maxStreamSeconds: number;
  /** How long a finished generation's events stay replayable from the stream buffer. */
  streamRetentionSeconds: number;
  /** Share links that may open one conversation at once: revoked and expired ones no longer count. */
  maxShares: number;
  /** Days a revoked or expired share link stays listed before the daily purge deletes it (0: for ever). */
  shareHistoryDays: number;
  /** Reads of shared conversations one client address may make a minute (no sign-in: counted by address). */
  shareReadsPerMinute: number;
}


export const chatEnv = {
  CHAT_MAX_MESSAGE_CHARS: envInt(1, MESSAGE_MAX_CHARS).default(100_000),
  // Both become timers in milliseconds, the stream buffer's expiry their sum: a day and a week keep it well under MAX_TIMER_MS.
  CHAT_MAX_STREAM_SECONDS: envSeconds(1, 24 * 3600).default(300),
  CHAT_STREAM_RETENTION_SECONDS: envSeconds(1, 7 * 24 * 3600).default(600),
  CHAT_MAX_SHARES_PER_CONVERSATION: envInt(1, 10_000).default(100),
  CHAT_SHARE_HISTORY_DAYS: envInt(0, 36_500).default(30),
  CHAT_SHARE_READS_PER_MINUTE: envInt(1, 1_000_000).default(120),
};

const chatEnvObject = z.object(chatEnv);

export function chatSettings(e: z.output<typeof chatEnvObject>): ChatSettings {
  return {
    maxMessageChars: e.CHAT_MAX_MESSAGE_CHARS,
    maxStreamSeconds: e.CHAT_MAX_STREAM_SECONDS,
    streamRetentionSeconds: e.CHAT_STREAM_RETENTION_SECONDS,
    maxShares: e.CHAT_MAX_SHARES_PER_CONVERSATION,
    shareHistoryDays: e.CHAT_SHARE_HISTORY_DAYS,
    shareReadsPerMinute: e.CHAT_SHARE_READS_PER_MINUTE,
  };
}
