import { z } from 'zod';

/** A browser's `PushSubscription.toJSON()`, and a name for the device. Keys are checked in the service (a real P-256 point, a 16-byte secret). */
export const subscribeBody = z
  .object({
    endpoint: z.string().min(1).max(2000).describe("The push service URL the browser gave (https)"),
    keys: z
      .object({
        p256dh: z.string().min(1).max(200).describe("The browser's P-256 public key: 65 bytes, base64url"),
        auth: z.string().min(1).max(100).describe('The auth secret: 16 bytes, base64url'),
      })
      .strict(),
    expirationTime: z.number().positive().max(253_402_300_799_999).nullable().optional().describe('When the browser says the subscription ends (ms since the epoch), if it does'),
    label: z.string().trim().min(1).max(100).nullable().optional().describe('A name for this device, shown in lists ("Work laptop, Firefox")'),
  })
  .strict();

export const subscriptionSchema = z
  .object({
    id: z.uuid(),
    label: z.string().nullable(),
    pushService: z.string().describe("The push service's host (fcm.googleapis.com, updates.push.services.mozilla.com, web.push.apple.com)"),
    endpointHint: z.string().describe('The endpoint with its secret part hidden; the full URL is never shown again'),
    expiresAt: z.string().nullable(),
    lastSentAt: z.string().nullable().describe('When a push to it last went through'),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'PushSubscription' });

export const vapidKeyResponse = z.object({
  publicKey: z.string().describe("The deployment's VAPID public key (uncompressed P-256 point, base64url): pass it as `applicationServerKey` to `pushManager.subscribe()`"),
});
