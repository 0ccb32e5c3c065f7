import { fork } from 'node:child_process';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { AppError } from '../../errors.ts';
import type { Storage } from '../../platform/storage/storage.ts';
import type { FileRow } from './schema.ts';

/**
 * Most text kept of one file: far beyond any model's window (about 4
 * characters a token), so the cut that matters is the prompt's, made by the
 * caller with the note that goes with it.
 */
export const MAX_TEXT_CHARS = 2_000_000;
/** Bytes of a text file read for its text (UTF-8 takes at most 4 a character). */
const MAX_TEXT_BYTES = MAX_TEXT_CHARS * 4;

/**
 * Formats whose text is read out of them, in a process of their own (extract-reader.ts): PDF (unpdf), Word
 * (mammoth's raw text), and HTML (html-to-text: the page's text, never its markup or scripts; HTML is
 * stored only where FILES_ALLOWED_TYPES admits it).
 */
const EXTRACTED = new Set(['text/html', 'application/pdf', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document']);

const READER = fileURLToPath(new URL('./extract-reader.ts', import.meta.url));
/** A reader's heap: the text of a long book fits many times over; a bomb's inflated contents do not. */
const READER_HEAP_MB = 512;
/** How long a reader may take before it is ended. */
const READER_MS = 60_000;
/** What is kept of a reader's standard error: enough for V8's last words. */
const STDERR_KEPT = 4096;

/**
 * The text of a PDF, Word or HTML file, read in a process of its own (extract-reader.ts), bounded in heap
 * and time, with no environment (no secrets to read): a hostile file (a page that inflates to hundreds of
 * MB) ends that process, never the server, and never holds its event loop. A worker thread was not
 * enough: V8 aborts the whole process for some allocations past a worker's heap limit. A process per file:
 * each file's text is read once (then kept, see `extracted`).
 */
function readApart(mimeType: string, bytes: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = fork(READER, [], { execArgv: [`--max-old-space-size=${READER_HEAP_MB}`], env: {}, serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    reader.stderr!.setEncoding('utf8').on('data', (text: string) => {
      stderr = (stderr + text).slice(-STDERR_KEPT);
    });
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
      reader.kill('SIGKILL');
    };
    const timer = setTimeout(() => settle(() => reject(new Error(`reading it took over ${READER_MS / 1000} s`))), READER_MS);
    reader.once('message', (m: { text?: string; error?: string }) => settle(() => (m.error === undefined ? resolve(m.text ?? '') : reject(new Error(m.error)))));
    reader.once('error', (err) => settle(() => reject(err)));
    // Ended without an answer: out of heap (V8 says so on stderr as it aborts), or killed from outside.
    reader.once('close', (code, signal) =>
      settle(() => reject(new Error(/heap out of memory|Allocation failed/.test(stderr) ? `reading it needs more than ${READER_HEAP_MB} MB` : `its reader stopped (${signal ?? code})`))),
    );
    reader.send({ mimeType, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length) });
  });
}

/** Whether a file of this type has text a model can read: text files, JSON, PDFs, Word documents. */
export const hasText = (mimeType: string) => mimeType.startsWith('text/') || mimeType === 'application/json' || EXTRACTED.has(mimeType);

const unreadable = (detail: string) => new AppError(422, 'file_unreadable', 'Unprocessable content', detail);

/** Reads at most `limit` bytes of a stream; `whole` false when there was more. */
async function readUpTo(body: Readable, limit: number): Promise<{ bytes: Buffer; whole: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      return { bytes: Buffer.concat(chunks).subarray(0, limit), whole: false };
    }
  }
  return { bytes: Buffer.concat(chunks), whole: true };
}

/**
 * What a model can take of a file: the text of text files and PDFs (PDF text
 * extracted once with unpdf, then kept beside the original as `text.txt`,
 * which goes with the file when it is deleted, or at once when the file was
 * deleted while it was being read: `exists` says), and the bytes of small
 * files (images sent inline).
 */
export function createExtraction(d: { storage: Storage; exists: (fileId: string) => Promise<boolean> }) {
  const textKey = (f: Pick<FileRow, 'userId' | 'id'>) => `files/${f.userId}/${f.id}/text.txt`;

  async function original(file: FileRow): Promise<Readable> {
    const body = await d.storage.get(file.storageKey);
    if (!body) throw new AppError(410, 'file_content_missing', 'Gone', 'The file is recorded but its bytes are not in storage');
    return body;
  }

  /** The text of a PDF or Word file: extracted once, then read back from `text.txt`. */
  async function extracted(file: FileRow): Promise<string> {
    const cached = await d.storage.get(textKey(file));
    if (cached) return (await readUpTo(cached, MAX_TEXT_BYTES)).bytes.toString('utf8');
    const { bytes } = await readUpTo(await original(file), Number.MAX_SAFE_INTEGER);
    let text: string;
    try {
      // An HTML page is its own text, give or take markup: read no more of it than a text file is (a PDF or Word file is read whole).
      text = await readApart(file.mimeType, file.mimeType === 'text/html' ? bytes.subarray(0, MAX_TEXT_BYTES) : bytes);
    } catch (err) {
      throw unreadable(`The text of ${file.name} could not be read: ${(err as Error).message}`);
    }
    text = text.replaceAll('\0', '').slice(0, MAX_TEXT_CHARS);
    await d.storage.put(textKey(file), Readable.from([Buffer.from(text, 'utf8')]), { contentType: 'text/plain; charset=utf-8' });
    // Deleted while its text was read: the purge may be over, so remove what was just written (the text read is still the caller's).
    if (!(await d.exists(file.id))) await d.storage.delete(textKey(file));
    return text;
  }

  return {
    /**
     * The file's text (at most MAX_TEXT_CHARS characters), or null for a type
     * without text (images, audio, office documents). 422 `file_unreadable`
     * when a PDF cannot be parsed.
     */
    async textOf(file: FileRow): Promise<string | null> {
      if (!hasText(file.mimeType)) return null;
      if (EXTRACTED.has(file.mimeType)) return extracted(file);
      const { bytes } = await readUpTo(await original(file), MAX_TEXT_BYTES);
      // A character cut at the end of the bytes read decodes as U+FFFD: harmless, and past any prompt's cut.
      return bytes.toString('utf8').replaceAll('\0', '').slice(0, MAX_TEXT_CHARS);
    },

    /** All the bytes of a file of at most `maxBytes` (an image sent inline); 413 `file_too_large` beyond. */
    async bytesOf(file: FileRow, maxBytes: number): Promise<Buffer> {
      if (file.size > maxBytes) throw new AppError(413, 'file_too_large', 'Payload too large', `${file.name} is over ${maxBytes} bytes`, { extra: { maxBytes } });
      return (await readUpTo(await original(file), maxBytes)).bytes;
    },
  };
}
