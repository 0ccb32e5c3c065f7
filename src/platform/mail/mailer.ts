import { eq } from 'drizzle-orm';
import nodemailer from 'nodemailer';
import type { Db } from '../db/database.ts';
import { mailOutbox } from './schema.ts';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html?: string;
}

/** The mail port. Every message is recorded in the outbox; SMTP also delivers it. */
export interface Mailer {
  send(message: MailMessage): Promise<void>;
  close(): Promise<void>;
}

export function outboxMailer(db: Db): Mailer {
  return {
    async send(m) {
      await db.insert(mailOutbox).values({ ...m, transport: 'outbox', sentAt: new Date() });
    },
    async close() {},
  };
}

export function smtpMailer(db: Db, smtpUrl: string, from: string): Mailer {
  const transport = nodemailer.createTransport(smtpUrl);
  return {
    async send(m) {
      const [row] = await db.insert(mailOutbox).values({ ...m, transport: 'smtp' }).returning({ id: mailOutbox.id });
      try {
        await transport.sendMail({ from, ...m });
        await db.update(mailOutbox).set({ sentAt: new Date() }).where(eqId(row!.id));
      } catch (err) {
        await db.update(mailOutbox).set({ error: String((err as Error).message) }).where(eqId(row!.id));
        throw err;
      }
    },
    async close() {
      transport.close();
    },
  };
}

const eqId = (id: string) => eq(mailOutbox.id, id);
