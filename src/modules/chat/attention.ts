import type { StreamBuffer } from '../../platform/streams/stream-buffer.ts';

/** A follower on another instance started reading an answer's events (sent over the stream buffer's signal channel). */
export const FOLLOW_SIGNAL = 'follow';
/** How a follower's reading ended: it got the outcome, its client went away first, or neither (the stream was gone). */
export type FollowEnd = 'reached' | 'left' | 'gone';
const END_SIGNALS: Record<string, FollowEnd> = { 'follow:reached': 'reached', 'follow:left': 'left', 'follow:gone': 'gone' };

/** What the instance running an answer knows of the clients reading it. */
interface Watch {
  /** Followers reading its events now: those of this instance, and those another instance said started and have not ended. */
  following: number;
  /** A follower's client went away before the end. */
  left: boolean;
  /** A follower got the outcome. */
  reached: boolean;
}

/**
 * Whether anyone was there when an answer ended, as the instance generating it can tell: every follower of
 * its events (the turn's own response, streamed or waiting for JSON, and `/stream` readers) counts while it
 * reads. Followers on this instance are counted directly; one on another instance says it started and how it
 * ended over the stream buffer's signal channel (best effort: a lost "started" can make an answer look
 * unattended, a lost ending or a crashed follower's instance only keeps it attended).
 *
 * An answer is unattended when a follower's client went away before the end, no follower reached the
 * outcome and none is still reading: the user walked away from it.
 */
export function createAttention(streams: Pick<StreamBuffer, 'signal'>) {
  const watched = new Map<string, Watch>();

  function ended(watch: Watch, end: FollowEnd) {
    watch.following--;
    if (end === 'reached') watch.reached = true;
    else if (end === 'left') watch.left = true;
  }

  return {
    /** An answer this instance generates, from before its first event is readable until `forget`. */
    watch(messageId: string): void {
      watched.set(messageId, { following: 0, left: false, reached: false });
    },

    forget(messageId: string): void {
      watched.delete(messageId);
    },

    /** A signal from another instance's follower; other messages are ignored. */
    signal(messageId: string, message: string): void {
      const watch = watched.get(messageId);
      if (!watch) return;
      if (message === FOLLOW_SIGNAL) watch.following++;
      else if (END_SIGNALS[message]) ended(watch, END_SIGNALS[message]);
    },

    /** A follower starts reading an answer; returns what to call, once, when it stops. */
    follow(messageId: string): (end: FollowEnd) => void {
      const watch = watched.get(messageId);
      if (watch) {
        watch.following++;
        return (end) => ended(watch, end);
      }
      // Generated elsewhere (or already over): tell whoever generates it, if anyone does.
      const tell = (message: string) => void streams.signal(messageId, message).catch(() => {});
      tell(FOLLOW_SIGNAL);
      return (end) => tell(`follow:${end}`);
    },

    /** Whether the answer ended with nobody there to see it (see above). */
    unattended(messageId: string): boolean {
      const watch = watched.get(messageId);
      return !!watch && watch.left && !watch.reached && watch.following <= 0;
    },
  };
}

export type Attention = ReturnType<typeof createAttention>;
