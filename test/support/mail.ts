import { asc, eq } from 'drizzle-orm';
import { setTimeout as sleep } from 'node:timers/promises';
import { mailOutbox } from '../../src/platform/mail/schema.ts';
import type { TestApp } from './app.ts';

export type OutboxMail = typeof mailOutbox.$inferSelect;

/** Every message recorded for `to`, oldest first. */
export function mailsTo(t: TestApp, to: string): Promise<OutboxMail[]> {
  return t.deps.db.select().from(mailOutbox).where(eq(mailOutbox.to, to)).orderBy(asc(mailOutbox.id));
}

/**
 * Waits until at least `count` messages whose subject matches have been
 * recorded for `to` (some mail is sent after the response), and returns them.
 */
export async function waitForMails(t: TestApp, to: string, subject: RegExp, count = 1): Promise<OutboxMail[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = (await mailsTo(t, to)).filter((m) => subject.test(m.subject));
    if (found.length >= count) return found;
    if (Date.now() > deadline) throw new Error(`expected ${count} mail(s) to ${to} matching ${subject}, found ${found.length}`);
    await sleep(20);
  }
}

/** The token in the first link of a message that points at `path`. */
export function tokenIn(text: string, path: string): string {
  const match = new RegExp(`${path.replace(/[/.]/g, '\\$&')}\\?token=([\\w%-]+)`).exec(text);
  if (!match) throw new Error(`no ${path} link in:\n${text}`);
  return decodeURIComponent(match[1]!);
}
