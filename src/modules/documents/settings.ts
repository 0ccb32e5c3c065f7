import { z } from 'zod';
import { envInt, envSeconds } from '../../platform/config/env.ts';

export interface DocumentSettings {
  /** Largest title + body of one document, in UTF-8 bytes (a save over it is a 413). */
  maxBytes: number;
  /** Versions kept per document, the current one included: a save past it deletes the oldest (each may be `maxBytes`). */
  maxVersions: number;
  /** How long a presence heartbeat counts: a reader silent this long has left. */
  presenceSeconds: number;
  /** Share links that may open one document at once: revoked and expired ones no longer count. */
  maxLinks: number;
  /** Documents one user may own at once (archived ones and templates included: each is still theirs). */
  maxPerUser: number;
  /** Comments one document may hold at once, replies included: a document's comments are read and exported with it. */
  maxComments: number;
  /** Days a revoked or expired share link stays listed before the daily purge deletes it. */
  linkHistoryDays: number;
}

/** Limits that are not settings: they shape the data, not the deployment. */
export const LIMITS = {
  titleChars: 300,
  tags: 20,
  tagChars: 50,
  commentChars: 20_000,
  quoteChars: 2_000,
  /** A reply to a reply … at most this deep; a deeper reply is refused (400), never silently moved. */
  commentDepth: 20,
  mentions: 20,
} as const;

export const documentsEnv = {
  // A document is read, diffed and sent whole: 100 MB is past any text.
  DOCUMENTS_MAX_BYTES: envInt(1, 100_000_000).default(1_000_000),
  // With DOCUMENTS_MAX_BYTES, what one document may store: at the defaults, 500 MB.
  DOCUMENTS_MAX_VERSIONS: envInt(1, 100_000).default(500),
  DOCUMENTS_PRESENCE_SECONDS: envSeconds(1, 3600).default(60),
  DOCUMENTS_MAX_LINKS_PER_DOCUMENT: envInt(1, 10_000).default(100),
  DOCUMENTS_MAX_PER_USER: envInt(1, 1_000_000).default(10_000),
  DOCUMENTS_MAX_COMMENTS: envInt(1, 1_000_000).default(10_000),
  DOCUMENTS_LINK_HISTORY_DAYS: envInt(0, 36_500).default(30),
};

const documentsEnvObject = z.object(documentsEnv);

export function documentSettings(e: z.output<typeof documentsEnvObject>): DocumentSettings {
  return {
    maxBytes: e.DOCUMENTS_MAX_BYTES,
    maxVersions: e.DOCUMENTS_MAX_VERSIONS,
    presenceSeconds: e.DOCUMENTS_PRESENCE_SECONDS,
    maxLinks: e.DOCUMENTS_MAX_LINKS_PER_DOCUMENT,
    maxPerUser: e.DOCUMENTS_MAX_PER_USER,
    maxComments: e.DOCUMENTS_MAX_COMMENTS,
    linkHistoryDays: e.DOCUMENTS_LINK_HISTORY_DAYS,
  };
}
