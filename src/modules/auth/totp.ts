import { generate, generateSecret, generateURI, verify } from 'otplib';

const PERIOD_SECONDS = 30;

const DECIMAL_DIGIT = /\p{Nd}/u;

/**
 * A decimal digit of any script (３, ٣, ३) as its ASCII digit. Unicode assigns every script's digits as runs of
 * 0 to 9 in order (a stability guarantee), some runs side by side: the digit is its place within its run.
 */
function asciiDigit(digit: string): string {
  let codePoint = digit.codePointAt(0)!;
  let place = 0;
  while (DECIMAL_DIGIT.test(String.fromCodePoint(codePoint - 1))) (codePoint--, place++);
  return String(place % 10);
}

/** A code as typed or pasted: spaces of any kind left out, digits of any script made ASCII. */
export const normalizeCode = (code: string) => code.replace(/\s+/g, '').replace(/\p{Nd}/gu, asciiDigit);

/** RFC 6238 codes as authenticator apps make them: SHA-1, 6 digits, 30-second steps. */
export const totp = {
  /** A fresh base32 secret of 20 random bytes. */
  newSecret: () => generateSecret({ length: 20 }),

  uri: (opts: { issuer: string; label: string; secret: string }) => generateURI(opts),

  /**
   * The time step `code` belongs to, looking one step back and one ahead for
   * clock drift; undefined when it matches none (or is not six digits, of whatever script).
   */
  async matchStep(secret: string, code: string, nowMs = Date.now()): Promise<number | undefined> {
    const token = normalizeCode(code);
    if (!/^\d{6}$/.test(token)) return undefined;
    const epoch = Math.floor(nowMs / 1000);
    const result = await verify({ secret, token, epoch, epochTolerance: PERIOD_SECONDS });
    return result.valid ? Math.floor(epoch / PERIOD_SECONDS) + result.delta : undefined;
  },

  /** The code for the step at `epochSeconds`; for tests and tooling. */
  codeAt: (secret: string, epochSeconds: number) => generate({ secret, epoch: epochSeconds }),
};
