import { z } from 'zod';

export const providerParams = z.object({ provider: z.string().min(1).max(64) });

export const providerList = z
  .object({
    data: z.array(z.object({ id: z.string(), authorizeUrl: z.string().describe('Where to send the browser to sign in with this provider') })),
  })
  .meta({ id: 'OAuthProviders' });

export const authorizeQuery = z.object({
  redirectTo: z
    .string()
    .max(2048)
    .optional()
    .describe('Browser flow: after the callback, set session cookies and redirect here. Must be on an allowed origin.'),
});

export const authorizeUrl = z.object({ url: z.url() }).meta({ id: 'OAuthAuthorizeUrl' });

/** What the provider appends to the callback; validated here for the docs, read raw by the service. */
export const callbackQuery = z.object({
  code: z.string().max(4096).optional(),
  state: z.string().max(512).optional(),
  error: z.string().max(512).optional(),
  error_description: z.string().max(2048).optional(),
  iss: z.string().max(2048).optional(),
});
