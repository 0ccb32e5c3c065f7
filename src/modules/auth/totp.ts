import { generate, generateSecret, generateURI, verify } from 'otplib';

const PERIOD_SECONDS = 30;

/** RFC 6238 codes as authenticator apps make them: SHA-1, 6 digits, 30-second steps. */
export const totp = {
  /** A fresh base32 secret of 20 random bytes. */
  newSecret: () => generateSecret({ length: 20 }),

  uri: (opts: { issuer: string; label: string; secret: string }) => generateURI(opts),

  /**
   * The time step `code` belongs to, looking one step back and one ahead for
   * clock drift; undefined when it matches none (or is not six digits).
   */
  async matchStep(secret: string, code: string, nowMs = Date.now()): Promise<number | undefined> {
    const token = code.replace(/\s+/g, '');
    if (!/^\d{6}$/.test(token)) return undefined;
    const epoch = Math.floor(nowMs / 1000);
    const result = await verify({ secret, token, epoch, epochTolerance: PERIOD_SECONDS });
    return result.valid ? Math.floor(epoch / PERIOD_SECONDS) + result.delta : undefined;
  },

  /** The code for the step at `epochSeconds`; for tests and tooling. */
  codeAt: (secret: string, epochSeconds: number) => generate({ secret, epoch: epochSeconds }),
};
