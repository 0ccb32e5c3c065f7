import { z } from 'zod';
import { optionalBody } from '../../http/pagination.ts';

const iso = z.iso.datetime();

export const shareParams = z.object({ id: z.uuid(), shareId: z.uuid() });

export const createShareBody = optionalBody(
  z
    .object({
      messageId: z.uuid().optional().describe("The message the snapshot ends at, with the messages above it on its branch; default: the conversation's current leaf"),
      expiresIn: z.number().int().min(60).max(365 * 24 * 3600).optional().describe('Seconds until the link stops working; left out: until revoked'),
    })
    .strict(),
);

export const shareSchema = z
  .object({ id: z.uuid(), last4: z.string(), leafId: z.uuid(), createdAt: iso, expiresAt: iso.nullable(), revokedAt: iso.nullable() })
  .meta({ id: 'ConversationShare' });

export const newShareSchema = shareSchema
  .omit({ revokedAt: true })
  .extend({ token: z.string().describe('Shown once: only its hash is kept. Sent as `X-Share-Token` to `/v1/shared/conversation`') })
  .meta({ id: 'NewConversationShare' });

export const shareTokenHeaders = z.looseObject({ 'x-share-token': z.string().min(10).max(100).describe('The token of a conversation share link') });

export const sharedConversationSchema = z
  .object({
    title: z.string().nullable(),
    sharedAt: iso,
    messages: z.array(
      z.object({
        role: z.enum(['user', 'assistant']),
        text: z.string(),
        files: z.array(z.object({ name: z.string(), mimeType: z.string() })).describe('The files shown with the message, by name only'),
        createdAt: iso,
      }),
    ),
  })
  .meta({ id: 'SharedConversation' });
