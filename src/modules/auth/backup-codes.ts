import { randomInt } from 'node:crypto';
import { sha256Hex } from '../../platform/crypto/cipher.ts';

export const BACKUP_CODE_COUNT = 10;

// No 0/o, 1/l/i: codes are read off paper and typed by hand.
const ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
const GROUPS = 3;
const GROUP_LENGTH = 4;

/**
 * One-time recovery codes: 12 characters from a 31-letter alphabet (~59 bits),
 * so a SHA-256 salted with the user id is enough to store them; shown once.
 */
export const backupCodes = {
  generate(count = BACKUP_CODE_COUNT): string[] {
    return Array.from({ length: count }, () =>
      Array.from({ length: GROUPS }, () => Array.from({ length: GROUP_LENGTH }, () => ALPHABET[randomInt(ALPHABET.length)]).join('')).join('-'),
    );
  },

  /** Case, spaces and dashes (an en dash an editor made of one too) do not matter when a code is typed back, nor full-width letters. */
  normalize: (code: string) => code.normalize('NFKC').toLowerCase().replace(/[\s\p{Pd}]/gu, ''),

  hash: (userId: string, code: string) => sha256Hex(`${userId}:${backupCodes.normalize(code)}`),
};
