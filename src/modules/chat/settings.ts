import { z } from 'zod';

export interface ChatSettings {
  maxMessageChars: number;
  /** A generation still running after this long is aborted and fails with `stream_timeout`. */
  maxStreamSeconds: number;
  /** How long a finished generation's events stay replayable from the stream buffer. */
  streamRetentionSeconds: number;
}

const seconds = z.coerce.number().int().positive();

export const chatEnv = {
  CHAT_MAX_MESSAGE_CHARS: z.coerce.number().int().positive().default(100_000),
  CHAT_MAX_STREAM_SECONDS: seconds.default(300),
  CHAT_STREAM_RETENTION_SECONDS: seconds.default(600),
};

const chatEnvObject = z.object(chatEnv);

export function chatSettings(e: z.output<typeof chatEnvObject>): ChatSettings {
  return { maxMessageChars: e.CHAT_MAX_MESSAGE_CHARS, maxStreamSeconds: e.CHAT_MAX_STREAM_SECONDS, streamRetentionSeconds: e.CHAT_STREAM_RETENTION_SECONDS };
}
