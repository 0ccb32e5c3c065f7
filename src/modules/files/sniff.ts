import { clip } from '../../platform/text.ts';

/**
 * What a file is, from its bytes: `file-type` recognizes binary formats by
 * their magic numbers; what it does not recognize is text when its first
 * bytes are UTF-8 without NULs, and then HTML or SVG when they say so. The
 * name only tells text flavors apart (a `.csv` of text is CSV) and is checked
 * against the bytes: an HTML page named `.png` is refused, not stored.
 */

const TEXT_BY_EXTENSION: Record<string, string> = {
  txt: 'text/plain',
  text: 'text/plain',
  log: 'text/plain',
  md: 'text/markdown',
  markdown: 'text/markdown',
  csv: 'text/csv',
  json: 'application/json',
  // Source code is text for the model.
  ...Object.fromEntries(['js', 'mjs', 'ts', 'tsx', 'jsx', 'py', 'rb', 'go', 'rs', 'java', 'kt', 'c', 'h', 'cpp', 'cs', 'php', 'sh', 'sql', 'yaml', 'yml', 'toml', 'ini'].map((e) => [e, 'text/plain'])),
};

/** What a binary extension promises; aliases that name the same format share a type. */
const BINARY_BY_EXTENSION: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  avif: 'image/avif',
  heic: 'image/heic',
  pdf: 'application/pdf',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  odt: 'application/vnd.oasis.opendocument.text',
  ods: 'application/vnd.oasis.opendocument.spreadsheet',
  odp: 'application/vnd.oasis.opendocument.presentation',
  mp3: 'audio/mpeg',
  wav: 'audio/wav',
  ogg: 'audio/ogg',
  m4a: 'audio/mp4',
  flac: 'audio/flac',
  zip: 'application/zip',
};

export interface Detected {
  mimeType: string;
  /** What the name promised instead, when the bytes say otherwise. */
  mismatch?: string;
}

const extensionOf = (name: string) => /\.([A-Za-z0-9]{1,10})$/.exec(name)?.[1]?.toLowerCase();

function textOf(head: Uint8Array): string | undefined {
  if (head.includes(0)) return undefined;
  try {
    // `stream`: a multi-byte character cut at the end of the sample is not an error.
    return new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: true });
  } catch {
    return undefined;
  }
}

function markupOf(text: string): string | undefined {
  const start = text.replace(/^\uFEFF/, '').trimStart().slice(0, 512).toLowerCase();
  if (/^<(!doctype html|html|head|body|script|iframe|meta|title)\b/.test(start)) return 'text/html';
  if (start.startsWith('<svg') || (start.startsWith('<?xml') && text.slice(0, 4096).toLowerCase().includes('<svg'))) return 'image/svg+xml';
  if (start.startsWith('<?xml')) return 'application/xml';
  return undefined;
}

/** The file's type from its first bytes (`fromBytes`: what file-type found there), and whether the name contradicts it. */
export function detectType(head: Uint8Array, fromBytes: { mime: string } | undefined, name: string): Detected {
  const ext = extensionOf(name);
  const promised = ext ? (BINARY_BY_EXTENSION[ext] ?? TEXT_BY_EXTENSION[ext]) : undefined;
  let mimeType: string;
  if (fromBytes) mimeType = fromBytes.mime;
  else {
    const text = textOf(head);
    if (text === undefined) mimeType = 'application/octet-stream';
    else mimeType = markupOf(text) ?? (ext && TEXT_BY_EXTENSION[ext]) ?? 'text/plain';
  }
  const agrees = !promised || promised === mimeType || (promised === 'text/plain' && mimeType.startsWith('text/'));
  return agrees ? { mimeType } : { mimeType, mismatch: promised };
}

/** Whether `mimeType` is on the list, exactly or by its family (`image/*`). */
export function isAllowed(mimeType: string, allowed: string[]): boolean {
  const family = `${mimeType.split('/')[0]}/*`;
  return allowed.includes(mimeType) || allowed.includes(family);
}

/** A client's file name made safe to show: its last path segment, no control characters, at most 255 characters. */
export function safeName(raw: string | undefined): string {
  const last = (raw ?? '').split(/[/\\]/).pop() ?? '';
  const clean = clip(last.replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, '').trim(), 255);
  return clean && clean !== '.' && clean !== '..' ? clean : 'file';
}

/** A stored file's Content-Type: text is accepted only as UTF-8, so it says so (a browser would guess windows-1252). */
export const contentType = (mimeType: string): string => (mimeType.startsWith('text/') ? `${mimeType}; charset=utf-8` : mimeType);
