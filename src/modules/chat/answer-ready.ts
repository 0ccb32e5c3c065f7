import type { NotificationCategory, ServiceMap } from '../module.ts';
import type { UnattendedAnswer } from './generation.ts';

/** The notification category of answers that finished while their user was away. */
export const answerReadyCategory: NotificationCategory = {
  name: 'answer.ready',
  description: 'An answer finished after you left it (you had no open stream for it and no open connection).',
  channels: { inApp: true, email: true },
};

/**
 * Tells a user that an answer they walked away from is ready (generation calls this for each answer that
 * completed unattended), unless they have a WebSocket open on any instance: a connected client hears of the
 * answer over its socket. Sent once per answer (its message id is the notification's source).
 */
export function answerReadyNotice(d: { notifications: Pick<ServiceMap['notifications'], 'notify'>; realtime: Pick<ServiceMap['realtime'], 'connected'> }) {
  return async ({ userId, conversationId, messageId }: UnattendedAnswer): Promise<void> => {
    if (await d.realtime.connected(userId)) return;
    await d.notifications.notify({
      userId,
      category: answerReadyCategory.name,
      title: 'Your answer is ready',
      body: 'The answer you were waiting for has finished. Open the conversation to read it.',
      link: `/conversations/${conversationId}`,
      data: { conversationId, messageId },
      sourceKey: `answer.ready:${messageId}`,
    });
  };
}
