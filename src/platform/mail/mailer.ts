import { createRequire } from 'node:module';
import { eq } from 'drizzle-orm';
import { inTransaction, type Db } from '../db/database.ts';
import type { JobQueue } from '../queue/queue.ts';
import { mailOutbox } from './schema.ts';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html?: string;
  /** Extra headers (`List-Unsubscribe`), kept with the message and sent with it. */
  headers?: Record<string, string>;
}

/** The mail port. Every message is recorded in the outbox; SMTP also delivers it. */
export interface Mailer {
  /** Resolves once the message is stored (and, with SMTP, queued for delivery): a crash afterwards loses nothing. */
  send(message: MailMessage): Promise<void>;
  /**
   * For a caller that is itself a retried job (a notification's delivery): sends now and resolves once the
   * SMTP server accepted it (without SMTP: once recorded), so the caller knows the outcome; a refusal
   * throws with the server's `responseCode`. The message is recorded in the outbox either way.
   */
  sendNow(message: MailMessage): Promise<void>;
  close(): Promise<void>;
}

export function outboxMailer(db: Db): Mailer {
  const record = async (m: MailMessage) => void (await db.insert(mailOutbox).values({ ...m, transport: 'outbox', sentAt: new Date() }));
  return {
    send: record,
    sendNow: record,
    async close() {},
  };
}

export const MAIL_QUEUE = 'mail.deliver';

/**
 * SMTP delivery as a background job: the message row and its job are written
 * in one transaction, so a request that sends mail never waits for the SMTP
 * server and a crash never loses a message. A refusal is recorded on the row
 * and retried with backoff; the last error stays on the row and the dead job.
 */
export function smtpMailer(db: Db, smtpUrl: string, from: string, queue: JobQueue): Mailer {
  // Loaded only where SMTP is configured (some 5 MB of heap).
  const nodemailer = createRequire(import.meta.url)('nodemailer') as typeof import('nodemailer');
  const transport = nodemailer.createTransport(smtpUrl);
  queue.process<{ mailId: string }>(
    MAIL_QUEUE,
    async ({ mailId }) => {
      const [m] = await db.select().from(mailOutbox).where(eq(mailOutbox.id, mailId));
      if (!m || m.sentAt) return { skipped: true };
      try {
        await transport.sendMail({ from, to: m.to, subject: m.subject, text: m.text, html: m.html ?? undefined, headers: m.headers ?? undefined });
      } catch (err) {
        await db.update(mailOutbox).set({ error: String((err as Error).message) }).where(eq(mailOutbox.id, mailId));
        throw err;
      }
      await db.update(mailOutbox).set({ sentAt: new Date(), error: null }).where(eq(mailOutbox.id, mailId));
      return { sent: true };
    },
    { concurrency: 4, timeoutMs: 60_000 },
  );
  return {
    async send(m) {
      await inTransaction(db, async (tx) => {
        const [row] = await tx.insert(mailOutbox).values({ ...m, transport: 'smtp' }).returning({ id: mailOutbox.id });
        await queue.enqueue(MAIL_QUEUE, { mailId: row!.id }, { tx, attempts: 5, backoffMs: 5_000 });
      });
    },
    async sendNow(m) {
      try {
        await transport.sendMail({ from, to: m.to, subject: m.subject, text: m.text, html: m.html ?? undefined, headers: m.headers ?? undefined });
      } catch (err) {
        await db.insert(mailOutbox).values({ ...m, transport: 'smtp', error: String((err as Error).message) });
        throw err;
      }
      await db.insert(mailOutbox).values({ ...m, transport: 'smtp', sentAt: new Date() });
    },
    async close() {
      transport.close();
    },
  };
}
