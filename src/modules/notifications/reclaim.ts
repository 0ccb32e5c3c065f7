import type { Db } from '../../platform/db/database.ts';
import { createSlackRepository } from './channels/slack-repository.ts';
import { createPhonesRepository } from './channels/sms-repository.ts';
import { createPushRepository } from './push/repository.ts';
import type { WebPush } from './push/service.ts';

/** What `forgetDestinations` removed: the browsers' ids, whether a phone number and a Slack destination went. */
export interface ForgottenDestinations {
  pushSubscriptions: string[];
  phone: boolean;
  slack: boolean;
}

/**
 * Removes the places a user's notifications leave Parley for, other than their email address, that were set up
 * before `before`: their browsers (web push), their phone number (verified or not) and their Slack destination.
 * For `user.reclaimed`: they may be those of a stranger who held the account before its address was proved; what
 * the owner set up since stays, however late the event comes again. Rows of a channel the deployment has since
 * switched off go too.
 */
export async function forgetDestinations(deps: { db: Db; webPush: WebPush | null }, userId: string, before: Date): Promise<ForgottenDestinations> {
  const [pushSubscriptions, phone, slack] = await Promise.all([
    deps.webPush ? deps.webPush.subscriptions.removeAllOf(userId, before) : createPushRepository(deps.db).deleteAllOf(userId, before),
    createPhonesRepository(deps.db).deleteSetBefore(userId, before),
    createSlackRepository(deps.db).deleteSetBefore(userId, before),
  ]);
  return { pushSubscriptions, phone, slack };
}
