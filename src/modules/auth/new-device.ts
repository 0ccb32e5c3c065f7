import type { NotificationCategory, ServiceMap } from '../module.ts';

/** The notification category of sign-ins from devices the user had not signed in from before. */
export const signInCategory: NotificationCategory = {
  name: 'security.sign-in',
  description: 'Someone signed in to your account from a device not seen before.',
  channels: { inApp: true, email: true },
};

/** What `session.new_device` carries: the session opened, how, and from where. */
export interface NewDeviceSignIn {
  userId: string;
  sessionId: string;
  method: string;
  /** The device as people read it (its User-Agent, trimmed). */
  device: string;
  ip: string | null;
  /** When (ISO 8601). */
  at: string;
}

/** `2026-12-04 23:20 UTC` */
const readableTime = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;

/** Tells the user of a sign-in from a new device, once per session. */
export function sendNewDeviceNotice(notifications: Pick<ServiceMap['notifications'], 'send'>, s: NewDeviceSignIn) {
  return notifications.send({
    userId: s.userId,
    category: signInCategory.name,
    priority: 'high',
    title: 'New sign-in to your account',
    body:
      `Your account was signed in to from ${s.device}, IP address ${s.ip ?? 'unknown'}, at ${readableTime(s.at)}. ` +
      "If this was you, there is nothing to do. If it wasn't, change your password and sign out of your other sessions.",
    data: { ...s },
    sourceKey: `security.sign-in:${s.sessionId}`,
  });
}
