import { z } from 'zod';
import { envInt, envSeconds } from '../../platform/config/env.ts';
import { MESSAGE_MAX_CHARS } from './contracts.ts';

export interface ChatSettings {
  maxMessageChars: number;
  /** A generation still running after this long is aborted and fails with `stream_timeout`. */
  maxStreamSeconds: number;
  /** How long a finished generation's events stay replayable from the stream buffer. */
  streamRetentionSeconds: number;
}


export const chatEnv = {
  CHAT_MAX_MESSAGE_CHARS: envInt(1, MESSAGE_MAX_CHARS).default(100_000),
  // Both become timers in milliseconds, the stream buffer's expiry their sum: a day and a week keep it well under MAX_TIMER_MS.
  CHAT_MAX_STREAM_SECONDS: envSeconds(1, 24 * 3600).default(300),
  CHAT_STREAM_RETENTION_SECONDS: envSeconds(1, 7 * 24 * 3600).default(600),
};

const chatEnvObject = z.object(chatEnv);

export function chatSettings(e: z.output<typeof chatEnvObject>): ChatSettings {
  return { maxMessageChars: e.CHAT_MAX_MESSAGE_CHARS, maxStreamSeconds: e.CHAT_MAX_STREAM_SECONDS, streamRetentionSeconds: e.CHAT_STREAM_RETENTION_SECONDS };
}
